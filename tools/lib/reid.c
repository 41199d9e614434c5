/* reid.c: re-ID ranking metrics and k-reciprocal re-ranking (reid.h).
 *
 * Per query, instead of sorting the whole gallery: the true matches (same pid, other
 * camera, pid not -1) are sorted by (distance, index); every other kept entry is placed
 * among them by binary search, so rank_m = m + (kept non-matches before match m), the
 * same ranks as a stable sort of the kept entries (O(G log M) per query). The queries
 * run in parallel (OpenMP) into per-query AP and first-match rank, reduced in query
 * order afterwards, so the result does not depend on the threads.
 */
#include "reid.h"

#include "metric.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_CHUNK 256 /* query rows per sgemm */

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

/* ---- the protocol on one query's row of distances --------------------------------- */

typedef struct {
    double v;
    int64_t j;
} keyed;

static int keyed_less(const keyed *a, double v, int64_t j)
{
    return a->v < v || (a->v == v && a->j < j);
}

static int compare_keyed(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

typedef struct {
    keyed *match;  /* (ng) */
    int64_t *cnt;  /* (ng + 1) */
} scratch;

/* AP and first-match rank (1-based) of one query; 0 when it has no true match. */
static int64_t eval_row(const double *row, int64_t ng, int32_t qpid, int32_t qcam,
                        const int32_t *gpids, const int32_t *gcams, scratch *s, double *ap)
{
    int64_t m = 0;
    if (qpid != -1)
        for (int64_t j = 0; j < ng; j++)
            if (gpids[j] == qpid && gcams[j] != qcam) {
                s->match[m].v = row[j];
                s->match[m].j = j;
                m++;
            }
    if (!m)
        return 0;
    qsort(s->match, (size_t)m, sizeof(keyed), compare_keyed);
    memset(s->cnt, 0, (size_t)(m + 1) * sizeof(int64_t));
    for (int64_t j = 0; j < ng; j++) {
        if (gpids[j] == -1 || gpids[j] == qpid) /* junk, same-camera mate, or a match */
            continue;
        /* the matches before (row[j], j): the first position whose key is not less */
        int64_t lo = 0, hi = m;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (keyed_less(&s->match[mid], row[j], j))
                lo = mid + 1;
            else
                hi = mid;
        }
        s->cnt[lo]++;
    }
    double sum = 0.0;
    int64_t before = 0, first = 0;
    for (int64_t t = 0; t < m; t++) {
        before += s->cnt[t];
        int64_t rank = t + 1 + before;
        if (t == 0)
            first = rank;
        sum += (double)(t + 1) / (double)rank;
    }
    *ap = sum / (double)m;
    return first;
}

static int check_ids(const int32_t *qpids, const int32_t *qcams, int64_t nq,
                     const int32_t *gpids, const int32_t *gcams, int64_t ng, char *err,
                     size_t errlen)
{
    (void)qpids;
    (void)qcams;
    (void)gpids;
    (void)gcams;
    if (nq < 1 || ng < 1)
        return fail(err, errlen, "%lld queries and %lld gallery entries, expected at least "
                    "one of each", (long long)nq, (long long)ng);
    return 0;
}

/* The reduction over the queries' AP and first ranks, in query order. */
static int finish(const double *ap, const int64_t *first, int64_t nq, amlfs_reid_result *r,
                  char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int64_t hits[AMLFS_REID_MAX_RANK] = {0};
    double sum = 0.0;
    int64_t valid = 0;
    for (int64_t i = 0; i < nq; i++) {
        if (!first[i]) {
            r->skipped++;
            continue;
        }
        valid++;
        sum += ap[i];
        if (first[i] <= AMLFS_REID_MAX_RANK)
            for (int64_t k = first[i] - 1; k < AMLFS_REID_MAX_RANK; k++)
                hits[k]++;
    }
    r->queries = valid;
    if (!valid)
        return fail(err, errlen, "no query has a true match in the gallery (same pid, "
                    "other camera): all %lld skipped", (long long)nq);
    r->map = sum / (double)valid;
    for (int k = 0; k < AMLFS_REID_MAX_RANK; k++)
        r->cmc[k] = (double)hits[k] / (double)valid;
    r->rank1 = r->cmc[0];
    return 0;
}

static int scratch_alloc(scratch *s, int64_t ng)
{
    s->match = malloc((size_t)ng * sizeof(keyed));
    s->cnt = malloc((size_t)(ng + 1) * sizeof(int64_t));
    return s->match && s->cnt ? 0 : -1;
}

