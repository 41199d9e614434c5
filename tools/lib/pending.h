/* pending.h: the temporaries of outputs not yet committed (atomic_out.h makes them), each
 * removed at exit, when a tool fails (tool.h's amlfs_fail) and on SIGINT, SIGTERM, SIGHUP.
 * Depends on nothing: tool and atomic_out both use it, and neither uses the other for it. */
#ifndef AMLFS_PENDING_H
#define AMLFS_PENDING_H

#include <signal.h>

#define AMLFS_PENDING_MAX 8 /* outputs open at once */

typedef struct {
    char tmp[4096];    /* the temporary beside the target */
    char target[4096]; /* the path it becomes */
    volatile sig_atomic_t live;
} amlfs_pending;

/* Registers the removal at exit and on the signals (once; amlfs_tool_start calls it). */
void amlfs_pending_install_cleanup(void);
/* A free slot (live 0), or NULL when AMLFS_PENDING_MAX are live. */
amlfs_pending *amlfs_pending_free_slot(void);
/* The live slot whose tmp is this string (the pointer a slot handed out), or NULL. */
amlfs_pending *amlfs_pending_find(const char *tmp);
/* Removes every live temporary (async-signal-safe). */
void amlfs_pending_remove_all(void);

#endif
