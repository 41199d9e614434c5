/* bench.h: what the benchmark programs share beyond the tools' library (amlfs_seconds
 * in tool.h times them). */
#ifndef AMLFS_BENCH_H
#define AMLFS_BENCH_H

/* qsort's comparison of doubles, ascending, for the medians of timed runs. */
static inline int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