static void scratch_free(scratch *s)
{
    free(s->match);
    free(s->cnt);
}

int amlfs_reid_eval_distmat(const double *distmat, const int32_t *qpids, const int32_t *qcams,
                            int64_t nq, const int32_t *gpids, const int32_t *gcams, int64_t ng,
                            amlfs_reid_result *r, char *err, size_t errlen)
{
    if (check_ids(qpids, qcams, nq, gpids, gcams, ng, err, errlen))
        return -1;
    for (int64_t i = 0; i < nq * ng; i++)
        if (!isfinite(distmat[i]))
            return fail(err, errlen, "distance [%lld][%lld] = %g, expected finite values",
                        (long long)(i / ng), (long long)(i % ng), distmat[i]);
    double *ap = malloc((size_t)nq * sizeof(double));
    int64_t *first = malloc((size_t)nq * sizeof(int64_t));
    if (!ap || !first) {
        free(ap);
        free(first);
        return fail(err, errlen, "out of memory");
    }
    int oom = 0;
#pragma omp parallel reduction(| : oom)
    {
        scratch s;
        if (scratch_alloc(&s, ng))
            oom = 1;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < nq; i++)
            if (!oom)
                first[i] = eval_row(distmat + (size_t)i * ng, ng, qpids[i], qcams[i], gpids,
                                    gcams, &s, &ap[i]);
        scratch_free(&s);
    }
    int rc = oom ? fail(err, errlen, "out of memory") : finish(ap, first, nq, r, err, errlen);
    free(ap);
    free(first);
    return rc;
}

/* Rows of float distances (nq, ng), evaluated with a double copy of each row. */
static void eval_float_rows(const float *rows, int64_t q0, int64_t nrows, int64_t ng,
                            const int32_t *qpids, const int32_t *qcams, const int32_t *gpids,
                            const int32_t *gcams, double *ap, int64_t *first, int *oom)
{
    int bad = 0;
#pragma omp parallel reduction(| : bad)
    {
        scratch s;
        double *row = malloc((size_t)ng * sizeof(double));
        if (scratch_alloc(&s, ng) || !row)
            bad = 1;
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < nrows; i++) {
            if (bad)
                continue;
            const float *src = rows + (size_t)i * ng;
            for (int64_t j = 0; j < ng; j++)
                row[j] = src[j];
            first[q0 + i] = eval_row(row, ng, qpids[q0 + i], qcams[q0 + i], gpids, gcams,
                                     &s, &ap[q0 + i]);
        }
        scratch_free(&s);
        free(row);
    }
    if (bad)
        *oom = 1;
}

/* ---- distances ---------------------------------------------------------------------- */

typedef struct {
    const float *x; /* rows as sgemm sees them: the features, or normalised copies */
    float *own;     /* the normalised copy (cosine) */
    float *norm;    /* squared norms (Euclidean) */
    int64_t n;
} prepared;

static int prepare(const float *x, int64_t n, int d, amlfs_reid_distance dist, prepared *p)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    double *tmp = malloc((size_t)d * sizeof(double)), *nr = malloc((size_t)d * sizeof(double));
    if (!tmp || !nr) {
        free(tmp);
        free(nr);
        return -1;
    }
    if (dist == AMLFS_REID_COSINE) {
        p->own = malloc((size_t)n * d * sizeof(float));
        if (!p->own) {
            free(tmp);
            free(nr);
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            for (int k = 0; k < d; k++)
                tmp[k] = x[(size_t)i * d + k];
            amlfs_normalize_row(tmp, d, nr);
            for (int k = 0; k < d; k++)
                p->own[(size_t)i * d + k] = (float)nr[k];
        }
        p->x = p->own;
    } else {
        p->norm = malloc((size_t)n * sizeof(float));
        if (!p->norm) {
            free(tmp);
            free(nr);
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            double s = 0.0;
            for (int k = 0; k < d; k++)
                s += (double)x[(size_t)i * d + k] * x[(size_t)i * d + k];
            p->norm[i] = (float)s;
        }
        p->x = x;
    }
    free(tmp);
    free(nr);
    return 0;
}

static void prepared_free(prepared *p)
{
    free(p->own);
    free(p->norm);
}

