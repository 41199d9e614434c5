/* loss.c: the searchable loss of DESIGN.md 1 on the CPU, forward and gradient.
 *
 * The per-sample arithmetic and its derivation (why each step is computed as it is,
 * the precision it keeps, the clamps) are kernels/loss_math.h's, which the GPU shares;
 * this file is the loops around it: the softmax terms, the sums, the gradient rows.
 *
 * A target outside [0, C) gives that sample a NaN loss, weight and gradient row.
 *
 * The exact margin losses (spec->exact, amlfs_kernels.h) run through the cosine space's
 * code with the target's transform t replaced by the margin target u of loss_math.h and
 * tau by the identity: the same softmax, precision and gradient rows.
 *
 * Determinism: each sample's arithmetic depends on that sample alone and the mean is
 * summed serially in sample order, so the results are the same bits for any number of
 * OpenMP threads.
 */
#include "amlfs_kernels.h"
#include "loss_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many logits in the batch, the OpenMP fork costs more than it saves. */
#define LOSS_PARALLEL_MIN_WORK 32768

/* ---- float32 softmax terms -------------------------------------------------------- */

/* a - b of two float32 as hi + lo, hi = fl(a - b) and lo its exact remainder (Knuth's
 * TwoSum; exact in round-to-nearest without contraction, which -std=c11 implies). */
static inline float diff_split(float a, float b, float *lo)
{
    float b_neg = -b;
    float hi = a + b_neg;
    float b_part = hi - a;      /* the part of hi that came from -b */
    float a_part = hi - b_part; /* and from a */
    *lo = (a - a_part) + (b_neg - b_part);
    return hi;
}

/* The sum over j in [from, to) of exp(row_j - max) in float32 terms, float64 sum.
 * row (C) float32 logits; e (C) receives the terms, or NULL. */
static double prob_exp_sum(const float *row, int from, int to, float fmax, float *e)
{
    double acc = 0.0;
    if (e) {
#pragma omp simd reduction(+ : acc)
        for (int j = from; j < to; j++) {
            float lo, hi = diff_split(row[j], fmax, &lo);
            float term = amlfs_softmax_exp(hi, lo);
            e[j] = term;
            acc += (double)term;
        }
    } else {
#pragma omp simd reduction(+ : acc)
        for (int j = from; j < to; j++) {
            float lo, hi = diff_split(row[j], fmax, &lo);
            acc += (double)amlfs_softmax_exp(hi, lo);
        }
    }
    return acc;
}

/* The same for the cosine logits' terms exp(s (c_j - cmax)): the argument is float64,
 * split into its float32 rounding and remainder. */
static double cosine_exp_sum(const float *row, int from, int to, double s, double cmax,
                             float *e)
{
    double acc = 0.0;
    if (e) {
#pragma omp simd reduction(+ : acc)
        for (int j = from; j < to; j++) {
            double arg = s * ((double)row[j] - cmax);
            float hi = (float)arg;
            float term = amlfs_softmax_exp(hi, (float)(arg - (double)hi));
            e[j] = term;
            acc += (double)term;
        }
    } else {
#pragma omp simd reduction(+ : acc)
        for (int j = from; j < to; j++) {
            double arg = s * ((double)row[j] - cmax);
            float hi = (float)arg;
            acc += (double)amlfs_softmax_exp(hi, (float)(arg - (double)hi));
        }
    }
    return acc;
}

/* ---- transforms --------------------------------------------------------------------- */

double amlfs_pwl(const double *a, const double *b, int m, double lo, double hi, double x,
                 double *slope)
{
    double xc;
    int inside;
    int k = amlfs_pwl_piece(m, lo, hi, x, &xc, &inside);
    if (slope)
        *slope = inside ? a[k] : 0.0;
    return a[k] * xc + b[k];
}

/* The transforms' raw values (input clamped to the domain, output not clamped: the
 * output clamps belong to the loss). */
double amlfs_loss_t(const amlfs_loss_spec *spec, double x)
{
    const double *a_t = spec->theta, *b_t = spec->theta + spec->intervals;
    double lo = spec->space == AMLFS_SPACE_COSINE ? -1.0 : 0.0;
    return amlfs_pwl(a_t, b_t, spec->intervals, lo, 1.0, x, NULL);
}

