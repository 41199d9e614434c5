/* loss_math.h: the per-sample arithmetic of the softmax losses, one definition for the
 * CPU (kernels/cpu/loss.c, classic.c) and the GPU (kernels/cuda/loss_kernel.cuh): the
 * float32 softmax exp, the target's probability, the piece of a piecewise-linear
 * transform and the loss from the composed piece; this comment is the one derivation of
 * that arithmetic (the other files point here). The C build does not contract a * b + c into fused
 * multiply-adds and nvcc does, so the GPU's results agree with the CPU's to within an
 * ulp or so, not bit for bit.
 *
 * Precision (DESIGN.md 1): the softmax over C is float32 (exps of float32 arguments) with
 * its sum accumulated in float64; from log p_y on, every per-sample quantity is float64.
 * Four choices keep the identity equal to cross-entropy (prob space) and to the
 * normalised softmax (cosine space) to 1e-6 relative for every loss below 690 (measured
 * worst: 7e-8 for losses, 1.2e-7 for gradients; tests/unit/test_loss.c):
 *
 *   1. Each exp argument is float32 plus its rounding remainder (hi + lo), and lo goes
 *      into the exp's range reduction. A term e^d whose argument were rounded alone would
 *      carry a relative error |d| 2^-24: 1e-6 already at d = -17, which is what a
 *      confident sample's loss is made of.
 *   2. The other classes' terms are summed apart from the target's, and near p_y = 1
 *      log p_y = -log1p(tail e^{-z_y}) (z_y = f_y - max): a loss near 0 keeps the
 *      precision of the terms that make it, where log(1 + tail) would round it to 1e-16
 *      absolute. Terms below e^-87 (float32's range) are 0, so a loss below ~1e-38 is 0.
 *   3. z_y = f_y - max is float64 from the inputs, so a loss near 690 (p_y near 1e-300,
 *      far below float32's range) keeps every digit.
 *   4. The transform's value enters in the log domain. With the pieces in use,
 *      q = tau(t(p)) = A p + B (prob space: A = a_tau a_t, B = a_tau b_t + b_tau;
 *      cosine space: A = a_tau, B = b_tau), so
 *          L = -log q = -log p - log1p(d),   d = q/p - 1 = (A - 1) + B/p,
 *          w = -p dL/dp = A p/q = A / (1 + d).
 *      At the identity A = 1 and B = 0 exactly, so d = 0, L = -log p and w = 1 bit
 *      for bit; near the identity log1p keeps the small correction precise; elsewhere
 *      the rounding is that of A p + B itself. Where d is not usable (p = 0, or B/p
 *      overflows) the direct -log q is used.
 *
 * The gradient weight w is -p_y dL/dp_y: 1 for cross-entropy, 0 where a clamp is active.
 * Then dL/df_j = w (p_j - 1[j=y]) (DESIGN.md 1 writes w (1[j=y] - p_j) with w of the
 * opposite sign; the two agree).
 *
 * Clamps: those of DESIGN.md 1 (t's output to [eps, 1] in the prob space, tau's to
 * [eps, inf)) set w = 0 and are counted. t's input clamp in the cosine space (a cosine
 * rounded past +-1) is the transform's domain, not a clamp of the loss: only the target
 * cosine's gradient through t is 0 there, as amlfs_pwl's slope says.
 *
 * amlfs_softmax_exp(hi, lo) is exp(hi + lo), hi <= 0 and lo its rounding remainder
 * (|lo| <= ulp(hi)/2; 0 when there is none), in float32: within 1 ulp of exp on [-87, 0] (checked over every float32
 * there, lo = 0), 0 below -87 (a softmax term under FLT_MIN is below the precision of a
 * sum that holds the maximum's 1), NaN for NaN. libm's expf is a call that the loops
 * over C cannot vectorise at -O2; this is straight-line code they can:
 * hi = n ln2 + r with |r| <= ln2/2, ln2 in two parts (Cody and Waite) so that hi - n ln2
 * is exact, and lo joins r there; exp(r) by the degree-7 minimax polynomial of Cephes'
 * expf; 2^n built in the exponent bits, n clamped to [-126, 0] with integer selects so
 * that -inf and NaN stay defined. */
#ifndef AMLFS_LOSS_MATH_H
#define AMLFS_LOSS_MATH_H

#include "amlfs_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* host and device under nvcc (memcpy is a register move on both) */
#ifdef __CUDACC__
#define AMLFS_HD static __host__ __device__ __forceinline__
#else
#define AMLFS_HD static inline
#endif

AMLFS_HD int32_t amlfs_f32_bits(float v)
{
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return i;
}

AMLFS_HD float amlfs_f32_from_bits(int32_t i)
{
    float v;
    memcpy(&v, &i, sizeof v);
    return v;
}