/* out (m, b->n) = distances of a's rows r0..r0+m-1 to every row of b. */
static void dist_block(const prepared *a, int64_t r0, int64_t m, const prepared *b, int d,
                       amlfs_reid_distance dist, float *out, int64_t ld)
{
    int64_t nb = b->n;
    if (dist == AMLFS_REID_COSINE) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nb, d, 1.0f,
                    a->x + (size_t)r0 * d, d, b->x, d, 0.0f, out, (int)ld);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nb; j++)
                out[(size_t)i * ld + j] = 1.0f - out[(size_t)i * ld + j];
    } else {
        /* torchreid's addmm: (|a|^2 + |b|^2) - 2 a.b, float32 */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nb; j++)
                out[(size_t)i * ld + j] = a->norm[r0 + i] + b->norm[j];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nb, d, -2.0f,
                    a->x + (size_t)r0 * d, d, b->x, d, 1.0f, out, (int)ld);
    }
}

static int check_features(const float *x, int64_t n, int d, const char *what, char *err,
                          size_t errlen)
{
    for (int64_t i = 0; i < n * (int64_t)d; i++)
        if (!isfinite(x[i]))
            return fail(err, errlen, "%s features [%lld][%lld] = %g, expected finite values",
                        what, (long long)(i / d), (long long)(i % d), x[i]);
    return 0;
}

int amlfs_reid_distances(const float *a, int64_t na, const float *b, int64_t nb, int d,
                         amlfs_reid_distance dist, float *out, char *err, size_t errlen)
{
    if (na < 1 || nb < 1 || d < 1)
        return fail(err, errlen, "features (%lld,%d) and (%lld,%d), expected at least one "
                    "row and column", (long long)na, d, (long long)nb, d);
    prepared pa, pb;
    if (prepare(a, na, d, dist, &pa) || prepare(b, nb, d, dist, &pb)) {
        prepared_free(&pa);
        return fail(err, errlen, "out of memory");
    }
    for (int64_t r = 0; r < na; r += QUERY_CHUNK) {
        int64_t m = na - r < QUERY_CHUNK ? na - r : QUERY_CHUNK;
        dist_block(&pa, r, m, &pb, d, dist, out + (size_t)r * nb, nb);
    }
    prepared_free(&pa);
    prepared_free(&pb);
    return 0;
}

/* ---- re-ranking --------------------------------------------------------------------- */

typedef struct {
    int32_t *col;
    float *val;
    int64_t n;
} sparse_row;

/* The k smallest of row (n) by (value, index), ascending, into idx. */
static void smallest(const float *row, int64_t n, int k, int32_t *idx)
{
    int c = 0;
    for (int64_t j = 0; j < n; j++) {
        float v = row[j];
        if (c == k && !(v < row[idx[k - 1]]))
            continue; /* equal values: the earlier index stays ahead */
        int p = c < k ? c++ : k - 1;
        while (p > 0 && v < row[idx[p - 1]]) {
            idx[p] = idx[p - 1];
            p--;
        }
        idx[p] = (int32_t)j;
    }
}

static int compare_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int holds(const int32_t *set, int n, int32_t v)
{
    for (int t = 0; t < n; t++)
        if (set[t] == v)
            return 1;
    return 0;
}