double amlfs_loss_tau(const amlfs_loss_spec *spec, double p)
{
    const double *a_tau = spec->theta + 2 * spec->intervals;
    const double *b_tau = spec->theta + 3 * spec->intervals;
    return amlfs_pwl(a_tau, b_tau, spec->intervals, 0.0, 1.0, p, NULL);
}

/* ---- one sample ---------------------------------------------------------------------- */

/* The prob space. row (C) logits; g (C) the gradient row of the mean loss, or NULL;
 * inv_n = 1/N. Returns 1 when a clamp was active. */
static int prob_sample(const amlfs_loss_spec *spec, const float *row, int32_t y, int c,
                       float *g, double inv_n, double *loss_out, double *w_out)
{
    int m = spec->intervals;
    const double *a_t = spec->theta, *b_t = a_t + m, *a_tau = a_t + 2 * m,
                 *b_tau = a_t + 3 * m;

    float fmax = row[0];
#pragma omp simd reduction(max : fmax)
    for (int j = 1; j < c; j++)
        fmax = row[j] > fmax ? row[j] : fmax;
    /* The terms go into g (when asked for) and are scaled in place below. */
    double tail = prob_exp_sum(row, 0, y, fmax, g) + prob_exp_sum(row, y + 1, c, fmax, g);
    amlfs_target_prob tp = amlfs_target_probability((double)row[y] - (double)fmax, tail);

    double loss, w;
    int clamped = amlfs_prob_compose(m, a_t, b_t, a_tau, b_tau, tp, &loss, &w);
    *loss_out = loss;
    *w_out = w;

    if (g) {
        /* dL/df_j = w (p_j - 1[j=y]) / N, p_j = e_j / sum */
        float scale = (float)(w * inv_n / tp.sum);
#pragma omp simd
        for (int j = 0; j < c; j++)
            g[j] = scale * g[j];
        g[y] = (float)(-w * inv_n * tp.one_minus_p);
    }
    return clamped;
}

/* The cosine space. row (C) cosines; g (C) the gradient row of the mean loss with
 * respect to the cosines, or NULL; exact_m the exact loss's margin (spec->exact != NONE).
 * Returns 1 when a clamp was active. */
static int cosine_sample(const amlfs_loss_spec *spec, double exact_m, const float *row,
                         int32_t y, int c, float *g, double inv_n, double *loss_out,
                         double *w_out)
{
    double s = spec->scale;

    /* The target's logit is s t(cos_y), t's input clamped to [-1, 1] (slope 0 there);
     * an exact loss's is s u(cos_y), u its margin target (loss_math.h), and slope_t its
     * derivative. */
    double slope_t, t_y;
    if (spec->exact != AMLFS_EXACT_NONE) {
        t_y = amlfs_exact_target(spec->exact, exact_m, (double)row[y], &slope_t);
    } else {
        int m = spec->intervals;
        t_y = amlfs_pwl(spec->theta, spec->theta + m, m, -1.0, 1.0, (double)row[y], &slope_t);
    }

    /* The row's maximum in cosine units, target included: the softmax's shift. NaN
     * cosines are passed over here and reach the loss through their terms. */
    float cmax_others = -INFINITY;
#pragma omp simd reduction(max : cmax_others)
    for (int j = 0; j < y; j++)
        cmax_others = row[j] > cmax_others ? row[j] : cmax_others;
#pragma omp simd reduction(max : cmax_others)
    for (int j = y + 1; j < c; j++)
        cmax_others = row[j] > cmax_others ? row[j] : cmax_others;
    double cmax = t_y > (double)cmax_others ? t_y : (double)cmax_others;

    double tail = cosine_exp_sum(row, 0, y, s, cmax, g) +
                  cosine_exp_sum(row, y + 1, c, s, cmax, g);
    amlfs_target_prob tp = amlfs_target_probability(s * (t_y - cmax), tail);

    /* tau on [0,1], its output clamped to [eps, inf); an exact loss is cross-entropy on
     * its logits: -log p_y, weight 1, no clamp. */
    double loss, w, v = 1.0;
    if (spec->exact != AMLFS_EXACT_NONE) {
        loss = 0.0 - tp.log_p; /* +0 where -log p_y would be -0 */
        w = 1.0;
    } else {
        int m = spec->intervals;
        const double *a_tau = spec->theta + 2 * m, *b_tau = spec->theta + 3 * m;
        double pc;
        int inside;
        int ku = amlfs_pwl_piece(m, 0.0, 1.0, tp.p, &pc, &inside);
        v = a_tau[ku] * pc + b_tau[ku];
        if (v < AMLFS_LOSS_EPS) {
            loss = -log(AMLFS_LOSS_EPS);
            w = 0.0;
        } else {
            amlfs_loss_from_piece(tp.log_p, tp.p, v, a_tau[ku], b_tau[ku], &loss, &w);
        }
    }
    *loss_out = loss;
    *w_out = w;

    if (g) {
        /* dL/dcos_j = s w p_j / N (j != y); dL/dcos_y = s a_t w (p_y - 1) / N */
        float scale = (float)(s * w * inv_n / tp.sum);
#pragma omp simd
        for (int j = 0; j < c; j++)
            g[j] = scale * g[j];
        g[y] = (float)(-s * slope_t * w * inv_n * tp.one_minus_p);
    }
    return v < AMLFS_LOSS_EPS;
}