AMLFS_HD float amlfs_softmax_exp(float hi, float lo)
{
    /* n = round(hi log2 e): adding 1.5 2^23 leaves the rounded integer in the low bits */
    float shifted = hi * 1.44269504088896341f + 12582912.0f;
    int32_t n = (int32_t)((uint32_t)amlfs_f32_bits(shifted) - 0x4B400000u);
    n = n < -126 ? -126 : n;
    n = n > 0 ? 0 : n;
    float nf = (float)n;
    float r = hi - nf * 0.693359375f;
    r = (r - nf * -2.12194440e-4f) + lo;
    float poly = 1.9875691500e-4f;
    poly = poly * r + 1.3981999507e-3f;
    poly = poly * r + 8.3334519073e-3f;
    poly = poly * r + 4.1665795894e-2f;
    poly = poly * r + 1.6666665459e-1f;
    poly = poly * r + 5.0000001201e-1f;
    poly = poly * r * r + r + 1.0f;
    float v = poly * amlfs_f32_from_bits((n + 127) << 23);
    /* zero below -87 by a bit mask, not a select the compiler would make a branch;
     * NaN is not below -87: it stays NaN */
    int32_t keep = -(int32_t)!(hi < -87.0f);
    return amlfs_f32_from_bits(amlfs_f32_bits(v) & keep);
}

/* The target's probability from z_y = f_y - max (float64, <= 0) and tail, the float64
 * sum of the other classes' terms (item 2 above). */
typedef struct {
    double sum;         /* the softmax sum e^{z_y} + tail */
    double p;           /* p_y */
    double one_minus_p; /* 1 - p_y = tail / sum: no cancellation near p_y = 1 */
    double log_p;       /* log p_y */
} amlfs_target_prob;

AMLFS_HD amlfs_target_prob amlfs_target_probability(double z_y, double tail)
{
    amlfs_target_prob tp;
    double e_y = exp(z_y);
    tp.sum = e_y + tail;
    tp.p = e_y / tp.sum;
    tp.one_minus_p = tail / tp.sum;
    tp.log_p = z_y > -1.0 ? -log1p(tail / e_y) : z_y - log(tp.sum);
    return tp;
}

/* The piece of a piecewise-linear transform that x falls in (DESIGN.md 1):
 * *xc is x clamped to [lo, hi], the result is k = min(floor((xc-lo)/(hi-lo) M), M-1),
 * *inside is 1 when no input clamp was needed. NaN x gives k = 0 and *xc = NaN. */
AMLFS_HD int amlfs_pwl_piece(int m, double lo, double hi, double x, double *xc, int *inside)
{
    if (isnan(x)) {
        *xc = x;
        *inside = 0;
        return 0;
    }
    *inside = (x >= lo && x <= hi);
    double xcl = x < lo ? lo : (x > hi ? hi : x);
    *xc = xcl;
    int k = (int)((xcl - lo) / (hi - lo) * m); /* >= 0, so truncation is floor */
    return k < m - 1 ? k : m - 1;
}

/* psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m] (SphereFace's monotone
 * extension), as a function of c = cos theta in [-1, 1]: cos(m theta) = T_m(c) and
 * d cos(m theta)/dc = m U_{m-1}(c), the Chebyshev polynomials by their recurrences;
 * k = floor(m acos(c) / pi). psi is continuous with a continuous derivative across the k
 * boundaries, so where k is rounded does not matter. *dpsi = dpsi/dc. NaN outside
 * [-1, 1] and for NaN c. m >= 1. */
AMLFS_HD double amlfs_sphere_psi(int m, double c, double *dpsi)
{
    if (!(c >= -1.0 && c <= 1.0)) {
        *dpsi = NAN;
        return NAN;
    }
    double t_prev = 1.0, t = c;   /* T_0, T_1 */
    double u_prev = 0.0, u = 1.0; /* U_{-1}, U_0 */
    for (int i = 1; i < m; i++) {
        double t_next = 2.0 * c * t - t_prev;
        double u_next = 2.0 * c * u - u_prev;
        t_prev = t, t = t_next;
        u_prev = u, u = u_next;
    } /* t = T_m(c), u = U_{m-1}(c) */
    int k = (int)floor(m * acos(c) / 3.14159265358979323846);
    if (k > m - 1)
        k = m - 1; /* theta = pi exactly: both pieces give 1 - 2m there */
    double sign = (k & 1) ? -1.0 : 1.0;
    *dpsi = sign * m * u;
    return sign * t - 2.0 * k;
}

/* ArcFace's d cos(theta + m) / d cos theta = cos m + cos theta sin m / sin theta is
 * infinite at theta = 0; sin theta is floored here so that a feature parallel to its
 * class weight gets a large, finite gradient (float64 cosines resolve angles down to
 * about 1e-8, so the floor only acts at theta = 0 exactly). */
