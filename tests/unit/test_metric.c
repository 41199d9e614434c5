/* test_metric.c: the in-memory metric functions of metric.h (the contract's
 * amlfs_verify and amlfs_identify, and the streaming form) against literal loops here:
 *   - verification accuracy, its std and the threshold: every one of the 400 thresholds
 *     tried on the training folds pair by pair, exactly equal;
 *   - rank-k identification: every trial's mate against the sorted float64 scores of all
 *     distractors, exactly equal, over more distractors than one chunk, on quantised
 *     features (ties, repeated mates);
 *   - the streaming form fed in uneven chunks equals the in-memory call;
 *   - bad arguments return -1 with a message; a fold without a same pair gives NaN TAR.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metric.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static int level(int lo, int hi) { return lo + (int)(uniform() * (hi - lo + 1)); }

static void unit(const float *x, int d, double *out)
{
    double ss = 0;
    for (int k = 0; k < d; k++)
        ss += (double)x[k] * x[k];
    double n = sqrt(ss);
    for (int k = 0; k < d; k++)
        out[k] = n > 0 ? x[k] / n : x[k];
}

static void literal_accuracy(const double *dist, const uint8_t *same, int p, int folds,
                             double *acc, double *std, double *thr)
{
    double accs[64], chosen[64];
    int start = 0;
    for (int f = 0; f < folds; f++) {
        int size = p / folds + (f < p % folds);
        int best = -1;
        double best_t = 0;
        for (int i = 0; i < 400; i++) {
            double t = i * 0.01;
            int correct = 0;
            for (int j = 0; j < p; j++) {
                int in_test = j >= start && j < start + size;
                if (folds > 1 && in_test)
                    continue;
                if (folds == 1 && !in_test)
                    continue;
                correct += (dist[j] < t) == (same[j] != 0);
            }
            if (correct > best) {
                best = correct;
                best_t = t;
            }
        }
        int correct = 0;
        for (int j = start; j < start + size; j++)
            correct += (dist[j] < best_t) == (same[j] != 0);
        accs[f] = (double)correct / size;
        chosen[f] = best_t;
        start += size;
    }
    double m = 0, v = 0, t = 0;
    for (int f = 0; f < folds; f++)
        m += accs[f];
    m /= folds;
    for (int f = 0; f < folds; f++) {
        v += (accs[f] - m) * (accs[f] - m);
        t += chosen[f];
    }
    *acc = m;
    *std = sqrt(v / folds);
    *thr = t / folds;
}

static void test_verify(int n, int d, int p, int folds)
{
    float *x = malloc(sizeof(float) * n * d);
    int32_t *pairs = malloc(sizeof(int32_t) * 2 * p);
    uint8_t *same = malloc(p);
    double *e = malloc(sizeof(double) * n * d), *dist = malloc(sizeof(double) * p);
    for (int i = 0; i < n * d; i++)
        x[i] = (float)level(-2, 2);
    for (int i = 0; i < p; i++) {
        pairs[2 * i] = level(0, n - 1);
        pairs[2 * i + 1] = i % 7 ? level(0, n - 1) : pairs[2 * i];
        same[i] = uniform() < 0.5;
    }
    for (int i = 0; i < n; i++)
        unit(x + i * d, d, e + i * d);
    for (int i = 0; i < p; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) {
            double a = e[pairs[2 * i] * d + k] - e[pairs[2 * i + 1] * d + k];
            s += a * a;
        }
        dist[i] = s;
    }
    double acc, std, thr;
    literal_accuracy(dist, same, p, folds, &acc, &std, &thr);
    amlfs_verify_result r;
    char err[256];
    CHECK(amlfs_verify(x, n, d, pairs, same, p, folds, 1e-3, &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.accuracy == acc, "accuracy %.17g, literal %.17g", r.accuracy, acc);
    CHECK_CLOSE(r.accuracy_std, std, 1e-12, 0, "accuracy_std");
    CHECK_CLOSE(r.threshold, thr, 1e-12, 0, "threshold");
    CHECK(r.folds == folds && r.pairs == p, "folds %d pairs %lld", r.folds, (long long)r.pairs);
    CHECK(r.tar_at_far >= 0 && r.tar_at_far <= 1 && r.far >= 0 && r.far <= 1,
          "tar %g far %g", r.tar_at_far, r.far);
    free(x); free(pairs); free(same); free(e); free(dist);
}

static int compare_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static void test_identify(int identities, int per, int nd, int d, int rank)
{
    int np = identities * per;
    float *probe = malloc(sizeof(float) * np * d), *dis = malloc(sizeof(float) * nd * d);
    int32_t *ids = malloc(sizeof(int32_t) * np);
    for (int c = 0; c < identities; c++) {
        float t[64];
        for (int k = 0; k < d; k++)
            t[k] = (float)level(-2, 2);
        for (int j = 0; j < per; j++) {
            ids[c * per + j] = 3 * c + 1;
            for (int k = 0; k < d; k++)
                probe[(c * per + j) * d + k] = t[k] + (float)level(-1, 1);
        }
    }
    for (int i = 0; i < nd * d; i++)
        dis[i] = (float)level(-2, 2);
    for (int i = 0; i < nd; i += 97) /* mates repeated among the distractors: ties */
        memcpy(dis + i * d, probe + (i % np) * d, sizeof(float) * d);
    /* literal: every distractor's score, sorted, for each probe; every trial */
    double *pn = malloc(sizeof(double) * np * d), *dn = malloc(sizeof(double) * nd * d);
    double *s = malloc(sizeof(double) * nd);
    for (int i = 0; i < np; i++)
        unit(probe + i * d, d, pn + i * d);
    for (int i = 0; i < nd; i++)
        unit(dis + i * d, d, dn + i * d);
    long hits[16] = {0}, trials = 0;
    for (int q = 0; q < np; q++) {
        for (int j = 0; j < nd; j++) {
            double v = 0;
            for (int k = 0; k < d; k++)
                v += pn[q * d + k] * dn[j * d + k];
            s[j] = v;
        }
        qsort(s, nd, sizeof(double), compare_desc);
        for (int g = 0; g < np; g++) {
            if (g == q || ids[g] != ids[q])
                continue;
            double mate = 0;
            for (int k = 0; k < d; k++)
                mate += pn[q * d + k] * pn[g * d + k];
            for (int j = 0; j < rank; j++)
                hits[j] += j >= nd || mate >= s[j];
            trials++;
        }
    }
    double rank_k;
    int64_t got_trials;
    char err[256];
    CHECK(amlfs_identify(probe, ids, np, dis, nd, d, rank, &rank_k, &got_trials, err,
                         sizeof err) == 0, "%s", err);
    CHECK(got_trials == trials, "trials %lld, literal %ld", (long long)got_trials, trials);
    CHECK(rank_k == (double)hits[rank - 1] / trials, "rank-%d %.17g, literal %.17g", rank,
          rank_k, (double)hits[rank - 1] / trials);
    /* streamed in uneven chunks: the same CMC */
    double *p64 = malloc(sizeof(double) * np * d), *d64 = malloc(sizeof(double) * nd * d);
    for (int i = 0; i < np * d; i++)
        p64[i] = probe[i];
    for (int i = 0; i < nd * d; i++)
        d64[i] = dis[i];
    amlfs_identify_state *st = amlfs_identify_begin(p64, ids, np, d, rank, err, sizeof err);
    CHECK(st != NULL, "%s", err);
    if (st) {
        int r = 0, step = 1;
        while (r < nd) {
            int m = step < nd - r ? step : nd - r;
            amlfs_identify_add(st, d64 + (size_t)r * d, m);
            r += m;
            step = step * 3 + 1;
        }
        CHECK(amlfs_identify_count(st) == nd, "count %lld", (long long)amlfs_identify_count(st));
        double cmc[16];
        int64_t t2;
        CHECK(amlfs_identify_end(st, cmc, &t2, err, sizeof err) == 0, "%s", err);
        for (int j = 0; j < rank; j++)
            CHECK(cmc[j] == (double)hits[j] / trials, "streamed rank-%d %.17g, literal %.17g",
                  j + 1, cmc[j], (double)hits[j] / trials);
    }
    free(probe); free(dis); free(ids); free(pn); free(dn); free(s); free(p64); free(d64);
}

