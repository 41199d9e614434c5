/* classic.c: the classic losses on the CPU (DESIGN.md 1, "Classic losses"): softmax
 * cross-entropy, the focal loss, and the margin heads L-Softmax, SphereFace (A-Softmax),
 * CosFace and ArcFace with their losses: the baselines of a search, and the softmax
 * cross-entropy that the searchable loss is benchmarked against (bench/loss.c).
 *
 * Precision, as DESIGN.md 1 asks of the searchable loss: the softmax and the target's
 * probability are kernels/loss_math.h's (its header comment derives them); the focal
 * factor and the gradient weight are float64 from log p_y on. The margin heads
 * form their logits in float64 from float64 cosines (rounding s cos to float32 would cost
 * s 2^-24 in every loss) and shift them by their max in float64 before the float32 exp.
 *
 * Threads: OpenMP over samples when the work is large; every sample's arithmetic is the
 * same on any thread and the mean is summed serially in sample order over a per-sample
 * array, so results do not depend on the number of threads. The margin heads' class
 * weight gradient is parallel over classes, each summing over samples in order.
 *
 * Non-finite inputs give a non-finite loss (never a crash); an out-of-range target gives
 * that sample a NaN loss and NaN gradients.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amlfs_kernels.h"
#include "loss_math.h"

/* Below this much work (N C for the softmax losses, N C D for the margin heads) a batch
 * runs on one thread: a parallel region costs a few microseconds, a 10-class batch less. */
#define PARALLEL_MIN_WORK (1L << 16)

/* Norms below this are replaced by it when normalising (what torch.nn.functional.normalize
 * does): a zero feature or class weight then has cosines 0 against everything, a finite
 * loss, and no gradient through its norm (the floor is a constant). */
#define NORM_FLOOR 1e-12

/* Integer margins above this are rejected (L-Softmax and SphereFace use 1..4). */
#define MAX_INT_MARGIN 64

/* ---- float32 softmax pieces -------------------------------------------------------- */

/* Max of f (C) float32. */
static float row_max_f32(const float *f, int c)
{
    float mx = f[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < c; j++) mx = f[j] > mx ? f[j] : mx;
    return mx;
}

static double row_max_f64(const double *f, int c)
{
    double mx = f[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < c; j++) mx = f[j] > mx ? f[j] : mx;
    return mx;
}

/* Sum over j in [lo, hi) of exp(f_j - mx), float32 terms, float64 sum; the terms go to
 * e[j] when e is not NULL. f - mx is rounded once, as float32 subtraction rounds. */
static double exp_sum_f32(const float *f, int lo, int hi, float mx, float *e)
{
    double sum = 0.0;
    if (e) {
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j < hi; j++) {
            float v = amlfs_softmax_exp(f[j] - mx, 0.0f);
            e[j] = v;
            sum += v;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j < hi; j++) sum += amlfs_softmax_exp(f[j] - mx, 0.0f);
    }
    return sum;
}

/* The same for float64 logits, shifted in float64 and rounded to float32 for the exp. */
static double exp_sum_f64(const double *f, int lo, int hi, double mx, float *e)
{
    double sum = 0.0;
    if (e) {
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j < hi; j++) {
            float v = amlfs_softmax_exp((float)(f[j] - mx), 0.0f);
            e[j] = v;
            sum += v;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j < hi; j++) sum += amlfs_softmax_exp((float)(f[j] - mx), 0.0f);
    }
    return sum;
}

/* log p_y from z_y = f_y - max (float64, <= 0), e^{z_y} in float32 and the float64 sum of
 * the other classes' terms. */
static double log_py_from_parts(double zy, float ey, double tail)
{
    if (zy > -1.0) return -log1p(tail * exp(-zy)); /* p_y = 1 / (1 + tail e^{-z_y}) */
    return zy - log((double)ey + tail);
}

