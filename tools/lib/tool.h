/* tool.h: the contract every amlfs tool keeps (DESIGN.md 2): one line on stderr
 * "amlfs-TOOL: error: FILE: what is wrong", exit 0 on success, 1 when the work failed
 * (a failed write included), 2 on a usage or input error; --help on stdout, exit 0.
 * Depends on: pending (a failure removes the temporaries of uncommitted outputs). */
#ifndef AMLFS_TOOL_H
#define AMLFS_TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { AMLFS_EXIT_OK = 0, AMLFS_EXIT_FAILED = 1, AMLFS_EXIT_USAGE = 2 };

/* Records the tool's name for messages, installs the cleanup of temporary outputs on
 * exit and on SIGINT/SIGTERM/SIGHUP, and silences HDF5's own error printing. */
void amlfs_tool_start(const char *name);
const char *amlfs_tool_name(void);

/* Print "amlfs-TOOL: error: WHERE: message" (WHERE omitted when NULL) and exit(code). */
void amlfs_fail(int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* A note on stderr, "amlfs-TOOL: WHAT" (warnings, skipped work). */
void amlfs_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handle --help and --version before option parsing: help text goes to stdout. */
void amlfs_help_version(int argc, char **argv, const char *usage);

/* Option values, each checked; a bad one is exit 2 naming the option. */
long long amlfs_arg_int(const char *opt, const char *text, long long lo, long long hi);
double amlfs_arg_double(const char *opt, const char *text, double lo, double hi);
/* The index of text in the NULL-terminated list of choices, or exit 2 listing them. */
int amlfs_arg_choice(const char *opt, const char *text, const char *const *choices);
/* The index of text in the NULL-terminated list of choices, or -1: how a value read as
 * text becomes its enum (a names table is indexed by its enum). */
int amlfs_choice_index(const char *const *choices, const char *text);

/* Zeroed allocation that never returns NULL (exit 1 when memory runs out). */
void *amlfs_zalloc(size_t count, size_t size);

/* Whether stderr is a terminal (progress is printed only then). */
int amlfs_progress_on(void);

/* Seconds on the monotonic clock, for durations (throughput in logs, benchmarks). */
double amlfs_seconds(void);


#endif