/* The re-ranking on o, which holds A (N,N) on entry and is overwritten; out (nq, ng). */
static int rerank_core(float *o, int64_t nq, int64_t ng, int k1, int k2, double lambda,
                       float *out, char *err, size_t errlen)
{
    int64_t n = nq + ng;
    if (k1 < 1 || k2 < 1 || k2 > k1 + 1 || k1 + 1 > n)
        return fail(err, errlen, "re-ranking: k1 %d, k2 %d for %lld images, expected "
                    "1 <= k2 <= k1 + 1 <= images", k1, k2, (long long)n);
    /* original = transpose(A^2 / colmax(A^2)): row i is column i of A */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            float t = o[(size_t)i * n + j];
            o[(size_t)i * n + j] = o[(size_t)j * n + i];
            o[(size_t)j * n + i] = t;
        }
    int64_t zero_row = -1;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *row = o + (size_t)i * n, mx = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            double a = row[j];
            row[j] = (float)(a * a); /* exact product, one rounding: float32's square */
            mx = row[j] > mx ? row[j] : mx;
        }
        if (!(mx > 0.0f)) {
#pragma omp critical
            zero_row = zero_row < 0 || i < zero_row ? i : zero_row;
            continue;
        }
        for (int64_t j = 0; j < n; j++)
            row[j] = row[j] / mx;
    }
    if (zero_row >= 0)
        return fail(err, errlen, "re-ranking: every distance of image %lld is 0 (or not a "
                    "number)", (long long)zero_row);
    int kk = k1 + 1, h = (int)rint(k1 / 2.0) + 1; /* np.around: half to even */
    if (h > kk)
        h = kk;
    int32_t *rank = malloc((size_t)n * kk * sizeof(int32_t));
    sparse_row *v = calloc((size_t)n, sizeof(sparse_row));
    sparse_row *vq = calloc((size_t)n, sizeof(sparse_row));
    if (!rank || !v || !vq) {
        free(rank);
        free(v);
        free(vq);
        return fail(err, errlen, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; i++)
        smallest(o + (size_t)i * n, n, kk, rank + (size_t)i * kk);
    int oom = 0;
#pragma omp parallel reduction(| : oom)
    {
        int cap = kk + kk * h;
        int32_t *kr = malloc((size_t)kk * sizeof(int32_t));
        int32_t *ckr = malloc((size_t)h * sizeof(int32_t));
        int32_t *ex = malloc((size_t)cap * sizeof(int32_t));
        if (!kr || !ckr || !ex)
            oom = 1;
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < n; i++) {
            if (oom)
                continue;
            const int32_t *fw = rank + (size_t)i * kk;
            int nk = 0;
            for (int t = 0; t < kk; t++)
                if (holds(rank + (size_t)fw[t] * kk, kk, (int32_t)i))
                    kr[nk++] = fw[t];
            int ne = 0;
            for (int t = 0; t < nk; t++)
                ex[ne++] = kr[t];
            for (int t = 0; t < nk; t++) {
                int32_t c = kr[t];
                const int32_t *cf = rank + (size_t)c * kk;
                int nc = 0;
                for (int u = 0; u < h; u++)
                    if (holds(rank + (size_t)cf[u] * kk, h, c))
                        ckr[nc++] = cf[u];
                int common = 0;
                for (int u = 0; u < nc; u++)
                    common += holds(kr, nk, ckr[u]);
                if ((double)common > 2.0 / 3 * nc)
                    for (int u = 0; u < nc; u++)
                        ex[ne++] = ckr[u];
            }
            qsort(ex, (size_t)ne, sizeof(int32_t), compare_i32);
            int nu = 0;
            for (int t = 0; t < ne; t++)
                if (!nu || ex[t] != ex[nu - 1])
                    ex[nu++] = ex[t];
            sparse_row *vr = &v[i];
            vr->col = malloc((size_t)nu * sizeof(int32_t));
            vr->val = malloc((size_t)nu * sizeof(float));
            if (!vr->col || !vr->val) {
                oom = 1;
                continue;
            }
            vr->n = nu;
            double sum = 0.0;
            for (int t = 0; t < nu; t++) {
                vr->col[t] = ex[t];
                vr->val[t] = expf(-o[(size_t)i * n + ex[t]]);
                sum += vr->val[t];
            }
            float fs = (float)sum;
            for (int t = 0; t < nu; t++)
                vr->val[t] = vr->val[t] / fs;
        }
        free(kr);
        free(ckr);
        free(ex);
    }
    /* local query expansion: the mean of the k2 nearest rows, float32 in rank order */
    if (!oom && k2 > 1) {
#pragma omp parallel reduction(| : oom)
        {
            float *acc = calloc((size_t)n, sizeof(float));
            int32_t *touched = malloc((size_t)n * sizeof(int32_t));
            char *seen = calloc((size_t)n, 1);
            if (!acc || !touched || !seen)
                oom = 1;
#pragma omp for schedule(dynamic, 64)
            for (int64_t i = 0; i < n; i++) {
                if (oom)
                    continue;
                int64_t nt = 0;
                for (int t = 0; t < k2; t++) {
                    const sparse_row *s = &v[rank[(size_t)i * kk + t]];
                    for (int64_t u = 0; u < s->n; u++) {
                        int32_t c = s->col[u];
                        if (!seen[c]) {
                            seen[c] = 1;
                            touched[nt++] = c;
                        }
                        acc[c] += s->val[u];
                    }
                }
                qsort(touched, (size_t)nt, sizeof(int32_t), compare_i32);
                sparse_row *q = &vq[i];
                q->col = malloc((size_t)(nt ? nt : 1) * sizeof(int32_t));
                q->val = malloc((size_t)(nt ? nt : 1) * sizeof(float));
                if (!q->col || !q->val) {
                    oom = 1;
                    continue;
                }
                int64_t w = 0;
                for (int64_t t = 0; t < nt; t++) {
                    int32_t c = touched[t];
                    float mean = acc[c] / (float)k2;
                    if (mean != 0.0f) {
                        q->col[w] = c;
                        q->val[w++] = mean;
                    }
                    acc[c] = 0.0f;
                    seen[c] = 0;
                }
                q->n = w;
            }
            free(acc);
            free(touched);
            free(seen);
        }
        for (int64_t i = 0; i < n; i++) {
            free(v[i].col);
            free(v[i].val);
        }
        free(v);
        v = vq;
        vq = NULL;
    }
    free(rank);
    /* invIndex over the gallery rows: per column, the rows (ascending) and their values */
    int64_t *start = calloc((size_t)n + 1, sizeof(int64_t));
    int64_t nnz = 0;
    int32_t *irow = NULL;
    float *ival = NULL;
    if (!oom && start) {
        for (int64_t r = nq; r < n; r++)
            for (int64_t u = 0; u < v[r].n; u++)
                start[v[r].col[u] + 1]++;
        for (int64_t c = 0; c < n; c++)
            start[c + 1] += start[c];
        nnz = start[n];
        irow = malloc((size_t)(nnz ? nnz : 1) * sizeof(int32_t));
        ival = malloc((size_t)(nnz ? nnz : 1) * sizeof(float));
        int64_t *fill = malloc((size_t)n * sizeof(int64_t));
        if (irow && ival && fill) {
            memcpy(fill, start, (size_t)n * sizeof(int64_t));
            for (int64_t r = nq; r < n; r++)
                for (int64_t u = 0; u < v[r].n; u++) {
                    int64_t p = fill[v[r].col[u]]++;
                    irow[p] = (int32_t)r;
                    ival[p] = v[r].val[u];
                }
        } else {
            oom = 1;
        }
        free(fill);
    } else {
        oom = 1;
    }
    const float lam = (float)lambda, lam1 = (float)(1.0 - lambda);
    if (!oom) {
#pragma omp parallel reduction(| : oom)
        {
            float *tmin = calloc((size_t)ng, sizeof(float));
            if (!tmin)
                oom = 1;
#pragma omp for schedule(dynamic, 16)
            for (int64_t i = 0; i < nq; i++) {
                if (oom)
                    continue;
                memset(tmin, 0, (size_t)ng * sizeof(float));
                const sparse_row *s = &v[i];
                for (int64_t u = 0; u < s->n; u++) {
                    int32_t k = s->col[u];
                    float vik = s->val[u];
                    for (int64_t p = start[k]; p < start[k + 1]; p++) {
                        float m = vik < ival[p] ? vik : ival[p];
                        tmin[irow[p] - nq] += m;
                    }
                }
                const float *orow = o + (size_t)i * n + nq;
                float *dst = out + (size_t)i * ng;
                for (int64_t g = 0; g < ng; g++) {
                    float t = tmin[g];
                    float jac = 1.0f - t / (2.0f - t);
                    dst[g] = jac * lam1 + orow[g] * lam;
                }
            }
            free(tmin);
        }
    }
    free(start);
    free(irow);
    free(ival);
    for (int64_t i = 0; v && i < n; i++) {
        free(v[i].col);
        free(v[i].val);
    }
    free(v);
    for (int64_t i = 0; vq && i < n; i++) {
        free(vq[i].col);
        free(vq[i].val);
    }
    free(vq);
    return oom ? fail(err, errlen, "out of memory in the re-ranking") : 0;
}

