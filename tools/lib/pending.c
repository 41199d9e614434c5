/* pending.c: the table of live temporaries and their removal at exit and on signals.
 * Depends on nothing (libc only). */
#include "pending.h"

#include <stdlib.h>
#include <unistd.h>

static amlfs_pending outputs[AMLFS_PENDING_MAX];

void amlfs_pending_remove_all(void)
{
    for (int i = 0; i < AMLFS_PENDING_MAX; i++)
        if (outputs[i].live) {
            unlink(outputs[i].tmp);
            outputs[i].live = 0;
        }
}

static void on_signal(int sig)
{
    amlfs_pending_remove_all(); /* unlink is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void amlfs_pending_install_cleanup(void)
{
    static int installed;
    if (installed)
        return;
    installed = 1;
    atexit(amlfs_pending_remove_all);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

amlfs_pending *amlfs_pending_free_slot(void)
{
    for (int i = 0; i < AMLFS_PENDING_MAX; i++)
        if (!outputs[i].live)
            return &outputs[i];
    return NULL;
}

amlfs_pending *amlfs_pending_find(const char *tmp)
{
    for (int i = 0; i < AMLFS_PENDING_MAX; i++)
        if (outputs[i].live && outputs[i].tmp == tmp)
            return &outputs[i];
    return NULL;
}
