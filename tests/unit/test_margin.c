/* test_margin: the exact margin losses on cosines (amlfs_searchable_loss with spec.exact:
 * CosFace, ArcFace, SphereFace on a cosine head) against
 *   - tests/fixtures/classic.h5 /exact/<head>, a float64 PyTorch reference with autograd
 *     (tests/fixtures/make_classic_fixtures.py: acos and cos, insightface's ArcFace
 *     fallback, psi through floor): every per-sample loss and gradient entry;
 *   - amlfs_margin_loss (kernels/cpu/classic.c) on normalised features and class weights,
 *     whose cosines are this loss's input: the losses, and for CosFace and ArcFace the
 *     gradient with respect to the features, which must be the cosines' gradient through
 *     the Jacobian of the cosines (written out here in float64);
 *   - central finite differences of the mean loss on one-sample problems;
 * plus the defaults of the margin, weight 1 and no clamp, theta NULL, and the inputs on
 * which every output is NaN (the prob space, a bad margin). Tolerances are
 * |got - want| <= atol + rtol |want|, stated at each comparison. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlfs_kernels.h"
#include "check.h"

#define PI 3.14159265358979323846

static const char *const head_names[] = {"none", "cosface", "arcface", "sphereface"};

/* ---- helpers ----------------------------------------------------------------------- */

static double max_excess;

/* Counts elements outside atol + rtol |want| as one check per tensor. */
static void compare(const char *what, const double *got, const double *want, size_t count,
                    double atol, double rtol)
{
    size_t bad = 0, worst = 0;
    double worst_err = 0.0, worst_rel = 0.0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs(got[i] - want[i]);
        if (!check_close(got[i], want[i], atol, rtol)) {
            if (!bad)
                worst = i;
            bad++;
        }
        if (isnan(err) || err > worst_err) {
            worst_err = isnan(err) ? INFINITY : err;
            if (!bad)
                worst = i;
        }
        double rel = err / fmax(fabs(want[i]), 1e-300);
        if (err > atol && rel > worst_rel)
            worst_rel = rel;
    }
    double excess = worst_err / (atol + rtol);
    if (excess > max_excess)
        max_excess = excess;
    printf("  %-40s max |err| %.3g, max rel (above atol) %.3g\n", what, worst_err, worst_rel);
    CHECK(bad == 0, "%s: %zu of %zu outside atol %g rtol %g (first at %zu: got %.17g, want "
                    "%.17g)", what, bad, count, atol, rtol, worst, got[worst], want[worst]);
}

static amlfs_loss_spec exact_spec(amlfs_exact_loss kind, double s, double m)
{
    amlfs_loss_spec spec = {.space = AMLFS_SPACE_COSINE, .intervals = 0, .theta = NULL,
                            .scale = s, .exact = kind, .margin = m};
    return spec;
}

/* A small deterministic generator (xorshift64*), uniform in [0, 1). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}
static double normal(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * PI * v);
}

/* A target angle in (0.15, pi - 0.15) at least 0.05 from the head's kinks (ArcFace's
 * switch at pi - m; SphereFace's pieces join smoothly, but are kept clear as well). */
static double target_angle(amlfs_exact_loss kind, double m)
{
    for (;;) {
        double a = 0.15 + (PI - 0.3) * uniform();
        int ok = 1;
        if (kind == AMLFS_EXACT_ARCFACE)
            ok = fabs(a - (PI - m)) > 0.05;
        if (kind == AMLFS_EXACT_SPHEREFACE)
            for (int k = 1; k < (int)m; k++)
                ok = ok && fabs(a - k * PI / m) > 0.05;
        if (ok)
            return a;
    }
}

/* ---- the PyTorch fixture ------------------------------------------------------------ */