/* The focal loss -(1-p)^gamma log p from lp = log p (float64) and the factor g of its
 * logit gradient, dL/df_j = g (p_j - 1[j=y]):
 *   g = -p dL/dp = q^gamma (1 - gamma p log(p) / q),   q = 1 - p = -expm1(lp),
 * with log(p)/q -> -1 as q -> 0, so g stays finite for gamma in [0, 1) at p = 1.
 * gamma = 0 is cross-entropy (g = 1). */
static double focal_from_log_py(double lp, double gamma, double *g)
{
    if (gamma == 0.0) {
        *g = 1.0;
        return -lp;
    }
    double p = exp(lp);
    double q = -expm1(lp);
    double qg = pow(q, gamma);
    double lp_over_q = q > 0.0 ? lp / q : -1.0;
    double p_lp_over_q = p > 0.0 ? p * lp_over_q : 0.0; /* p log p -> 0 as p -> 0 */
    *g = qg * (1.0 - gamma * p_lp_over_q);
    return -qg * lp;
}

static void fill_f32(float *v, size_t count, float value)
{
    for (size_t i = 0; i < count; i++) v[i] = value;
}

static void fill_f64(double *v, size_t count, double value)
{
    for (size_t i = 0; i < count; i++) v[i] = value;
}

/* ---- softmax cross-entropy and focal loss ------------------------------------------ */

/* One sample: f (C) logits, its focal gamma (0 for cross-entropy), inv_n = 1/N.
 * g (C) the gradient of the mean loss, assigned, or NULL. Returns the sample's loss. */
static double focal_row(const float *f, int c, int32_t y, double gamma, double inv_n,
                        float *g)
{
    if (y < 0 || y >= c) {
        if (g) fill_f32(g, (size_t)c, NAN);
        return NAN;
    }
    float mx = row_max_f32(f, c);
    /* The exps go into g (when asked for) and are scaled in place below. */
    double tail = exp_sum_f32(f, 0, y, mx, g) + exp_sum_f32(f, y + 1, c, mx, g);
    float ey = amlfs_softmax_exp(f[y] - mx, 0.0f);
    double lp = log_py_from_parts((double)f[y] - (double)mx, ey, tail);
    double wgt;
    double loss = focal_from_log_py(lp, gamma, &wgt);
    if (g) {
        /* dL_mean/df_j = wgt p_j / N for j != y, p_j = e_j / sum; wgt (p_y - 1) / N at y,
         * with p_y - 1 = expm1(log p_y) in float64 (no cancellation near p_y = 1). */
        g[y] = ey; /* the whole row is scaled below, then g[y] replaced */
        float scale = (float)(wgt * inv_n / ((double)ey + tail));
#pragma omp simd
        for (int j = 0; j < c; j++) g[j] *= scale;
        g[y] = (float)(wgt * expm1(lp) * inv_n);
    }
    return loss;
}

static double focal_batch(const float *logits, const int32_t *y, int n, int c, double gamma,
                          double *loss, float *grad)
{
    if (n < 1 || c < 1 || !logits || !y) return NAN;
    double inv_n = 1.0 / n;
    if (!(gamma >= 0.0) || isinf(gamma)) { /* NaN, negative or infinite gamma */
        if (loss) fill_f64(loss, (size_t)n, NAN);
        if (grad) fill_f32(grad, (size_t)n * (size_t)c, NAN);
        return NAN;
    }
    double total = 0.0;
    double *per = loss ? loss : malloc((size_t)n * sizeof *per);
    if (per) {
        int parallel = n > 1 && (long)n * c >= PARALLEL_MIN_WORK;
#pragma omp parallel for schedule(static) if (parallel)
        for (int i = 0; i < n; i++)
            per[i] = focal_row(logits + (size_t)i * c, c, y[i], gamma, inv_n,
                               grad ? grad + (size_t)i * c : NULL);
        for (int i = 0; i < n; i++) total += per[i];
        if (!loss) free(per);
    } else { /* no memory for the per-sample array: one thread, the same sums in order */
        for (int i = 0; i < n; i++)
            total += focal_row(logits + (size_t)i * c, c, y[i], gamma, inv_n,
                               grad ? grad + (size_t)i * c : NULL);
    }
    return total / n;
}

