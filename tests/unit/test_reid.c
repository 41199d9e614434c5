/* test_reid.c: the re-ID metrics of reid.h against a literal loop here: per query the
 * kept gallery entries (pid not -1, not the query's pid and camera) sorted whole by
 * (distance, index) with an insertion sort, AP as the mean of (matches so far / rank),
 * mAP and every CMC rank counted, exactly equal
 *   - on quantised distance matrices (ties everywhere), junk entries, same-camera mates,
 *     queries without a true match, more than 50 and fewer than 50 gallery entries;
 *   - on integer features, whose float32 squared Euclidean distances are exact;
 *   - re-ranking: amlfs_reid_eval(rerank = 1) equals amlfs_reid_rerank on the blocks
 *     amlfs_reid_distances gives, evaluated by amlfs_reid_eval_distmat (within 1e-12);
 *   - bad arguments and NaN return -1 with a message.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "reid.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double uniform(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static int level(int lo, int hi) { return lo + (int)(uniform() * (hi - lo + 1)); }

static void literal(const double *dm, const int32_t *qp, const int32_t *qc, int nq,
                    const int32_t *gp, const int32_t *gc, int ng, amlfs_reid_result *r)
{
    memset(r, 0, sizeof *r);
    int *order = malloc((size_t)ng * sizeof(int));
    int64_t hits[AMLFS_REID_MAX_RANK] = {0};
    double sum = 0;
    for (int i = 0; i < nq; i++) {
        const double *row = dm + (size_t)i * ng;
        int n = 0;
        for (int j = 0; j < ng; j++) {
            if (gp[j] == -1 || (gp[j] == qp[i] && gc[j] == qc[i]))
                continue;
            int p = n++;
            while (p > 0 && (row[order[p - 1]] > row[j]))
                order[p] = order[p - 1], p--;
            order[p] = j;
        }
        int m = 0, first = 0;
        double s = 0;
        for (int t = 0; t < n; t++)
            if (gp[order[t]] == qp[i]) {
                m++;
                s += (double)m / (double)(t + 1);
                if (!first)
                    first = t + 1;
            }
        if (!m) {
            r->skipped++;
            continue;
        }
        r->queries++;
        sum += s / m;
        for (int k = first - 1; k < AMLFS_REID_MAX_RANK; k++)
            hits[k]++;
    }
    r->map = sum / (double)r->queries;
    for (int k = 0; k < AMLFS_REID_MAX_RANK; k++)
        r->cmc[k] = (double)hits[k] / (double)r->queries;
    r->rank1 = r->cmc[0];
    free(order);
}

static void same(const amlfs_reid_result *a, const amlfs_reid_result *b, const char *what)
{
    CHECK(a->map == b->map, "%s: mAP %.17g, want %.17g", what, a->map, b->map);
    CHECK(a->rank1 == b->rank1, "%s: rank-1 %.17g, want %.17g", what, a->rank1, b->rank1);
    CHECK(a->queries == b->queries && a->skipped == b->skipped, "%s: %lld/%lld, want %lld/%lld",
          what, (long long)a->queries, (long long)a->skipped, (long long)b->queries,
          (long long)b->skipped);
    for (int k = 0; k < AMLFS_REID_MAX_RANK; k++)
        CHECK(a->cmc[k] == b->cmc[k], "%s: cmc[%d] %.17g, want %.17g", what, k, a->cmc[k],
              b->cmc[k]);
}

static void ids(int32_t *p, int32_t *c, int n, int pids, int cams, int junk)
{
    for (int i = 0; i < n; i++) {
        p[i] = level(0, pids - 1);
        c[i] = level(0, cams - 1);
        if (junk && uniform() < 0.1)
            p[i] = -1;
    }
}

int main(void)
{
    char err[256];
    amlfs_reid_result got, want;
    /* distance matrices with ties */
    int sizes[][3] = {{30, 120, 5}, {12, 20, 3}, {50, 400, 9}};
    for (int s = 0; s < 3; s++) {
        int nq = sizes[s][0], ng = sizes[s][1];
        int32_t *qp = malloc(nq * sizeof *qp), *qc = malloc(nq * sizeof *qc);
        int32_t *gp = malloc(ng * sizeof *gp), *gc = malloc(ng * sizeof *gc);
        double *dm = malloc((size_t)nq * ng * sizeof *dm);
        ids(qp, qc, nq, 8, 3, 0);
        ids(gp, gc, ng, 8, 3, 1);
        qp[0] = 1000; /* no gallery entry: skipped */
        for (int i = 0; i < nq * ng; i++)
            dm[i] = level(0, sizes[s][2]) * 0.5;
        literal(dm, qp, qc, nq, gp, gc, ng, &want);
        CHECK(amlfs_reid_eval_distmat(dm, qp, qc, nq, gp, gc, ng, &got, err, sizeof err) == 0,
              "%s", err);
        same(&got, &want, "distmat");
        CHECK(want.skipped >= 1, "skipped %lld", (long long)want.skipped);
        dm[5] = NAN;
        CHECK(amlfs_reid_eval_distmat(dm, qp, qc, nq, gp, gc, ng, &got, err, sizeof err) == -1 &&
                  strstr(err, "[0][5]"), "NaN: %s", err);
        free(qp), free(qc), free(gp), free(gc), free(dm);
    }
    /* integer features: exact float32 squared distances */
    {
        int nq = 40, ng = 300, d = 10;
        int32_t *qp = malloc(nq * sizeof *qp), *qc = malloc(nq * sizeof *qc);
        int32_t *gp = malloc(ng * sizeof *gp), *gc = malloc(ng * sizeof *gc);
        float *qf = malloc((size_t)nq * d * sizeof *qf), *gf = malloc((size_t)ng * d * sizeof *gf);
        double *dm = malloc((size_t)nq * ng * sizeof *dm);
        ids(qp, qc, nq, 15, 6, 0);
        ids(gp, gc, ng, 15, 6, 1);
        for (int i = 0; i < nq * d; i++)
            qf[i] = (float)level(-2, 2);
        for (int i = 0; i < ng * d; i++)
            gf[i] = (float)level(-2, 2);
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < ng; j++) {
                double s = 0;
                for (int k = 0; k < d; k++) {
                    double t = (double)qf[i * d + k] - gf[j * d + k];
                    s += t * t;
                }
                dm[(size_t)i * ng + j] = s;
            }
        literal(dm, qp, qc, nq, gp, gc, ng, &want);
        CHECK(amlfs_reid_eval(qf, qp, qc, nq, gf, gp, gc, ng, d, AMLFS_REID_EUCLIDEAN, 0, &got,
                              err, sizeof err) == 0, "%s", err);
        same(&got, &want, "features");
        /* re-ranking: the features entry point against the blocks' one */
        float *qg = malloc((size_t)nq * ng * sizeof *qg), *qq = malloc((size_t)nq * nq * sizeof *qq);
        float *gg = malloc((size_t)ng * ng * sizeof *gg), *fin = malloc((size_t)nq * ng * sizeof *fin);
        for (int i = 0; i < nq * d; i++)
            qf[i] += (float)(0.01 * uniform()); /* fewer exact ties in the neighbour sets */
        for (int i = 0; i < ng * d; i++)
            gf[i] += (float)(0.01 * uniform());
        CHECK(amlfs_reid_distances(qf, nq, gf, ng, d, AMLFS_REID_EUCLIDEAN, qg, err, sizeof err) == 0 &&
                  amlfs_reid_distances(qf, nq, qf, nq, d, AMLFS_REID_EUCLIDEAN, qq, err, sizeof err) == 0 &&
                  amlfs_reid_distances(gf, ng, gf, ng, d, AMLFS_REID_EUCLIDEAN, gg, err, sizeof err) == 0,
              "%s", err);
        CHECK(amlfs_reid_rerank(qg, qq, gg, nq, ng, 20, 6, 0.3, fin, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < nq * ng; i++)
            dm[i] = fin[i];
        literal(dm, qp, qc, nq, gp, gc, ng, &want);
        CHECK(amlfs_reid_eval(qf, qp, qc, nq, gf, gp, gc, ng, d, AMLFS_REID_EUCLIDEAN, 1, &got,
                              err, sizeof err) == 0, "%s", err);
        CHECK_CLOSE(got.map, want.map, 1e-12, 0, "re-ranked mAP");
        CHECK_CLOSE(got.rank1, want.rank1, 1e-12, 0, "re-ranked rank-1");
        CHECK(amlfs_reid_rerank(qg, qq, gg, nq, ng, 20, 30, 0.3, fin, err, sizeof err) == -1,
              "k2 > k1 + 1 accepted");
        free(qg), free(qq), free(gg), free(fin);
        qf[3] = INFINITY;
        CHECK(amlfs_reid_eval(qf, qp, qc, nq, gf, gp, gc, ng, d, AMLFS_REID_COSINE, 0, &got, err,
                              sizeof err) == -1 && strstr(err, "query"), "inf: %s", err);
        free(qp), free(qc), free(gp), free(gc), free(qf), free(gf), free(dm);
    }
    {
        int32_t p[2] = {1, 2}, c[2] = {0, 0}, g[2] = {3, 4};
        double dm[4] = {0, 1, 2, 3};
        CHECK(amlfs_reid_eval_distmat(dm, p, c, 2, g, c, 2, &got, err, sizeof err) == -1 &&
                  strstr(err, "no query"), "no match: %s", err);
        CHECK(amlfs_reid_eval_distmat(dm, p, c, 0, g, c, 2, &got, err, sizeof err) == -1,
              "no query accepted");
    }
    return check_done("test_reid");
}