static void test_fixture(amlfs_exact_loss kind)
{
    const char *root = getenv("AMLFS_ROOT");
    char path[4096], g[64], ds[128];
    snprintf(path, sizeof path, "%s/tests/fixtures/classic.h5", root ? root : ".");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open %s (tests/fixtures/make_classic_fixtures.py)", path);
    if (f < 0)
        return;
    snprintf(g, sizeof g, "/exact/%s", head_names[kind]);
    hsize_t dims[2];
    snprintf(ds, sizeof ds, "%s/cosines", g);
    if (H5LTget_dataset_info(f, ds, dims, NULL, NULL) < 0) {
        CHECK(0, "%s: %s missing (regenerate the fixture)", path, ds);
        H5Fclose(f);
        return;
    }
    int n = (int)dims[0], c = (int)dims[1];
    float *cos = malloc(sizeof(float) * n * c), *grad = malloc(sizeof(float) * n * c);
    int32_t *y = malloc(sizeof(int32_t) * n);
    double *loss = malloc(sizeof(double) * n), *weight = malloc(sizeof(double) * n);
    double *want_loss = malloc(sizeof(double) * n), *want_grad = malloc(sizeof(double) * n * c);
    double *got_grad = malloc(sizeof(double) * n * c);
    double m, s;
    H5LTread_dataset_float(f, ds, cos);
    snprintf(ds, sizeof ds, "%s/targets", g);
    H5LTread_dataset_int(f, ds, y);
    snprintf(ds, sizeof ds, "%s/loss", g);
    H5LTread_dataset_double(f, ds, want_loss);
    snprintf(ds, sizeof ds, "%s/grad", g);
    H5LTread_dataset_double(f, ds, want_grad);
    H5LTget_attribute_double(f, g, "m", &m);
    H5LTget_attribute_double(f, g, "s", &s);
    H5Fclose(f);

    printf("%s vs PyTorch (N=%d, C=%d, m=%g, s=%g)\n", head_names[kind], n, c, m, s);
    /* margin 0 is the default, which is the fixture's m */
    amlfs_loss_spec spec = exact_spec(kind, s, 0.0);
    int clamped = -1;
    double mean = amlfs_searchable_loss(&spec, cos, y, n, c, loss, grad, weight, &clamped);
    for (size_t k = 0; k < (size_t)n * c; k++)
        got_grad[k] = grad[k];
    /* float32 softmax terms (1 ulp, 6e-8 relative) under float64 per-sample arithmetic */
    compare("loss", loss, want_loss, (size_t)n, 1e-12, 2e-6);
    compare("grad wrt cosines", got_grad, want_grad, (size_t)n * c, 1e-10, 2e-5);
    double want_mean = 0.0;
    for (int i = 0; i < n; i++)
        want_mean += want_loss[i] / n;
    CHECK_CLOSE(mean, want_mean, 1e-12, 2e-6, "mean loss");
    CHECK(clamped == 0, "%s: clamped %d, expected 0", head_names[kind], clamped);
    int ones = 1;
    for (int i = 0; i < n; i++)
        ones = ones && weight[i] == 1.0;
    CHECK(ones, "%s: weight is not 1 everywhere", head_names[kind]);

    /* the explicit margin: the same bits as its default */
    float *grad2 = malloc(sizeof(float) * n * c);
    double *loss2 = malloc(sizeof(double) * n);
    spec.margin = m;
    amlfs_searchable_loss(&spec, cos, y, n, c, loss2, grad2, NULL, NULL);
    CHECK(!memcmp(loss, loss2, sizeof(double) * n) && !memcmp(grad, grad2, sizeof(float) * n * c),
          "%s: margin %g differs from margin 0 (the default)", head_names[kind], m);
    free(grad2);
    free(loss2);
    free(cos);
    free(grad);
    free(y);
    free(loss);
    free(weight);
    free(want_loss);
    free(want_grad);
    free(got_grad);
}

/* ---- against amlfs_margin_loss on normalised features ------------------------------- */

