/* metric.c: face verification, insightface's protocol (metric.h). */
#include "metric.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACC_THRESHOLDS 400  /* np.arange(0, 4, 0.01): threshold i is i * 0.01 */
#define ACC_STEP 0.01
#define VAL_THRESHOLDS 4000 /* np.arange(0, 4, 0.001) */
#define VAL_STEP 0.001

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void amlfs_normalize_row(const double *x, int d, double *out)
{
    double ss = 0.0;
    for (int k = 0; k < d; k++)
        ss += x[k] * x[k];
    double norm = sqrt(ss);
    if (norm == 0.0)
        norm = 1.0; /* sklearn.preprocessing.normalize: a zero row stays zero */
    for (int k = 0; k < d; k++)
        out[k] = x[k] / norm;
}

/* The number of thresholds i * step (i < count) at or below dist: pair p is "same" at
 * threshold i exactly when i >= this (dist < i * step). The thresholds are computed as
 * NumPy's arange computes them (0 + i * step), so the comparison is the same. */
static int first_above(double dist, double step, int count)
{
    double guess = floor(dist / step);
    int i = guess < 0 ? 0 : guess > count ? count : (int)guess;
    while (i < count && (double)i * step <= dist)
        i++;
    while (i > 0 && (double)(i - 1) * step > dist)
        i--;
    return i;
}

/* Fold f's test rows [start, start + size): sklearn's KFold without shuffle. */
static void fold_range(int64_t p, int folds, int f, int64_t *start, int64_t *size)
{
    int64_t base = p / folds, extra = p % folds;
    *start = f * base + (f < extra ? f : extra);
    *size = base + (f < extra ? 1 : 0);
}