static void test_bad_arguments(void)
{
    float x[8] = {1, 0, 0, 1, 1, 1, NAN, 0};
    int32_t pairs[4] = {0, 1, 2, 3}, ids[4] = {0, 0, 1, 1};
    uint8_t same[2] = {1, 0};
    amlfs_verify_result r;
    char err[256] = "";
    CHECK(amlfs_verify(x, 4, 2, pairs, same, 2, 2, 1e-3, &r, err, sizeof err) == -1 &&
          strstr(err, "row 3"), "NaN: %s", err);
    pairs[3] = 4;
    x[6] = 0;
    CHECK(amlfs_verify(x, 4, 2, pairs, same, 2, 2, 1e-3, &r, err, sizeof err) == -1 &&
          strstr(err, "pair 1"), "range: %s", err);
    pairs[3] = 3;
    CHECK(amlfs_verify(x, 4, 2, pairs, same, 2, 3, 1e-3, &r, err, sizeof err) == -1,
          "folds > pairs: %s", err);
    /* fold 1 holds no same pair: TAR undefined, accuracy still */
    CHECK(amlfs_verify(x, 4, 2, pairs, same, 2, 2, 1e-3, &r, err, sizeof err) == 0, "%s", err);
    CHECK(isnan(r.tar_at_far) && isfinite(r.accuracy), "tar %g acc %g", r.tar_at_far,
          r.accuracy);
    double rk;
    int64_t t;
    CHECK(amlfs_identify(x, ids, 4, x, 4, 2, 0, &rk, &t, err, sizeof err) == -1 &&
          strstr(err, "rank"), "rank 0: %s", err);
    int32_t lone[4] = {0, 1, 2, 3};
    CHECK(amlfs_identify(x, lone, 4, x, 4, 2, 1, &rk, &t, err, sizeof err) == -1 &&
          strstr(err, "no trial"), "no trial: %s", err);
}

int main(void)
{
    test_verify(30, 4, 211, 10);
    test_verify(25, 3, 100, 1);
    test_verify(40, 6, 333, 7);
    test_identify(4, 5, 9000, 6, 1);
    test_identify(3, 4, 5000, 4, 5);
    test_identify(2, 3, 3, 5, 4); /* fewer distractors than the rank */
    test_bad_arguments();
    return check_done("test_metric");
}