static void test_against_features(amlfs_exact_loss kind, double s)
{
    enum { N = 24, D = 12, C = 9 };
    amlfs_margin_kind mk = kind == AMLFS_EXACT_COSFACE   ? AMLFS_MARGIN_COSFACE
                           : kind == AMLFS_EXACT_ARCFACE ? AMLFS_MARGIN_ARCFACE
                                                         : AMLFS_MARGIN_SPHEREFACE;
    amlfs_margin mg = amlfs_margin_default(mk);
    mg.s = s;
    static float x[N * D], w[C * D], cosf32[N * C], grad[N * C], dx[N * D];
    static double xd[N * D], wd[C * D], cosd[N * C], loss_c[N], loss_f[N], dx_chain[N * D],
        dx_got[N * D];
    int32_t y[N];
    /* class weights of unit norm, features at chosen angles to their class weight; the
     * features' norm is s, which SphereFace's |x| then equals */
    for (int j = 0; j < C; j++) {
        double nrm = 0.0;
        for (int k = 0; k < D; k++)
            wd[j * D + k] = normal(), nrm += wd[j * D + k] * wd[j * D + k];
        for (int k = 0; k < D; k++)
            w[j * D + k] = (float)(wd[j * D + k] / sqrt(nrm));
    }
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)(uniform() * C);
        double a = target_angle(kind, mg.m), wn = 0.0, un = 0.0, dot = 0.0, u[D];
        for (int k = 0; k < D; k++)
            wn += (double)w[y[i] * D + k] * w[y[i] * D + k];
        for (int k = 0; k < D; k++)
            u[k] = normal(), dot += u[k] * w[y[i] * D + k] / sqrt(wn);
        for (int k = 0; k < D; k++)
            u[k] -= dot * w[y[i] * D + k] / sqrt(wn), un += u[k] * u[k];
        for (int k = 0; k < D; k++)
            x[i * D + k] =
                (float)(s * (cos(a) * w[y[i] * D + k] / sqrt(wn) + sin(a) * u[k] / sqrt(un)));
    }
    /* the cosines in float64 from the float32 tensors, and their float32 rounding */
    for (int k = 0; k < N * D; k++)
        xd[k] = x[k];
    for (int k = 0; k < C * D; k++)
        wd[k] = w[k];
    double xn[N], wn[C];
    for (int i = 0; i < N; i++) {
        xn[i] = 0.0;
        for (int k = 0; k < D; k++)
            xn[i] += xd[i * D + k] * xd[i * D + k];
        xn[i] = sqrt(xn[i]);
    }
    for (int j = 0; j < C; j++) {
        wn[j] = 0.0;
        for (int k = 0; k < D; k++)
            wn[j] += wd[j * D + k] * wd[j * D + k];
        wn[j] = sqrt(wn[j]);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            double dot = 0.0;
            for (int k = 0; k < D; k++)
                dot += xd[i * D + k] * wd[j * D + k];
            cosd[i * C + j] = dot / (xn[i] * wn[j]);
            cosf32[i * C + j] = (float)cosd[i * C + j];
        }

    amlfs_loss_spec spec = exact_spec(kind, s, 0.0);
    amlfs_searchable_loss(&spec, cosf32, y, N, C, loss_c, grad, NULL, NULL);
    amlfs_margin_loss(&mg, x, w, y, N, D, C, loss_f, dx, NULL);
    printf("%s vs amlfs_margin_loss on normalised features (s=%g)\n", head_names[kind], s);
    /* the cosines' float32 rounding (2^-24 relative) moves each loss by up to about
     * s 2^-24 per cosine; SphereFace's |x| is s only to float32's rounding of x */
    compare("loss", loss_c, loss_f, N, 4e-5 * s / 64.0 + 1e-6, 1e-5);
    if (kind == AMLFS_EXACT_SPHEREFACE) /* its logits also depend on |x| itself */
        return;
    /* dL/dx_i = sum_j dL/dc_ij (w_j/|w_j| - c_ij x_i/|x_i|) / |x_i| */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) {
            double acc = 0.0;
            for (int j = 0; j < C; j++)
                acc += grad[i * C + j] *
                       (wd[j * D + k] / wn[j] - cosd[i * C + j] * xd[i * D + k] / xn[i]) / xn[i];
            dx_chain[i * D + k] = acc;
            dx_got[i * D + k] = dx[i * D + k];
        }
    compare("dx = grad wrt cosines . dcos/dx", dx_chain, dx_got, (size_t)N * D, 1e-7, 1e-4);
}