#define AMLFS_ARC_SIN_FLOOR 1e-12

/* The target logit of an exact margin loss in cosine units, u(c) = f_y / s, and
 * *du = du/dc (amlfs_kernels.h, amlfs_exact_loss): c is clamped to [-1, 1] first (a
 * rounded cosine), the derivative taken at the clamped point. m is the margin, already
 * resolved from its default (an integer for SphereFace). NaN for NaN c. */
AMLFS_HD double amlfs_exact_target(amlfs_exact_loss kind, double m, double c, double *du)
{
    if (isnan(c)) {
        *du = NAN;
        return NAN;
    }
    c = c < -1.0 ? -1.0 : (c > 1.0 ? 1.0 : c);
    switch (kind) {
    case AMLFS_EXACT_COSFACE:
        *du = 1.0;
        return c - m;
    case AMLFS_EXACT_ARCFACE:
        if (c > cos(3.14159265358979323846 - m)) { /* theta + m < pi: cos(theta + m) */
            double sin_t = sqrt((1.0 - c) * (1.0 + c));
            *du = cos(m) + c * sin(m) / fmax(sin_t, AMLFS_ARC_SIN_FLOOR);
            return c * cos(m) - sin_t * sin(m);
        }
        *du = 1.0; /* beyond pi: insightface's monotone fallback */
        return c - m * sin(m);
    case AMLFS_EXACT_SPHEREFACE:
        return amlfs_sphere_psi((int)m, c, du);
    case AMLFS_EXACT_NONE:
        break;
    }
    *du = NAN;
    return NAN;
}

/* The loss and weight from log p and the composed piece q = A p + B, q already known to
 * be >= eps (no clamp): item 4 above. */
AMLFS_HD void amlfs_loss_from_piece(double log_p, double p, double q, double A, double B,
                                    double *loss, double *w)
{
    double d = (A - 1.0) + B / p;
    if (p > 0.0 && isfinite(d) && d > -1.0) {
        /* 0 - 0 is +0 where -0.0 - 0 would be -0; d = 0 (the identity) skips a call */
        *loss = (0.0 - log_p) - (d == 0.0 ? 0.0 : log1p(d));
        *w = A / (1.0 + d);
    } else {
        *loss = -log(q);
        *w = A * p / q;
    }
}

/* The prob space's loss -log tau(t(p)) and weight from the target's probability, for
 * theta's slopes and biases (DESIGN.md 1): t clamped to [eps, 1], tau to [eps, inf).
 * Returns 1 when a clamp was active (then *w = 0).
 * A continuous transform through 0 (the anchored form: t(0) = 0 and, with c_tau = 0,
 * tau(0) = 0) is a pure scaling in its first interval: tau(t(p)) = a_tau a_t p, so the
 * loss is computed in log form, -log p - log(a_tau a_t), with weight 1, for every p that
 * falls there, a p that underflows to 0 included: no sample loses its gradient to the
 * lower clamps. */
AMLFS_HD int amlfs_prob_compose(int m, const double *a_t, const double *b_t,
                                const double *a_tau, const double *b_tau,
                                amlfs_target_prob tp, double *loss, double *w)
{
    double pc, uc;
    int inside;
    int kt = amlfs_pwl_piece(m, 0.0, 1.0, tp.p, &pc, &inside);
    double u = a_t[kt] * pc + b_t[kt];
    int through_zero = kt == 0 && b_t[0] == 0.0 && a_t[0] > 0.0 && u <= 1.0;
    int t_clamped = !through_zero && (u < AMLFS_LOSS_EPS || u > 1.0);
    if (t_clamped)
        u = u < AMLFS_LOSS_EPS ? AMLFS_LOSS_EPS : 1.0;
    int ku = amlfs_pwl_piece(m, 0.0, 1.0, u, &uc, &inside);
    if (through_zero && ku == 0 && b_tau[0] == 0.0 && a_tau[0] > 0.0) {
        double A = a_tau[0] * a_t[0];
        *loss = (0.0 - tp.log_p) - (A == 1.0 ? 0.0 : log(A));
        *w = 1.0;
        return 0;
    }
    double v = a_tau[ku] * uc + b_tau[ku];
    if (t_clamped || v < AMLFS_LOSS_EPS) {
        *loss = -log(v < AMLFS_LOSS_EPS ? AMLFS_LOSS_EPS : v);
        *w = 0.0;
        return 1;
    }
    double A = a_tau[ku] * a_t[kt], B = a_tau[ku] * b_t[kt] + b_tau[ku];
    amlfs_loss_from_piece(tp.log_p, tp.p, v, A, B, loss, w);
    return 0;
}

#endif