int amlfs_reid_rerank(const float *qg, const float *qq, const float *gg, int64_t nq,
                      int64_t ng, int k1, int k2, double lambda, float *out, char *err,
                      size_t errlen)
{
    if (nq < 1 || ng < 1)
        return fail(err, errlen, "re-ranking: %lld queries, %lld gallery entries",
                    (long long)nq, (long long)ng);
    int64_t n = nq + ng;
    float *a = malloc((size_t)n * n * sizeof(float));
    if (!a)
        return fail(err, errlen, "out of memory for the (%lld,%lld) re-ranking matrix",
                    (long long)n, (long long)n);
    for (int64_t i = 0; i < nq; i++) {
        memcpy(a + (size_t)i * n, qq + (size_t)i * nq, (size_t)nq * sizeof(float));
        memcpy(a + (size_t)i * n + nq, qg + (size_t)i * ng, (size_t)ng * sizeof(float));
    }
    for (int64_t g = 0; g < ng; g++) {
        float *row = a + (size_t)(nq + g) * n;
        for (int64_t i = 0; i < nq; i++)
            row[i] = qg[(size_t)i * ng + g];
        memcpy(row + nq, gg + (size_t)g * ng, (size_t)ng * sizeof(float));
    }
    int rc = rerank_core(a, nq, ng, k1, k2, lambda, out, err, errlen);
    free(a);
    return rc;
}