/* ---- the batch ---------------------------------------------------------------------- */

/* Whether an exact loss is defined for spec (the cosine space, a known kind, a finite
 * margin, SphereFace's an integer in [1, 64]); *m its margin, the default for 0. */
static int exact_valid(const amlfs_loss_spec *spec, double *m)
{
    double dflt;
    switch (spec->exact) {
    case AMLFS_EXACT_COSFACE: dflt = AMLFS_COSFACE_MARGIN; break;
    case AMLFS_EXACT_ARCFACE: dflt = AMLFS_ARCFACE_MARGIN; break;
    case AMLFS_EXACT_SPHEREFACE: dflt = AMLFS_SPHEREFACE_MARGIN; break;
    default: return 0;
    }
    *m = spec->margin == 0.0 ? dflt : spec->margin;
    if (spec->space != AMLFS_SPACE_COSINE || !isfinite(*m))
        return 0;
    if (spec->exact == AMLFS_EXACT_SPHEREFACE)
        return *m >= 1.0 && *m <= 64.0 && *m == floor(*m);
    return 1;
}

double amlfs_searchable_loss(const amlfs_loss_spec *spec, const float *in, const int32_t *y,
                             int n, int c, double *loss, float *grad, double *weight,
                             int *clamped)
{
    if (clamped)
        *clamped = 0;
    if (n <= 0)
        return NAN; /* the mean of no samples */

    double *loss_buf = loss ? loss : malloc((size_t)n * sizeof *loss_buf);
    if (!loss_buf)
        return NAN;
    double inv_n = 1.0 / n;
    int cosine = spec->space == AMLFS_SPACE_COSINE;
    int nclamped = 0;
    double exact_m = 0.0;
    if (spec->exact != AMLFS_EXACT_NONE && !exact_valid(spec, &exact_m)) {
        for (int i = 0; i < n; i++) {
            loss_buf[i] = NAN;
            if (weight)
                weight[i] = NAN;
        }
        if (grad)
            for (size_t k = 0; k < (size_t)n * c; k++)
                grad[k] = NAN;
        if (!loss)
            free(loss_buf);
        return NAN;
    }

#pragma omp parallel for schedule(static) reduction(+ : nclamped) \
    if ((long)n * c >= LOSS_PARALLEL_MIN_WORK)
    for (int i = 0; i < n; i++) {
        const float *row = in + (size_t)i * c;
        float *g = grad ? grad + (size_t)i * c : NULL;
        double w = NAN;
        if (y[i] < 0 || y[i] >= c) { /* no such class: NaN, never a read outside the row */
            loss_buf[i] = NAN;
            if (g)
                for (int j = 0; j < c; j++)
                    g[j] = NAN;
        } else if (cosine) {
            nclamped += cosine_sample(spec, exact_m, row, y[i], c, g, inv_n, &loss_buf[i], &w);
        } else {
            nclamped += prob_sample(spec, row, y[i], c, g, inv_n, &loss_buf[i], &w);
        }
        if (weight)
            weight[i] = w;
    }

    /* The mean in sample order, so the result does not depend on the thread count. */
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += loss_buf[i];
    if (!loss)
        free(loss_buf);
    if (clamped)
        *clamped = nclamped;
    return total * inv_n;
}