double amlfs_softmax_ce(const float *logits, const int32_t *y, int n, int c, double *loss,
                        float *grad)
{
    return focal_batch(logits, y, n, c, 0.0, loss, grad);
}

/* gamma must be finite and >= 0 (else every loss and gradient is NaN); gamma = 0 gives
 * cross-entropy exactly. */
double amlfs_focal_loss(const float *logits, const int32_t *y, int n, int c, double gamma,
                        double *loss, float *grad)
{
    return focal_batch(logits, y, n, c, gamma, loss, grad);
}

/* ---- margin heads ------------------------------------------------------------------ */

amlfs_margin amlfs_margin_default(amlfs_margin_kind kind)
{
    amlfs_margin mg = {kind, NAN, NAN};
    switch (kind) {
    case AMLFS_MARGIN_LSOFTMAX: /* s unused: the logits carry |W_j||x| */
    case AMLFS_MARGIN_SPHEREFACE: mg.m = 4.0; mg.s = 1.0; break;
    case AMLFS_MARGIN_COSFACE: mg.m = 0.35; mg.s = 64.0; break;
    case AMLFS_MARGIN_ARCFACE: mg.m = 0.5; mg.s = 64.0; break;
    }
    return mg; /* an unknown kind: NaN margin and scale, so its loss is NaN */
}

/* SphereFace's psi and the margin targets in cosine units are kernels/loss_math.h's, the
 * ones the exact losses on cosines (loss.c) apply. */
static double sphere_psi(int m, double c, double *dpsi)
{
    return amlfs_sphere_psi(m, c, dpsi);
}

/* A logit as a function of c = cos theta, a = |x| and b = |W_j| (both floored), and its
 * partial derivatives. */
typedef struct {
    double f, df_dc, df_da, df_db;
} head_logit;

/* The target logit f_y of the head mg (m_int: mg->m as an integer). */
static head_logit target_logit(const amlfs_margin *mg, int m_int, double c, double a,
                               double b)
{
    head_logit h = {0.0, 0.0, 0.0, 0.0};
    double psi, dpsi;
    switch (mg->kind) {
    case AMLFS_MARGIN_LSOFTMAX: /* f_y = |W_y||x| psi(theta_y) */
        psi = sphere_psi(m_int, c, &dpsi);
        h.f = a * b * psi;
        h.df_dc = a * b * dpsi;
        h.df_da = b * psi;
        h.df_db = a * psi;
        break;
    case AMLFS_MARGIN_SPHEREFACE: /* f_y = |x| psi(theta_y) */
        psi = sphere_psi(m_int, c, &dpsi);
        h.f = a * psi;
        h.df_dc = a * dpsi;
        h.df_da = psi;
        break;
    case AMLFS_MARGIN_COSFACE: /* f_y = s (cos theta_y - m) */
        h.f = mg->s * (c - mg->m);
        h.df_dc = mg->s;
        break;
    case AMLFS_MARGIN_ARCFACE: { /* s cos(theta_y + m) where theta_y + m < pi, else the
                                  * monotone fallback s (cos theta_y - m sin m) */
        double du, u = amlfs_exact_target(AMLFS_EXACT_ARCFACE, mg->m, c, &du);
        h.f = mg->s * u;
        h.df_dc = mg->s * du;
        break;
    }
    }
    return h;
}

/* The other logits are f_j = alpha beta_j cos theta_j:
 *   L-Softmax alpha = |x|, beta_j = |W_j| (so f_j = W_j . x); SphereFace alpha = |x|,
 *   beta_j = 1; CosFace and ArcFace alpha = s, beta_j = 1. */