static double mean_of(const double *v, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

static double pstd_of(const double *v, int n)
{
    double m = mean_of(v, n), s = 0.0;
    for (int i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return sqrt(s / n);
}

/* scipy's interp1d(x, y, kind='slinear')(xv) for x non-decreasing (duplicates allowed)
 * and x[0] <= xv <= x[m-1]: its degree-1 B-spline with knots [x0, x0, ..., x_{m-1},
 * x_{m-1}] evaluated by de Boor's recursion, in the same operations: the interval
 * [x[j-1], x[j]] with j the first index >= 1 whose x exceeds xv (at most m - 1); an
 * empty interval gives 0, as scipy's _deBoor_D zeroes its basis there. */
static double interp_slinear(const double *x, const double *y, int m, double xv)
{
    int j = 1;
    while (j < m - 1 && x[j] <= xv)
        j++;
    double xa = x[j - 1], xb = x[j];
    if (xb == xa)
        return 0.0;
    double w = 1.0 / (xb - xa);
    double h0 = 0.0 + w * (xb - xv), h1 = w * (xv - xa);
    double out = 0.0 + y[j - 1] * h0;
    return out + y[j] * h1;
}

int amlfs_verify_dist(const double *dist, const uint8_t *issame, int64_t p, int folds,
                      double far_target, amlfs_verify_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (folds < 1)
        return fail(err, errlen, "folds = %d, expected at least 1", folds);
    if (p < folds)
        return fail(err, errlen, "%lld pairs for %d folds: each fold needs a pair",
                    (long long)p, folds);
    if (!(far_target > 0.0 && far_target <= 1.0))
        return fail(err, errlen, "FAR target %g, expected 0 < FAR <= 1", far_target);
    for (int64_t i = 0; i < p; i++) {
        if (!(dist[i] >= 0.0) || isinf(dist[i]))
            return fail(err, errlen, "distance %lld is %g, expected a finite value >= 0",
                        (long long)i, dist[i]);
        if (issame[i] > 1)
            return fail(err, errlen, "issame %lld is %d, expected 0 or 1", (long long)i,
                        issame[i]);
    }
    /* Per pair, the first threshold index of each grid at which it is "same"; per fold,
     * histograms of those indices for same and different pairs (index count = never). */
    int *acc_first = malloc((size_t)p * sizeof(int)), *val_first = malloc((size_t)p * sizeof(int));
    size_t hs = (size_t)folds + 1; /* fold rows, then the total */
    int64_t *acc_same = calloc(hs * (ACC_THRESHOLDS + 1), sizeof(int64_t));
    int64_t *acc_diff = calloc(hs * (ACC_THRESHOLDS + 1), sizeof(int64_t));
    int64_t *val_diff = calloc(hs * (VAL_THRESHOLDS + 1), sizeof(int64_t));
    double *acc = malloc((size_t)folds * sizeof(double)), *best_t = malloc((size_t)folds * sizeof(double));
    double *val = malloc((size_t)folds * sizeof(double)), *far = malloc((size_t)folds * sizeof(double));
    double *val_t = malloc((size_t)folds * sizeof(double));
    double *far_train = malloc(VAL_THRESHOLDS * sizeof(double));
    double *thresholds = malloc(VAL_THRESHOLDS * sizeof(double));
    if (!acc_first || !val_first || !acc_same || !acc_diff || !val_diff || !acc || !best_t ||
        !val || !far || !val_t || !far_train || !thresholds) {
        free(acc_first); free(val_first); free(acc_same); free(acc_diff); free(val_diff);
        free(acc); free(best_t); free(val); free(far); free(val_t); free(far_train);
        free(thresholds);
        return fail(err, errlen, "out of memory for %lld pairs", (long long)p);
    }
    for (int i = 0; i < VAL_THRESHOLDS; i++)
        thresholds[i] = (double)i * VAL_STEP;
    int tar_defined = 1;
    for (int f = 0; f < folds; f++) {
        int64_t start, size;
        fold_range(p, folds, f, &start, &size);
        for (int64_t i = start; i < start + size; i++) {
            acc_first[i] = first_above(dist[i], ACC_STEP, ACC_THRESHOLDS);
            val_first[i] = first_above(dist[i], VAL_STEP, VAL_THRESHOLDS);
            int64_t *ah = (issame[i] ? acc_same : acc_diff);
            ah[(size_t)f * (ACC_THRESHOLDS + 1) + acc_first[i]]++;
            ah[(size_t)folds * (ACC_THRESHOLDS + 1) + acc_first[i]]++;
            if (!issame[i]) {
                val_diff[(size_t)f * (VAL_THRESHOLDS + 1) + val_first[i]]++;
                val_diff[(size_t)folds * (VAL_THRESHOLDS + 1) + val_first[i]]++;
            }
        }
    }
    const int64_t *tot_same = acc_same + (size_t)folds * (ACC_THRESHOLDS + 1);
    const int64_t *tot_diff = acc_diff + (size_t)folds * (ACC_THRESHOLDS + 1);
    const int64_t *tot_vdiff = val_diff + (size_t)folds * (VAL_THRESHOLDS + 1);
    for (int f = 0; f < folds; f++) {
        int64_t start, size;
        fold_range(p, folds, f, &start, &size);
        const int64_t *ts = acc_same + (size_t)f * (ACC_THRESHOLDS + 1);
        const int64_t *td = acc_diff + (size_t)f * (ACC_THRESHOLDS + 1);
        /* the training folds' counts: the total less the test fold (LFold with one
         * fold trains on the test pairs themselves) */
        int one = folds == 1;
        int64_t n_same_tr = 0, n_diff_tr = 0, n_same_te = 0, n_diff_te = 0;
        for (int i = 0; i <= ACC_THRESHOLDS; i++) {
            n_same_te += ts[i];
            n_diff_te += td[i];
            n_same_tr += one ? ts[i] : tot_same[i] - ts[i];
            n_diff_tr += one ? td[i] : tot_diff[i] - td[i];
        }
        /* accuracy: the first threshold of most correct training pairs */
        int64_t tp = 0, fp = 0, best = -1;
        int best_i = 0;
        for (int i = 0; i < ACC_THRESHOLDS; i++) {
            tp += one ? ts[i] : tot_same[i] - ts[i];
            fp += one ? td[i] : tot_diff[i] - td[i];
            int64_t correct = tp + (n_diff_tr - fp);
            if (correct > best) {
                best = correct;
                best_i = i;
            }
        }
        int64_t tp_te = 0, fp_te = 0;
        for (int i = 0; i <= best_i; i++) {
            tp_te += ts[i];
            fp_te += td[i];
        }
        acc[f] = (double)(tp_te + (n_diff_te - fp_te)) / (double)size;
        best_t[f] = (double)best_i * ACC_STEP;

        /* TAR at FAR: the training FAR of every threshold of the fine grid */
        const int64_t *vd = val_diff + (size_t)f * (VAL_THRESHOLDS + 1);
        double thr = 0.0;
        if (n_diff_tr == 0 || n_same_te == 0 || n_diff_te == 0) {
            tar_defined = 0;
        } else {
            int64_t fa = 0;
            double far_max = -1.0;
            for (int i = 0; i < VAL_THRESHOLDS; i++) {
                fa += one ? vd[i] : tot_vdiff[i] - vd[i];
                far_train[i] = (double)fa / (double)n_diff_tr;
                if (far_train[i] > far_max)
                    far_max = far_train[i];
            }
            if (far_max >= far_target)
                thr = interp_slinear(far_train, thresholds, VAL_THRESHOLDS, far_target);
            int64_t ta = 0, fa_te = 0;
            for (int64_t i = start; i < start + size; i++)
                if (dist[i] < thr) {
                    if (issame[i])
                        ta++;
                    else
                        fa_te++;
                }
            val[f] = (double)ta / (double)n_same_te;
            far[f] = (double)fa_te / (double)n_diff_te;
        }
        val_t[f] = thr;
        (void)n_same_tr;
    }
    r->folds = folds;
    r->pairs = p;
    r->accuracy = mean_of(acc, folds);
    r->accuracy_std = pstd_of(acc, folds);
    r->threshold = mean_of(best_t, folds);
    if (tar_defined) {
        r->tar_at_far = mean_of(val, folds);
        r->far = mean_of(far, folds);
        r->tar_std = pstd_of(val, folds);
        r->tar_threshold = mean_of(val_t, folds);
    } else {
        r->tar_at_far = r->far = r->tar_std = r->tar_threshold = NAN;
    }
    free(acc_first); free(val_first); free(acc_same); free(acc_diff); free(val_diff);
    free(acc); free(best_t); free(val); free(far); free(val_t); free(far_train);
    free(thresholds);
    return 0;
}

int amlfs_verify_f64(const double *emb, int64_t n, int d, const int32_t *pairs,
                     const uint8_t *issame, int64_t p, int folds, double far_target,
                     amlfs_verify_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (n < 1 || d < 1)
        return fail(err, errlen, "embeddings (%lld,%d), expected N >= 1 rows of D >= 1",
                    (long long)n, d);
    for (int64_t i = 0; i < p; i++)
        for (int c = 0; c < 2; c++)
            if (pairs[2 * i + c] < 0 || pairs[2 * i + c] >= n)
                return fail(err, errlen, "pair %lld names row %d, expected 0 to %lld",
                            (long long)i, pairs[2 * i + c], (long long)n - 1);
    for (int64_t i = 0; i < n * (int64_t)d; i++)
        if (!isfinite(emb[i]))
            return fail(err, errlen, "embedding row %lld holds %g, expected finite values",
                        (long long)(i / d), emb[i]);
    double *e = malloc((size_t)n * d * sizeof(double)), *dist = malloc((size_t)p * sizeof(double));
    if (!e || !dist) {
        free(e);
        free(dist);
        return fail(err, errlen, "out of memory for (%lld,%d) embeddings", (long long)n, d);
    }
    for (int64_t i = 0; i < n; i++)
        amlfs_normalize_row(emb + (size_t)i * d, d, e + (size_t)i * d);
    for (int64_t i = 0; i < p; i++) {
        const double *a = e + (size_t)pairs[2 * i] * d, *b = e + (size_t)pairs[2 * i + 1] * d;
        double s = 0.0;
        for (int k = 0; k < d; k++)
            s += (a[k] - b[k]) * (a[k] - b[k]);
        dist[i] = s;
    }
    free(e);
    int rc = amlfs_verify_dist(dist, issame, p, folds, far_target, r, err, errlen);
    free(dist);
    return rc;
}

int amlfs_verify(const float *emb, int64_t n, int d, const int32_t *pairs,
                 const uint8_t *issame, int64_t p, int folds, double far_target,
                 amlfs_verify_result *r, char *err, size_t errlen)
{
    if (n < 1 || d < 1) {
        memset(r, 0, sizeof *r);
        return fail(err, errlen, "embeddings (%lld,%d), expected N >= 1 rows of D >= 1",
                    (long long)n, d);
    }
    double *e = malloc((size_t)n * d * sizeof(double));
    if (!e) {
        memset(r, 0, sizeof *r);
        return fail(err, errlen, "out of memory for (%lld,%d) embeddings", (long long)n, d);
    }
    for (size_t i = 0; i < (size_t)n * d; i++)
        e[i] = emb[i];
    int rc = amlfs_verify_f64(e, n, d, pairs, issame, p, folds, far_target, r, err, errlen);
    free(e);
    return rc;
}
