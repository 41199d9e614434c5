/* identify.c: MegaFace-style rank-k identification, streamed over the distractors
 * (metric.h).
 *
 * Per chunk of distractors: the rows normalised (float64, then rounded to float32), the
 * scores of every probe against them by one sgemm (float32), and per probe a scan that
 * keeps the candidates: every distractor whose float32 score is within 2 * bound of the
 * rank-th best float32 score seen so far, with its score recomputed exactly (float64,
 * index order). bound is a rigorous limit of |float32 score - float64 score| (the
 * rounding of the inputs and the standard gamma_d bound of a d-term dot product in any
 * summation order, FMA or not), so every distractor among the exact top rank lies in the
 * candidates: one left out has a float32 score below A_k - 2 bound, so an exact score
 * below A_k - bound, where the rank distractors of float32 score >= A_k all score exactly
 * at least A_k - bound. The exact j-th best (j <= rank) is then the j-th best candidate.
 *
 * Threads: each of W workers (OpenMP's threads at begin) keeps its own candidates for
 * every probe and takes whole chunks, sgemm single-threaded (OpenBLAS is set to one
 * thread when W > 1), so no thread waits on another within a block of chunks; the end
 * merges the workers' candidates (each worker's hold its share of the exact top rank,
 * their union the whole). The result does not depend on W.
 */
#include "metric.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ROWS 2048 /* distractors per sgemm */
#define CHUNKS_PER_WORKER 4 /* per block: the dynamic schedule evens out a slow thread */

typedef struct {
    float approx;
    double exact;
} candidate;

typedef struct {
    float *top;     /* the rank best float32 scores seen, descending (count of them) */
    int count;
    candidate *cand; /* candidates, unordered */
    int64_t ncand, cap, prune_at;
} probe_state;

typedef struct {
    probe_state *ps; /* (np) */
    double *cd;      /* its chunk normalised, float64 (CHUNK_ROWS,d) */
    float *cf;       /* the same rounded to float32 */
    float *scores;   /* (np, CHUNK_ROWS) */
} worker;

struct amlfs_identify_state {
    int64_t np, seen;
    int d, rank, workers;
    double bound;
    double *pd;  /* probes normalised, float64 (np,d) */
    float *pf;   /* the same rounded to float32 */
    int32_t *ids;
    worker *w;
    int failed;  /* 1 out of memory during an add, 2 a non-finite distractor */
};

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

static double dot64(const double *a, const double *b, int d)
{
    double s = 0.0;
    for (int k = 0; k < d; k++)
        s += a[k] * b[k];
    return s;
}

static void state_free(amlfs_identify_state *s)
{
    if (!s)
        return;
    for (int t = 0; s->w && t < s->workers; t++) {
        worker *w = &s->w[t];
        if (w->ps)
            for (int64_t i = 0; i < s->np; i++) {
                free(w->ps[i].top);
                free(w->ps[i].cand);
            }
        free(w->ps);
        free(w->cd);
        free(w->cf);
        free(w->scores);
    }
    free(s->w);
    free(s->pd);
    free(s->pf);
    free(s->ids);
    free(s);
}