typedef struct {
    int alpha_is_norm; /* alpha = |x| (L-Softmax, SphereFace), else s */
    int beta_is_norm;  /* beta_j = |W_j| (L-Softmax), else 1 */
} other_logits;

static other_logits other_logits_of(amlfs_margin_kind kind)
{
    other_logits o = {kind == AMLFS_MARGIN_LSOFTMAX || kind == AMLFS_MARGIN_SPHEREFACE,
                      kind == AMLFS_MARGIN_LSOFTMAX};
    return o;
}

/* Per-thread rows of pass 1. */
typedef struct {
    double *cosine; /* (C) cos theta_j */
    double *logit;  /* (C) f_j, then dL/dc_j / (|x||W_j|) */
    float *expo;    /* (C) exp(f_j - max) */
    double *acc;    /* (D) a gradient row */
} margin_rows;

static int margin_rows_alloc(margin_rows *r, int c, int d)
{
    r->cosine = malloc((size_t)c * sizeof *r->cosine);
    r->logit = malloc((size_t)c * sizeof *r->logit);
    r->expo = malloc((size_t)c * sizeof *r->expo);
    r->acc = malloc((size_t)d * sizeof *r->acc);
    return r->cosine && r->logit && r->expo && r->acc;
}

static void margin_rows_free(margin_rows *r)
{
    free(r->cosine);
    free(r->logit);
    free(r->expo);
    free(r->acc);
}

/* The margin problem, shared by the passes. */
typedef struct {
    const amlfs_margin *mg;
    int m_int;
    other_logits other;
    const float *x, *w; /* x (N,D), w (C,D) */
    const int32_t *y;   /* (N) */
    int n, d, c;
    const double *w_norm; /* (C) |W_j| floored at NORM_FLOOR */
    const char *w_live;   /* (C) 1 where |W_j| >= NORM_FLOOR (its norm has a gradient) */
    double *p_coef;       /* (C,N) d(mean L)/d(c_ij) / (|x_i||W_j|), or NULL */
    double *q_coef;       /* (C,N) coefficient of W_j in dW_j from sample i, or NULL */
} margin_problem;

/* Pass 1 for sample i: the loss; dx_i (D) when dx is not NULL; the sample's column of
 * p_coef and q_coef when they are not NULL. With c = x.W/(|x||W|), a = |x|, b = |W_j|
 * and G_j = dL_mean/df_j:
 *   dx  = sum_j P_j W_j + x (1/a) sum_j (G_j df_j/da - G_j df_j/dc c_j / a),
 *   dW_j = sum_i P_ij x_i + W_j sum_i Q_ij,
 *   P_j = G_j (df_j/dc) / (a b_j),  Q_j = (G_j df_j/db - G_j (df_j/dc) c_j / b_j) / b_j,
 * the norm terms dropped where a norm is floored. */