/* ---- finite differences ------------------------------------------------------------- */

static void test_finite_differences(amlfs_exact_loss kind, double s)
{
    enum { C = 7, TRIALS = 12 };
    double m = kind == AMLFS_EXACT_COSFACE   ? AMLFS_COSFACE_MARGIN
               : kind == AMLFS_EXACT_ARCFACE ? AMLFS_ARCFACE_MARGIN
                                             : AMLFS_SPHEREFACE_MARGIN;
    amlfs_loss_spec spec = exact_spec(kind, s, 0.0);
    double got[TRIALS * C], want[TRIALS * C];
    for (int t = 0; t < TRIALS; t++) {
        float cs[C], grad[C];
        int32_t y = (int32_t)(uniform() * C);
        for (int j = 0; j < C; j++)
            cs[j] = (float)(-0.6 + 1.4 * uniform());
        cs[y] = (float)cos(target_angle(kind, m));
        amlfs_searchable_loss(&spec, cs, &y, 1, C, NULL, grad, NULL, NULL);
        for (int j = 0; j < C; j++) {
            const float h = 1e-3f;
            float save = cs[j];
            cs[j] = save + h;
            double up_at = cs[j], up = amlfs_searchable_loss(&spec, cs, &y, 1, C, NULL,
                                                              NULL, NULL, NULL);
            cs[j] = save - h;
            double down_at = cs[j], down = amlfs_searchable_loss(&spec, cs, &y, 1, C, NULL,
                                                                  NULL, NULL, NULL);
            cs[j] = save;
            want[t * C + j] = (up - down) / (up_at - down_at);
            got[t * C + j] = grad[j];
        }
    }
    printf("%s vs central differences (s=%g, h=1e-3)\n", head_names[kind], s);
    /* truncation (h^2/6 times the third derivative, ~s^3 at most) and the loss's own
     * float32-term rounding over 2h */
    compare("grad wrt cosines", got, want, TRIALS * C, 2e-4 * s * s * s / 64.0, 2e-3);
}

/* ---- edges ---------------------------------------------------------------------------- */