/* ---- the features entry point ----------------------------------------------------- */

int amlfs_reid_eval(const float *qf, const int32_t *qpids, const int32_t *qcams, int64_t nq,
                    const float *gf, const int32_t *gpids, const int32_t *gcams, int64_t ng,
                    int d, amlfs_reid_distance dist, int rerank, amlfs_reid_result *r,
                    char *err, size_t errlen)
{
    if (check_ids(qpids, qcams, nq, gpids, gcams, ng, err, errlen))
        return -1;
    if (d < 1)
        return fail(err, errlen, "feature dimension %d, expected at least 1", d);
    if (dist != AMLFS_REID_EUCLIDEAN && dist != AMLFS_REID_COSINE)
        return fail(err, errlen, "unknown distance %d", (int)dist);
    if (check_features(qf, nq, d, "query", err, errlen) ||
        check_features(gf, ng, d, "gallery", err, errlen))
        return -1;
    double *ap = malloc((size_t)nq * sizeof(double));
    int64_t *first = malloc((size_t)nq * sizeof(int64_t));
    if (!ap || !first) {
        free(ap);
        free(first);
        return fail(err, errlen, "out of memory");
    }
    int oom = 0, rc = 0;
    if (!rerank) {
        prepared pq, pg;
        float *block = malloc((size_t)QUERY_CHUNK * ng * sizeof(float));
        if (!block || prepare(qf, nq, d, dist, &pq)) {
            free(block);
            free(ap);
            free(first);
            return fail(err, errlen, "out of memory");
        }
        if (prepare(gf, ng, d, dist, &pg)) {
            prepared_free(&pq);
            free(block);
            free(ap);
            free(first);
            return fail(err, errlen, "out of memory");
        }
        for (int64_t q0 = 0; q0 < nq && !oom; q0 += QUERY_CHUNK) {
            int64_t m = nq - q0 < QUERY_CHUNK ? nq - q0 : QUERY_CHUNK;
            dist_block(&pq, q0, m, &pg, d, dist, block, ng);
            eval_float_rows(block, q0, m, ng, qpids, qcams, gpids, gcams, ap, first, &oom);
        }
        prepared_free(&pq);
        prepared_free(&pg);
        free(block);
    } else {
        /* A = [[qq, qg], [qg^T, gg]] from the concatenated features, qg^T copied so the
         * blocks are torchreid's */
        int64_t n = nq + ng;
        float *x = malloc((size_t)n * d * sizeof(float));
        float *a = malloc((size_t)n * n * sizeof(float));
        float *fin = malloc((size_t)nq * ng * sizeof(float));
        prepared px;
        if (!x || !a || !fin) {
            free(x);
            free(a);
            free(fin);
            free(ap);
            free(first);
            return fail(err, errlen, "out of memory for the (%lld,%lld) re-ranking matrix",
                        (long long)n, (long long)n);
        }
        memcpy(x, qf, (size_t)nq * d * sizeof(float));
        memcpy(x + (size_t)nq * d, gf, (size_t)ng * d * sizeof(float));
        if (prepare(x, n, d, dist, &px)) {
            free(x);
            free(a);
            free(fin);
            free(ap);
            free(first);
            return fail(err, errlen, "out of memory");
        }
        for (int64_t r0 = 0; r0 < n; r0 += QUERY_CHUNK) {
            int64_t m = n - r0 < QUERY_CHUNK ? n - r0 : QUERY_CHUNK;
            dist_block(&px, r0, m, &px, d, dist, a + (size_t)r0 * n, n);
        }
        prepared_free(&px);
        free(x);
        for (int64_t g = nq; g < n; g++)
            for (int64_t i = 0; i < nq; i++)
                a[(size_t)g * n + i] = a[(size_t)i * n + g];
        rc = rerank_core(a, nq, ng, 20, 6, 0.3, fin, err, errlen);
        free(a);
        if (rc == 0)
            eval_float_rows(fin, 0, nq, ng, qpids, qcams, gpids, gcams, ap, first, &oom);
        free(fin);
    }
    if (rc == 0)
        rc = oom ? fail(err, errlen, "out of memory") : finish(ap, first, nq, r, err, errlen);
    free(ap);
    free(first);
    return rc;
}