static double margin_row(const margin_problem *pb, int i, margin_rows *r, float *dx)
{
    const int c = pb->c, d = pb->d, n = pb->n;
    const float *xi = pb->x + (size_t)i * d;
    const int32_t y = pb->y[i];
    if (y < 0 || y >= c) {
        if (dx) fill_f32(dx, (size_t)d, NAN);
        if (pb->p_coef)
            for (int j = 0; j < c; j++)
                pb->p_coef[(size_t)j * n + i] = pb->q_coef[(size_t)j * n + i] = NAN;
        return NAN;
    }

    double sq = 0.0;
#pragma omp simd reduction(+ : sq)
    for (int k = 0; k < d; k++) sq += (double)xi[k] * xi[k];
    double x_norm_raw = sqrt(sq);
    int x_live = x_norm_raw >= NORM_FLOOR;
    double a = x_live ? x_norm_raw : NORM_FLOOR;

    /* Cosines in float64. The clamp to [-1, 1] only removes rounding (|c| <= 1 exactly);
     * the gradient is taken as if it were not there. */
    for (int j = 0; j < c; j++) {
        const float *wj = pb->w + (size_t)j * d;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int k = 0; k < d; k++) dot += (double)xi[k] * wj[k];
        double cj = dot / (a * pb->w_norm[j]);
        r->cosine[j] = cj < -1.0 ? -1.0 : (cj > 1.0 ? 1.0 : cj);
    }

    const double alpha = pb->other.alpha_is_norm ? a : pb->mg->s;
    for (int j = 0; j < c; j++) {
        double beta = pb->other.beta_is_norm ? pb->w_norm[j] : 1.0;
        r->logit[j] = alpha * beta * r->cosine[j];
    }
    head_logit hy = target_logit(pb->mg, pb->m_int, r->cosine[y], a, pb->w_norm[y]);
    r->logit[y] = hy.f;

    const int want_grad = dx || pb->p_coef;
    float *e = want_grad ? r->expo : NULL;
    double mx = row_max_f64(r->logit, c);
    double tail = exp_sum_f64(r->logit, 0, y, mx, e) + exp_sum_f64(r->logit, y + 1, c, mx, e);
    double zy = hy.f - mx;
    float ey = amlfs_softmax_exp((float)zy, 0.0f);
    double lp = log_py_from_parts(zy, ey, tail);
    double loss = -lp;
    if (!want_grad) return loss;

    /* G_j = (p_j - 1[j=y]) / N, p_j = e_j / sum; then P_j into r->logit. */
    const double p_scale = 1.0 / (((double)ey + tail) * n);
    double s_sum = 0.0; /* sum_j (G df/da - G df/dc c / a) */
    for (int j = 0; j < c; j++) {
        double cj = r->cosine[j], bj = pb->w_norm[j];
        double g, df_dc, df_da, df_db;
        if (j == y) {
            g = expm1(lp) / n;
            df_dc = hy.df_dc, df_da = hy.df_da, df_db = hy.df_db;
        } else {
            double beta = pb->other.beta_is_norm ? bj : 1.0;
            g = e[j] * p_scale;
            df_dc = alpha * beta;
            df_da = pb->other.alpha_is_norm ? beta * cj : 0.0;
            df_db = pb->other.beta_is_norm ? alpha * cj : 0.0;
        }
        double gc = g * df_dc;
        double p = gc / (a * bj);
        r->logit[j] = p;
        s_sum += g * df_da - gc * cj / a;
        if (pb->p_coef) {
            pb->p_coef[(size_t)j * n + i] = p;
            pb->q_coef[(size_t)j * n + i] =
                pb->w_live[j] ? (g * df_db - gc * cj / bj) / bj : 0.0;
        }
    }
    if (dx) {
        double s_coef = x_live ? s_sum / a : 0.0;
#pragma omp simd
        for (int k = 0; k < d; k++) r->acc[k] = s_coef * xi[k];
        for (int j = 0; j < c; j++) {
            const float *wj = pb->w + (size_t)j * d;
            double p = r->logit[j];
#pragma omp simd
            for (int k = 0; k < d; k++) r->acc[k] += p * wj[k];
        }
        for (int k = 0; k < d; k++) dx[k] = (float)r->acc[k];
    }
    return loss;
}

/* Pass 2 for class j: dW_j (D) = sum_i P_ij x_i + W_j sum_i Q_ij, in sample order. */
static void margin_dw_row(const margin_problem *pb, int j, double *acc, float *dwj)
{
    const int n = pb->n, d = pb->d;
    const double *p = pb->p_coef + (size_t)j * n;
    const double *q = pb->q_coef + (size_t)j * n;
    const float *wj = pb->w + (size_t)j * d;
    double q_sum = 0.0;
    for (int i = 0; i < n; i++) q_sum += q[i];
#pragma omp simd
    for (int k = 0; k < d; k++) acc[k] = q_sum * wj[k];
    for (int i = 0; i < n; i++) {
        const float *xi = pb->x + (size_t)i * d;
        double pi = p[i];
#pragma omp simd
        for (int k = 0; k < d; k++) acc[k] += pi * xi[k];
    }
    for (int k = 0; k < d; k++) dwj[k] = (float)acc[k];
}