static void test_edges(void)
{
    float cs[3] = {0.2f, 0.5f, -0.1f}, grad[3];
    int32_t y = 1;
    double loss, weight;
    int clamped = -1;
    /* exact losses are defined on cosines only */
    amlfs_loss_spec spec = exact_spec(AMLFS_EXACT_COSFACE, 64.0, 0.0);
    spec.space = AMLFS_SPACE_PROB;
    double mean = amlfs_searchable_loss(&spec, cs, &y, 1, 3, &loss, grad, &weight, &clamped);
    CHECK(isnan(mean) && isnan(loss) && isnan(grad[0]) && isnan(weight),
          "prob space with an exact loss: expected NaN, got mean %g", mean);
    /* SphereFace's margin is an integer in [1, 64] */
    spec = exact_spec(AMLFS_EXACT_SPHEREFACE, 16.0, 2.5);
    mean = amlfs_searchable_loss(&spec, cs, &y, 1, 3, &loss, grad, NULL, NULL);
    CHECK(isnan(mean) && isnan(loss) && isnan(grad[2]), "SphereFace m = 2.5: expected NaN");
    spec = exact_spec(AMLFS_EXACT_ARCFACE, 64.0, NAN);
    mean = amlfs_searchable_loss(&spec, cs, &y, 1, 3, &loss, grad, NULL, NULL);
    CHECK(isnan(mean), "ArcFace m = NaN: expected NaN");
    /* a target cosine rounded past 1 is taken at 1: finite, and the same as at 1 */
    for (int kind = AMLFS_EXACT_COSFACE; kind <= AMLFS_EXACT_SPHEREFACE; kind++) {
        spec = exact_spec((amlfs_exact_loss)kind, 16.0, 0.0);
        float past[3] = {0.2f, 1.0000001f, -0.1f}, at[3] = {0.2f, 1.0f, -0.1f};
        double l_past, l_at;
        amlfs_searchable_loss(&spec, past, &y, 1, 3, &l_past, grad, NULL, NULL);
        CHECK(isfinite(l_past) && isfinite(grad[1]), "%s at cos 1 + 1e-7: loss %g grad %g",
              head_names[kind], l_past, (double)grad[1]);
        amlfs_searchable_loss(&spec, at, &y, 1, 3, &l_at, grad, NULL, NULL);
        CHECK(l_at == l_past, "%s: cos rounded past 1 gives %.17g, at 1 %.17g",
              head_names[kind], l_past, l_at);
    }
    /* the literal values at one point: CosFace's target logit s (c - m), ArcFace's
     * s cos(acos c + m), SphereFace's s psi */
    float row[2] = {0.6f, 0.1f};
    int32_t y0 = 0;
    double c0 = row[0], c1 = row[1], s = 10.0;
    double want[3] = {s * (c0 - 0.35), s * cos(acos(c0) + 0.5), 0.0};
    double th = acos(c0); /* k = floor(4 th / pi) = 1 for th = 0.927 */
    want[2] = s * (-cos(4.0 * th) - 2.0);
    for (int kind = AMLFS_EXACT_COSFACE; kind <= AMLFS_EXACT_SPHEREFACE; kind++) {
        spec = exact_spec((amlfs_exact_loss)kind, s, 0.0);
        double fy = want[kind - 1], fo = s * c1;
        double lit = log(exp(fy) + exp(fo)) - fy;
        amlfs_searchable_loss(&spec, row, &y0, 1, 2, &loss, NULL, NULL, NULL);
        CHECK_CLOSE(loss, lit, 1e-12, 1e-6, head_names[kind]);
    }
    /* ArcFace beyond pi - m: the fallback s (c - m sin m) */
    float far[2] = {-0.95f, 0.1f};
    spec = exact_spec(AMLFS_EXACT_ARCFACE, s, 0.0);
    double fy = s * ((double)far[0] - 0.5 * sin(0.5)), fo = s * (double)far[1];
    amlfs_searchable_loss(&spec, far, &y0, 1, 2, &loss, NULL, NULL, NULL);
    CHECK_CLOSE(loss, log(exp(fy) + exp(fo)) - fy, 1e-12, 1e-6, "arcface fallback");
}

int main(void)
{
    for (int kind = AMLFS_EXACT_COSFACE; kind <= AMLFS_EXACT_SPHEREFACE; kind++)
        test_fixture((amlfs_exact_loss)kind);
    test_against_features(AMLFS_EXACT_COSFACE, 64.0);
    test_against_features(AMLFS_EXACT_ARCFACE, 64.0);
    test_against_features(AMLFS_EXACT_SPHEREFACE, 16.0);
    test_against_features(AMLFS_EXACT_COSFACE, 8.0);
    test_against_features(AMLFS_EXACT_ARCFACE, 8.0);
    for (int kind = AMLFS_EXACT_COSFACE; kind <= AMLFS_EXACT_SPHEREFACE; kind++) {
        test_finite_differences((amlfs_exact_loss)kind, 4.0);
        test_finite_differences((amlfs_exact_loss)kind, 16.0);
    }
    test_edges();
    return check_done("test_margin");
}
