/* tool.c: messages, exit codes and option values shared by every tool.
 * Depends on: pending (the temporaries a failure removes). */
#include "tool.h"
#include "pending.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *tool_name = "amlfs";

void amlfs_tool_start(const char *name)
{
    tool_name = name;
    amlfs_pending_install_cleanup();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages name the file and problem */
}

const char *amlfs_tool_name(void) { return tool_name; }

void amlfs_fail(int code, const char *where, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: error: ", tool_name);
    if (where)
        fprintf(stderr, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    /* Remove the temporaries, then leave without the exit handlers: HDF5's would close
     * an output whose write just failed, which it may not survive. */
    amlfs_pending_remove_all();
    _exit(code);
}

void amlfs_note(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", tool_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void amlfs_help_version(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(AMLFS_EXIT_OK);
        }
        if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", tool_name, AMLFS_VERSION);
            exit(AMLFS_EXIT_OK);
        }
    }
}

long long amlfs_arg_int(const char *opt, const char *text, long long lo, long long hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s: '%s' is not an integer", opt, text);
    if (v < lo || v > hi)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s: %lld is outside [%lld, %lld]", opt, v, lo, hi);
    return v;
}

double amlfs_arg_double(const char *opt, const char *text, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s: '%s' is not a finite number", opt, text);
    if (v < lo || v > hi)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s: %g is outside [%g, %g]", opt, v, lo, hi);
    return v;
}

int amlfs_choice_index(const char *const *choices, const char *text)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(text, choices[i]))
            return i;
    return -1;
}

int amlfs_arg_choice(const char *opt, const char *text, const char *const *choices)
{
    int k = amlfs_choice_index(choices, text);
    if (k >= 0)
        return k;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (i)
            strncat(list, "|", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s: unknown value '%s' (expected %s)", opt, text, list);
}

int amlfs_progress_on(void) { return isatty(STDERR_FILENO); }

void *amlfs_zalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory (%zu x %zu bytes)", count, size);
    return p;
}

double amlfs_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