amlfs_identify_state *amlfs_identify_begin(const double *probe, const int32_t *probe_ids,
                                           int64_t np, int d, int rank, char *err,
                                           size_t errlen)
{
    if (np < 1 || d < 1) {
        fail(err, errlen, "probes (%lld,%d), expected N >= 1 rows of D >= 1", (long long)np, d);
        return NULL;
    }
    if (rank < 1 || rank > AMLFS_IDENTIFY_MAX_RANK) {
        fail(err, errlen, "rank %d, expected 1 to %d", rank, AMLFS_IDENTIFY_MAX_RANK);
        return NULL;
    }
    for (int64_t i = 0; i < np * (int64_t)d; i++)
        if (!isfinite(probe[i])) {
            fail(err, errlen, "probe row %lld holds %g, expected finite values",
                 (long long)(i / d), probe[i]);
            return NULL;
        }
    amlfs_identify_state *s = calloc(1, sizeof *s);
    if (!s) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    s->np = np;
    s->d = d;
    s->rank = rank;
    /* u = 2^-24; gamma_d (1+u)^2 for the float32 dot product of the rounded unit
     * vectors (sum |x_k y_k| <= 1 + 2u by Cauchy-Schwarz), 2u (1+u) for rounding the
     * inputs, and a margin for the float64 sums themselves (d * 2^-53 and more) */
    double u = ldexp(1.0, -24), gamma = d * u / (1.0 - d * u);
    s->bound = gamma * (1.0 + u) * (1.0 + u) + 2.0 * u * (1.0 + u) + 1e-12 + d * ldexp(1.0, -50);
    s->workers = omp_get_max_threads();
    if (s->workers < 1)
        s->workers = 1;
    if (s->workers > 1)
        openblas_set_num_threads(1); /* the workers are the parallelism */
    s->pd = malloc((size_t)np * d * sizeof(double));
    s->pf = malloc((size_t)np * d * sizeof(float));
    s->ids = malloc((size_t)np * sizeof(int32_t));
    s->w = calloc((size_t)s->workers, sizeof(worker));
    int ok = s->pd && s->pf && s->ids && s->w;
    for (int t = 0; ok && t < s->workers; t++) {
        worker *w = &s->w[t];
        w->ps = calloc((size_t)np, sizeof(probe_state));
        w->cd = malloc((size_t)CHUNK_ROWS * d * sizeof(double));
        w->cf = malloc((size_t)CHUNK_ROWS * d * sizeof(float));
        w->scores = malloc((size_t)np * CHUNK_ROWS * sizeof(float));
        ok = w->ps && w->cd && w->cf && w->scores;
        for (int64_t i = 0; ok && i < np; i++) {
            w->ps[i].top = malloc((size_t)rank * sizeof(float));
            w->ps[i].prune_at = 64;
            ok = w->ps[i].top != NULL;
        }
    }
    if (!ok) {
        state_free(s);
        fail(err, errlen, "out of memory for %lld probes of dimension %d", (long long)np, d);
        return NULL;
    }
    memcpy(s->ids, probe_ids, (size_t)np * sizeof(int32_t));
    for (int64_t i = 0; i < np; i++) {
        amlfs_normalize_row(probe + (size_t)i * d, d, s->pd + (size_t)i * d);
        for (int k = 0; k < d; k++)
            s->pf[(size_t)i * d + k] = (float)s->pd[(size_t)i * d + k];
    }
    return s;
}

/* The lowest float32 score a candidate may have now: -inf until rank scores are seen. */
static double floor_of(const amlfs_identify_state *s, const probe_state *p)
{
    return p->count < s->rank ? -INFINITY : (double)p->top[s->rank - 1] - 2.0 * s->bound;
}

/* Probe i meets distractor j of the chunk with float32 score a: kept when it could be
 * among the exact top rank. Returns -1 when memory ran out. */
static int offer(const amlfs_identify_state *s, probe_state *p, int64_t i, float a,
                 const double *row)
{
    if ((double)a < floor_of(s, p))
        return 0;
    if (p->ncand == p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 16;
        candidate *c = realloc(p->cand, (size_t)cap * sizeof(candidate));
        if (!c)
            return -1;
        p->cand = c;
        p->cap = cap;
    }
    p->cand[p->ncand].approx = a;
    p->cand[p->ncand].exact = dot64(s->pd + (size_t)i * s->d, row, s->d);
    p->ncand++;
    /* the rank best float32 scores, descending */
    int k = s->rank;
    if (p->count < k || a > p->top[k - 1]) {
        int j = p->count < k ? p->count++ : k - 1;
        while (j > 0 && p->top[j - 1] < a) {
            p->top[j] = p->top[j - 1];
            j--;
        }
        p->top[j] = a;
    }
    if (p->ncand >= p->prune_at) { /* drop the candidates the floor has passed */
        double fl = floor_of(s, p);
        int64_t w = 0;
        for (int64_t c = 0; c < p->ncand; c++)
            if ((double)p->cand[c].approx >= fl)
                p->cand[w++] = p->cand[c];
        p->ncand = w;
        p->prune_at = 2 * w + 64;
    }
    return 0;
}

