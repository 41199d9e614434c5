/* check.h: the unit tests' assertions. Each failed check prints where and why and is
 * counted; check_done() prints the tally and returns the exit status (1 on any failure,
 * and on a test that checked nothing). */
#ifndef AMLFS_CHECK_H
#define AMLFS_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_count, check_failed;

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        check_count++;                                                                  \
        if (!(cond)) {                                                                  \
            check_failed++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

/* |got - want| <= atol + rtol |want|, NaN never close. */
static inline int check_close(double got, double want, double atol, double rtol)
{
    return fabs(got - want) <= atol + rtol * fabs(want);
}

#define CHECK_CLOSE(got, want, atol, rtol, what)                                         \
    CHECK(check_close((got), (want), (atol), (rtol)), "%s: got %.17g, want %.17g", (what), \
          (double)(got), (double)(want))

static inline int check_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failed);
    return (check_failed || check_count == 0) ? 1 : 0;
}

#endif