static int margin_valid(const amlfs_margin *mg)
{
    switch (mg->kind) {
    case AMLFS_MARGIN_LSOFTMAX:
    case AMLFS_MARGIN_SPHEREFACE:
        return mg->m >= 1.0 && mg->m <= MAX_INT_MARGIN && mg->m == floor(mg->m);
    case AMLFS_MARGIN_COSFACE:
    case AMLFS_MARGIN_ARCFACE: return isfinite(mg->m) && isfinite(mg->s);
    }
    return 0;
}

/* mg->m must be an integer in [1, 64] for L-Softmax and SphereFace, m and s finite for
 * CosFace and ArcFace; otherwise, or when scratch memory cannot be had, every output is
 * NaN. Norms below 1e-12 are floored (NORM_FLOOR above). Scratch: 2 N C doubles when dw
 * is asked for, C and D sized rows per thread otherwise. */
double amlfs_margin_loss(const amlfs_margin *mg, const float *x, const float *w,
                         const int32_t *y, int n, int d, int c, double *loss, float *dx,
                         float *dw)
{
    if (!mg || !x || !w || !y || n < 1 || d < 1 || c < 1) return NAN;
    const size_t nc = (size_t)n * c;
    double *per = loss ? loss : malloc((size_t)n * sizeof *per);
    double *w_norm = malloc((size_t)c * sizeof *w_norm);
    char *w_live = malloc((size_t)c);
    double *p_coef = dw ? malloc(nc * sizeof *p_coef) : NULL;
    double *q_coef = dw ? malloc(nc * sizeof *q_coef) : NULL;
    int failed = !per || !w_norm || !w_live || (dw && (!p_coef || !q_coef)) ||
                 !margin_valid(mg);
    const int parallel = n > 1 && (double)n * c * d >= (double)PARALLEL_MIN_WORK;

    if (!failed) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int j = 0; j < c; j++) {
            const float *wj = w + (size_t)j * d;
            double sq = 0.0;
#pragma omp simd reduction(+ : sq)
            for (int k = 0; k < d; k++) sq += (double)wj[k] * wj[k];
            double norm = sqrt(sq);
            w_live[j] = norm >= NORM_FLOOR;
            w_norm[j] = w_live[j] ? norm : NORM_FLOOR;
        }
        margin_problem pb = {mg,     (int)mg->m, other_logits_of(mg->kind), x, w, y, n, d, c,
                             w_norm, w_live,     p_coef,                    q_coef};

#pragma omp parallel if (parallel)
        {
            margin_rows rows;
            int have_rows = margin_rows_alloc(&rows, c, d);
            if (!have_rows) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int i = 0; i < n; i++)
                if (have_rows) per[i] = margin_row(&pb, i, &rows, dx ? dx + (size_t)i * d : NULL);
            margin_rows_free(&rows);
        }

        if (!failed && dw) {
#pragma omp parallel if (parallel)
            {
                double *acc = malloc((size_t)d * sizeof *acc);
                if (!acc) {
#pragma omp atomic write
                    failed = 1;
                }
#pragma omp for schedule(static)
                for (int j = 0; j < c; j++)
                    if (acc) margin_dw_row(&pb, j, acc, dw + (size_t)j * d);
                free(acc);
            }
        }
    }

    double mean = NAN;
    if (failed) {
        if (loss) fill_f64(loss, (size_t)n, NAN);
        if (dx) fill_f32(dx, (size_t)n * d, NAN);
        if (dw) fill_f32(dw, (size_t)c * d, NAN);
    } else {
        double total = 0.0;
        for (int i = 0; i < n; i++) total += per[i];
        mean = total / n;
    }
    if (per != loss) free(per);
    free(w_norm);
    free(w_live);
    free(p_coef);
    free(q_coef);
    return mean;
}