/* Worker w's chunk of m rows: normalised, scored, scanned. Returns -1 when memory ran
 * out, -2 on a non-finite value. */
static int add_chunk(const amlfs_identify_state *s, worker *w, const double *rows, int m)
{
    int d = s->d;
    for (size_t i = 0; i < (size_t)m * d; i++)
        if (!isfinite(rows[i]))
            return -2;
    for (int j = 0; j < m; j++) {
        amlfs_normalize_row(rows + (size_t)j * d, d, w->cd + (size_t)j * d);
        for (int k = 0; k < d; k++)
            w->cf[(size_t)j * d + k] = (float)w->cd[(size_t)j * d + k];
    }
    /* scores (np, m) = probes (np, d) x chunk^T (d, m) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->np, m, d, 1.0f, s->pf, d,
                w->cf, d, 0.0f, w->scores, m);
    for (int64_t i = 0; i < s->np; i++) {
        const float *row = w->scores + (size_t)i * m;
        probe_state *p = &w->ps[i];
        int j = 0;
        while (j < m) {
            /* blocks of 16 scores below the floor are passed over at once */
            double fl = floor_of(s, p);
            if (j + 16 <= m) {
                float mx = row[j];
                for (int t = 1; t < 16; t++)
                    mx = row[j + t] > mx ? row[j + t] : mx;
                if ((double)mx < fl) {
                    j += 16;
                    continue;
                }
            }
            int end = j + 16 <= m ? j + 16 : m;
            for (; j < end; j++)
                if (offer(s, p, i, row[j], w->cd + (size_t)j * d) < 0)
                    return -1;
        }
    }
    return 0;
}

void amlfs_identify_add(amlfs_identify_state *s, const double *distractors, int64_t nd)
{
    if (nd <= 0)
        return;
    /* chunks of at most CHUNK_ROWS, at least one per worker when there are enough rows */
    int64_t chunks = (nd + CHUNK_ROWS - 1) / CHUNK_ROWS;
    if (chunks < s->workers && nd >= (int64_t)s->workers * 256)
        chunks = s->workers;
    int64_t rows = (nd + chunks - 1) / chunks;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->workers) reduction(| : failed)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t r = c * rows;
        if (r >= nd)
            continue;
        int m = (int)(nd - r < rows ? nd - r : rows);
        int rc = add_chunk(s, &s->w[omp_get_thread_num()], distractors + (size_t)r * s->d, m);
        failed |= rc == -1 ? 1 : rc == -2 ? 2 : 0;
    }
    if (failed & 2)
        s->failed = 2;
    else if (failed)
        s->failed = 1;
    s->seen += nd;
}

int64_t amlfs_identify_block(const amlfs_identify_state *s)
{
    return (int64_t)s->workers * CHUNKS_PER_WORKER * CHUNK_ROWS;
}

int64_t amlfs_identify_count(const amlfs_identify_state *s)
{
    return s->seen;
}

static int compare_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* qsort of probe indices by identity, then index (a stable grouping) */
static const int32_t *sort_ids;
static int compare_by_id(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_ids[i] != sort_ids[j])
        return sort_ids[i] < sort_ids[j] ? -1 : 1;
    return (i > j) - (i < j);
}

