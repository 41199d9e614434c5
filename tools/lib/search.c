/* search.c: sampling theta, shaping rewards, the REINFORCE + Adam step.
 * Depends on: nothing in tools/lib (the kernels' Philox, amlfs_rng.h). */
#include "search.h"
#include "amlfs_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const amlfs_mode_names[] = {"amlfs", "random", "fixed", "replay", NULL};
const char *const amlfs_sampling_names[] = {"plain", "antithetic", NULL};
const char *const amlfs_shaping_names[] = {"zscore", "rank", NULL};
const char *const amlfs_form_names[] = {"free", "anchored", NULL};
const char *const amlfs_space_names[] = {"prob", "cosine", NULL};
const char *const amlfs_init_names[] = {"identity", "focal",      "cosface",
                                        "arcface",  "sphereface", "gce", NULL};
const char *const amlfs_metric_names[] = {"top1", "top5", "loss", "accuracy", "rank1", "mAP",
                                          NULL};
const char *const amlfs_loss_names[] = {"searched", "cosface", "arcface", "sphereface", NULL};

void amlfs_sigma_vector(amlfs_form form, amlfs_space space, int m, double sigma,
                        double sigma_intercept, double *sigma_of)
{
    for (int j = 0; j < 4 * m; j++)
        sigma_of[j] = !amlfs_form_searched(form, space, m, j)
                          ? 0.0
                          : (amlfs_form_is_intercept(m, j) ? sigma_intercept : sigma);
}

void amlfs_draw_thetas(const double *mu, int d, int b, const double *sigma, uint32_t seed,
                       uint32_t epoch, amlfs_mode mode, amlfs_sampling sampling,
                       double *draw)
{
    for (int i = 0; i < b; i++) {
        double *row = draw + (size_t)i * d;
        if (mode == MODE_FIXED || mode == MODE_REPLAY) {
            for (int j = 0; j < d; j++)
                row[j] = mu[j];
            continue;
        }
        int source = i, sign = 1;
        if (sampling == SAMPLING_ANTITHETIC && i >= b / 2) {
            source = i - b / 2; /* the mirror of an earlier draw */
            sign = -1;
        }
        amlfs_rng_name r = amlfs_rng(seed, epoch, (uint32_t)source, AMLFS_STREAM_THETA);
        for (int j = 0; j < d; j++)
            row[j] = sigma[j] > 0 ? mu[j] + sign * sigma[j] * amlfs_rng_normal(r, (uint64_t)j)
                                  : mu[j];
    }
}

int amlfs_best_sample(const double *raw, const uint8_t *excluded, int b)
{
    int best = -1;
    for (int i = 0; i < b; i++)
        if (!excluded[i] && (best < 0 || raw[i] > raw[best]))
            best = i;
    return best;
}

int amlfs_shape_rewards(const double *raw, const uint8_t *excluded, int b,
                        amlfs_shaping shaping, double *normalized, char *skip, size_t n)
{
    int f = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < b; i++) {
        normalized[i] = 0.0;
        if (excluded[i])
            continue;
        f++;
        lo = fmin(lo, raw[i]);
        hi = fmax(hi, raw[i]);
    }
    skip[0] = 0;
    if (f == 0) {
        snprintf(skip, n, "no finite reward");
        return f;
    }
    if (f < 2) {
        snprintf(skip, n, "only 1 finite reward");
        return f;
    }
    if (lo == hi) { /* zero spread: every direction looks the same */
        snprintf(skip, n, "zero spread: all %d finite rewards equal %.17g", f, lo);
        return f;
    }
    if (shaping == SHAPING_ZSCORE) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < b; i++)
            if (!excluded[i])
                mean += raw[i];
        mean /= f;
        for (int i = 0; i < b; i++)
            if (!excluded[i])
                var += (raw[i] - mean) * (raw[i] - mean);
        double sd = sqrt(var / f); /* population std */
        for (int i = 0; i < b; i++)
            if (!excluded[i])
                normalized[i] = (raw[i] - mean) / sd;
    } else {
        for (int i = 0; i < b; i++) {
            if (excluded[i])
                continue;
            int rank = 0;
            for (int j = 0; j < b; j++)
                if (!excluded[j] && (raw[j] < raw[i] || (raw[j] == raw[i] && j < i)))
                    rank++;
            normalized[i] = (double)rank / (f - 1) - 0.5;
        }
    }
    return f;
}

int64_t amlfs_adam_ascent(double *mu, double *m, double *v, int64_t step, const double *draw,
                          const double *normalized, const uint8_t *excluded, int b, int d,
                          const double *sigma, double lr, double beta1, double beta2,
                          double eps, double *grad)
{
    int f = 0;
    for (int i = 0; i < b; i++)
        f += !excluded[i];
    int64_t t = step + 1;
    double c1 = 1.0 - pow(beta1, (double)t), c2 = 1.0 - pow(beta2, (double)t);
    for (int j = 0; j < d; j++) {
        if (!(sigma[j] > 0)) { /* not searched: left alone */
            if (grad)
                grad[j] = 0.0;
            continue;
        }
        double g = 0.0;
        for (int i = 0; i < b; i++)
            if (!excluded[i])
                g += normalized[i] * (draw[(size_t)i * d + j] - mu[j]);
        g /= (double)f * sigma[j] * sigma[j];
        if (grad)
            grad[j] = g;
        m[j] = beta1 * m[j] + (1.0 - beta1) * g;
        v[j] = beta2 * v[j] + (1.0 - beta2) * g * g;
        mu[j] += lr * (m[j] / c1) / (sqrt(v[j] / c2) + eps);
    }
    return t;
}