int amlfs_identify_end(amlfs_identify_state *s, double *cmc, int64_t *trials, char *err,
                       size_t errlen)
{
    int rank = s->rank, d = s->d;
    int64_t np = s->np;
    if (s->failed) {
        int why = s->failed;
        state_free(s);
        return fail(err, errlen, why == 2 ? "a distractor holds a value that is not finite"
                                          : "out of memory for the candidates");
    }
    /* kth[i * rank + j]: probe i's exact (j+1)-th best distractor score (-inf when fewer
     * distractors) */
    double *kth = malloc((size_t)np * rank * sizeof(double));
    int64_t *order = malloc((size_t)np * sizeof(int64_t));
    int64_t *hits = calloc((size_t)rank, sizeof(int64_t));
    if (!kth || !order || !hits) {
        free(kth);
        free(order);
        free(hits);
        state_free(s);
        return fail(err, errlen, "out of memory");
    }
    int oom = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(| : oom)
    for (int64_t i = 0; i < np; i++) {
        int64_t n = 0;
        for (int t = 0; t < s->workers; t++)
            n += s->w[t].ps[i].ncand;
        double *ex = malloc((size_t)(n ? n : 1) * sizeof(double));
        if (!ex) {
            oom = 1;
            continue;
        }
        n = 0;
        for (int t = 0; t < s->workers; t++) {
            const probe_state *p = &s->w[t].ps[i];
            for (int64_t c = 0; c < p->ncand; c++)
                ex[n++] = p->cand[c].exact;
        }
        qsort(ex, (size_t)n, sizeof(double), compare_desc);
        for (int j = 0; j < rank; j++)
            kth[(size_t)i * rank + j] = j < n ? ex[j] : -INFINITY;
        free(ex);
    }
    if (oom) {
        free(kth);
        free(order);
        free(hits);
        state_free(s);
        return fail(err, errlen, "out of memory");
    }
    for (int64_t i = 0; i < np; i++)
        order[i] = i;
    sort_ids = s->ids;
    qsort(order, (size_t)np, sizeof(int64_t), compare_by_id);
    int64_t n_trials = 0;
    for (int64_t a = 0; a < np;) {
        int64_t b = a;
        while (b < np && s->ids[order[b]] == s->ids[order[a]])
            b++;
        /* identity of images order[a..b): each the gallery entry, the others probes */
        for (int64_t g = a; g < b; g++)
            for (int64_t q = a; q < b; q++) {
                if (q == g)
                    continue;
                int64_t pi = order[q], gi = order[g];
                double mate = dot64(s->pd + (size_t)pi * d, s->pd + (size_t)gi * d, d);
                for (int j = 0; j < rank; j++)
                    if (mate >= kth[(size_t)pi * rank + j])
                        hits[j]++;
                n_trials++;
            }
        a = b;
    }
    *trials = n_trials;
    for (int j = 0; j < rank; j++)
        cmc[j] = n_trials ? (double)hits[j] / (double)n_trials : NAN;
    free(kth);
    free(order);
    free(hits);
    state_free(s);
    if (!n_trials)
        return fail(err, errlen, "no trial: no probe identity has two images");
    return 0;
}

int amlfs_identify(const float *probe, const int32_t *probe_ids, int64_t np,
                   const float *distractors, int64_t nd, int d, int rank,
                   double *rank_k, int64_t *trials, char *err, size_t errlen)
{
    *trials = 0;
    *rank_k = NAN;
    if (np < 1 || d < 1 || nd < 0)
        return fail(err, errlen, "probes (%lld,%d), distractors %lld: expected N >= 1, "
                    "D >= 1", (long long)np, d, (long long)nd);
    double *p64 = malloc((size_t)np * d * sizeof(double));
    double *c64 = NULL;
    double *cmc = malloc((size_t)(rank > 0 ? rank : 1) * sizeof(double));
    if (!p64 || !cmc) {
        free(p64);
        free(cmc);
        return fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < (size_t)np * d; i++)
        p64[i] = probe[i];
    amlfs_identify_state *s = amlfs_identify_begin(p64, probe_ids, np, d, rank, err, errlen);
    free(p64);
    if (!s) {
        free(cmc);
        return -1;
    }
    int64_t block = amlfs_identify_block(s);
    c64 = malloc((size_t)block * d * sizeof(double));
    if (!c64) {
        amlfs_identify_end(s, cmc, trials, err, errlen);
        free(cmc);
        return fail(err, errlen, "out of memory");
    }
    for (int64_t r = 0; r < nd; r += block) {
        int64_t m = nd - r < block ? nd - r : block;
        for (size_t i = 0; i < (size_t)m * d; i++)
            c64[i] = distractors[(size_t)r * d + i];
        amlfs_identify_add(s, c64, m);
    }
    free(c64);
    int rc = amlfs_identify_end(s, cmc, trials, err, errlen);
    if (rc == 0)
        *rank_k = cmc[rank - 1];
    free(cmc);
    return rc;
}
