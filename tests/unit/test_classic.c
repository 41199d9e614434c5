/* test_classic.c: the classic losses (kernels/cpu/classic.c) against
 *   - tests/fixtures/classic.h5, a float64 PyTorch reference with autograd
 *     (tests/fixtures/make_classic_fixtures.py): every per-sample loss and gradient;
 *   - a literal float64 loop written here, for cross-entropy and the focal loss, on the
 *     fixture's logits and on a batch large enough to run on several threads;
 *   - central finite differences of the returned mean loss, on one-sample problems, at
 *     coordinates whose perturbation keeps the target on one piece of its head;
 * plus thread-count independence, the NULL-output paths, non-finite and degenerate
 * inputs. Tolerances are |got - want| <= atol + rtol |want|, per tensor, stated at each
 * comparison; the largest errors are printed.
 */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlfs_kernels.h"
#include "check.h"

#define PI 3.14159265358979323846

/* Results are float32 tensors (gradients) or float64 from a float32 softmax (losses):
 * a few float32 roundings of relative error, far inside 1e-5. */
#define RTOL 1e-5
/* Absolute floors: a loss of 1e-17 from the float64 reference is itself only good to
 * float64's epsilon times the log-sum-exp; gradient entries below 1e-38 are flushed by
 * the float32 softmax. */
#define LOSS_ATOL 1e-12
#define GRAD_ATOL 1e-10

/* ---- fixture reading ------------------------------------------------------------- */

static hid_t fixture;

static void open_fixture(void)
{
    const char *root = getenv("AMLFS_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/classic.h5", root ? root : ".");
    fixture = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fixture < 0) {
        fprintf(stderr, "test_classic: cannot open %s (run tests/fixtures/"
                        "make_classic_fixtures.py)\n", path);
        exit(1);
    }
}

/* The dims of a dataset of rank <= 2 (dims[1] = 1 for rank 1); exits when missing. */
static size_t dataset_dims(const char *path, hsize_t dims[2])
{
    int rank = 0;
    dims[0] = dims[1] = 1;
    if (H5LTget_dataset_ndims(fixture, path, &rank) < 0 || rank < 1 || rank > 2 ||
        H5LTget_dataset_info(fixture, path, dims, NULL, NULL) < 0) {
        fprintf(stderr, "test_classic: classic.h5: %s: missing or not rank 1 or 2\n", path);
        exit(1);
    }
    return (size_t)(dims[0] * dims[1]);
}

static void read_failed(const char *path)
{
    fprintf(stderr, "test_classic: classic.h5: %s: cannot read\n", path);
    exit(1);
}

static float *read_f32(const char *group, const char *name, hsize_t dims[2])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, name);
    float *v = malloc(dataset_dims(path, dims) * sizeof *v);
    if (!v || H5LTread_dataset_float(fixture, path, v) < 0) read_failed(path);
    return v;
}

static double *read_f64(const char *group, const char *name, hsize_t dims[2])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, name);
    double *v = malloc(dataset_dims(path, dims) * sizeof *v);
    if (!v || H5LTread_dataset_double(fixture, path, v) < 0) read_failed(path);
    return v;
}

static int32_t *read_i32(const char *group, const char *name, hsize_t dims[2])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, name);
    int32_t *v = malloc(dataset_dims(path, dims) * sizeof *v);
    if (!v || H5LTread_dataset_int(fixture, path, v) < 0) read_failed(path);
    return v;
}

static double read_attr(const char *group, const char *name)
{
    double v;
    if (H5LTget_attribute_double(fixture, group, name, &v) < 0) {
        fprintf(stderr, "test_classic: classic.h5: %s: attribute %s missing\n", group, name);
        exit(1);
    }
    return v;
}

/* ---- comparisons ----------------------------------------------------------------- */

/* Every element within atol + rtol |want|; one check per tensor, naming the worst
 * element, and the largest errors printed. */
static void compare(const char *what, const double *got, const double *want, size_t count,
                    double atol, double rtol)
{
    size_t bad = 0, worst = 0;
    double max_abs = 0.0, max_rel = 0.0, worst_excess = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        double err = fabs(got[i] - want[i]);
        if (!check_close(got[i], want[i], atol, rtol)) bad++;
        double excess = isnan(err) ? INFINITY : err - (atol + rtol * fabs(want[i]));
        if (excess > worst_excess) worst_excess = excess, worst = i;
        if (err > max_abs || isnan(err)) max_abs = err;
        if (fabs(want[i]) > 100 * atol && err / fabs(want[i]) > max_rel)
            max_rel = err / fabs(want[i]);
    }
    printf("  %-34s %6zu values  max abs err %.3g  max rel err %.3g (|want| > 100 atol)\n",
           what, count, max_abs, max_rel);
    CHECK(bad == 0, "%s: %zu of %zu outside atol %g + rtol %g; worst [%zu] got %.17g want %.17g",
          what, bad, count, atol, rtol, worst, got[worst], want[worst]);
}

static void compare_f32(const char *what, const float *got, const double *want, size_t count,
                        double atol, double rtol)
{
    double *g = malloc(count * sizeof *g);
    if (!g) exit(1);
    for (size_t i = 0; i < count; i++) g[i] = got[i];
    compare(what, g, want, count, atol, rtol);
    free(g);
}

/* ---- a literal float64 reference for cross-entropy and focal ----------------------- */

/* Per-sample -(1-p_y)^gamma log p_y and the gradient of the mean, all in float64, the
 * formulas as written in the textbooks: log p_y = f_y - max - log sum exp(f - max);
 * dL/df_j = (p_j - 1[j=y]) ((1-p)^gamma - gamma p (1-p)^(gamma-1) log p) / N. */
static void literal_focal(const float *logits, const int32_t *y, int n, int c, double gamma,
                          double *loss, double *grad)
{
    for (int i = 0; i < n; i++) {
        const float *f = logits + (size_t)i * c;
        double mx = f[0];
        for (int j = 1; j < c; j++)
            if (f[j] > mx) mx = f[j];
        double sum = 0.0;
        for (int j = 0; j < c; j++) sum += exp(f[j] - mx);
        double lp = f[y[i]] - mx - log(sum);
        double p = exp(lp);
        double g = 1.0;
        loss[i] = -lp;
        if (gamma != 0.0) {
            loss[i] = -pow(1.0 - p, gamma) * lp;
            g = pow(1.0 - p, gamma) - gamma * p * pow(1.0 - p, gamma - 1.0) * lp;
        }
        for (int j = 0; j < c; j++)
            grad[(size_t)i * c + j] = (exp(f[j] - mx) / sum - (j == y[i])) * g / n;
    }
}

/* ---- the fixture cases ----------------------------------------------------------- */

/* /ce/<name> or /focal/<name> against the fixture and the literal loop. */
static void test_logit_case(const char *group, int focal)
{
    hsize_t dims[2], d1[2];
    float *logits = read_f32(group, "logits", dims);
    int32_t *y = read_i32(group, "targets", d1);
    double *want_loss = read_f64(group, "loss", d1);
    double *want_grad = read_f64(group, "grad", d1);
    int n = (int)dims[0], c = (int)dims[1];
    double gamma = focal ? read_attr(group, "gamma") : 0.0;
    printf("%s (N=%d, C=%d%s)\n", group, n, c, focal ? ", focal" : "");

    double *loss = malloc((size_t)n * sizeof *loss);
    float *grad = malloc((size_t)n * c * sizeof *grad);
    double *lit_loss = malloc((size_t)n * sizeof *lit_loss);
    double *lit_grad = malloc((size_t)n * c * sizeof *lit_grad);
    if (!loss || !grad || !lit_loss || !lit_grad) exit(1);
    double mean = focal ? amlfs_focal_loss(logits, y, n, c, gamma, loss, grad)
                        : amlfs_softmax_ce(logits, y, n, c, loss, grad);
    char what[128];
    snprintf(what, sizeof what, "%s loss vs torch", group);
    compare(what, loss, want_loss, (size_t)n, LOSS_ATOL, RTOL);
    snprintf(what, sizeof what, "%s grad vs torch", group);
    compare_f32(what, grad, want_grad, (size_t)n * c, GRAD_ATOL, RTOL);
    double want_mean = 0.0;
    for (int i = 0; i < n; i++) want_mean += want_loss[i];
    want_mean /= n;
    CHECK_CLOSE(mean, want_mean, LOSS_ATOL, RTOL, group);

    /* The literal loop (no log1p: its tiny losses are good to 1e-16 absolute only). */
    literal_focal(logits, y, n, c, gamma, lit_loss, lit_grad);
    snprintf(what, sizeof what, "%s loss vs float64 loop", group);
    compare(what, loss, lit_loss, (size_t)n, LOSS_ATOL, RTOL);
    snprintf(what, sizeof what, "%s grad vs float64 loop", group);
    compare_f32(what, grad, lit_grad, (size_t)n * c, GRAD_ATOL, RTOL);

    free(logits), free(y), free(want_loss), free(want_grad);
    free(loss), free(grad), free(lit_loss), free(lit_grad);
}

/* The head's piece at a target cosine: SphereFace's k, ArcFace's branch, else 0. */
static int head_piece(const amlfs_margin *mg, double c)
{
    if (mg->kind == AMLFS_MARGIN_LSOFTMAX || mg->kind == AMLFS_MARGIN_SPHEREFACE) {
        int k = (int)floor(mg->m * acos(c < -1 ? -1 : (c > 1 ? 1 : c)) / PI);
        return k > (int)mg->m - 1 ? (int)mg->m - 1 : k;
    }
    if (mg->kind == AMLFS_MARGIN_ARCFACE) return c >= cos(PI - mg->m);
    return 0;
}

static double target_cos(const float *x, const float *w, int d)
{
    double dot = 0, xx = 0, ww = 0;
    for (int k = 0; k < d; k++) dot += (double)x[k] * w[k], xx += (double)x[k] * x[k],
                                ww += (double)w[k] * w[k];
    return dot / sqrt(xx * ww);
}

/* Central differences of the mean loss of the one-sample problem (x (D), y) at every
 * coordinate of x and of W's target row and one other row, h = 1e-3 in float32 (the step
 * actually taken is used). Skipped: coordinates whose +-h moves the target to another
 * piece of the head. Tolerance 2e-4 + 2e-3 |analytic|: the float32 softmax's rounding
 * (~1e-7 in the loss) over 2h, and the h^2 f''' truncation (hence the moderate scale the
 * caller uses for CosFace and ArcFace: f''' grows as s^3). */
static void fd_margin_sample(const amlfs_margin *mg, const float *x, const float *w0, int32_t y,
                             int d, int c, int *checked, int *skipped, double *max_err)
{
    float *xv = malloc((size_t)d * sizeof *xv), *w = malloc((size_t)c * d * sizeof *w);
    float *dx = malloc((size_t)d * sizeof *dx), *dw = malloc((size_t)c * d * sizeof *dw);
    if (!xv || !w || !dx || !dw) exit(1);
    memcpy(xv, x, (size_t)d * sizeof *xv);
    memcpy(w, w0, (size_t)c * d * sizeof *w);
    amlfs_margin_loss(mg, xv, w, &y, 1, d, c, NULL, dx, dw);
    int other = (y + 1) % c;
    for (int t = 0; t < 3 * d; t++) {
        float *coord = t < d ? &xv[t] : &w[(size_t)(t < 2 * d ? y : other) * d + t % d];
        double analytic = t < d ? dx[t] : dw[(size_t)(t < 2 * d ? y : other) * d + t % d];
        float saved = *coord;
        float hi = saved + 1e-3f, lo = saved - 1e-3f;
        *coord = hi;
        int piece_hi = head_piece(mg, target_cos(xv, w + (size_t)y * d, d));
        double l_hi = amlfs_margin_loss(mg, xv, w, &y, 1, d, c, NULL, NULL, NULL);
        *coord = lo;
        int piece_lo = head_piece(mg, target_cos(xv, w + (size_t)y * d, d));
        double l_lo = amlfs_margin_loss(mg, xv, w, &y, 1, d, c, NULL, NULL, NULL);
        *coord = saved;
        if (piece_hi != piece_lo) {
            (*skipped)++;
            continue;
        }
        double fd = (l_hi - l_lo) / ((double)hi - (double)lo);
        double err = fabs(fd - analytic);
        if (err > *max_err) *max_err = err;
        CHECK(check_close(fd, analytic, 2e-4, 2e-3),
              "margin kind %d coordinate %d: finite difference %.9g, gradient %.9g", mg->kind,
              t, fd, analytic);
        (*checked)++;
    }
    free(xv), free(w), free(dx), free(dw);
}

/* /margin/<head> against the fixture; coverage of the head's pieces; finite
 * differences on its inputs. */
static void test_margin_case(const char *head)
{
    char group[64];
    snprintf(group, sizeof group, "/margin/%s", head);
    hsize_t dx_dims[2], dw_dims[2], d1[2];
    float *x = read_f32(group, "x", dx_dims);
    float *w = read_f32(group, "w", dw_dims);
    int32_t *y = read_i32(group, "targets", d1);
    double *want_loss = read_f64(group, "loss", d1);
    double *want_dx = read_f64(group, "dx", d1);
    double *want_dw = read_f64(group, "dw", d1);
    double *cos_y = read_f64(group, "cos_target", d1);
    int n = (int)dx_dims[0], d = (int)dx_dims[1], c = (int)dw_dims[0];
    amlfs_margin mg = {(amlfs_margin_kind)(int)read_attr(group, "kind"), read_attr(group, "m"),
                       read_attr(group, "s")};
    amlfs_margin def = amlfs_margin_default(mg.kind);
    CHECK(def.m == mg.m && (def.s == mg.s || mg.kind <= AMLFS_MARGIN_SPHEREFACE),
          "%s: fixture m %g s %g, amlfs_margin_default m %g s %g", head, mg.m, mg.s, def.m,
          def.s);
    printf("%s (N=%d, D=%d, C=%d, m=%g, s=%g)\n", group, n, d, c, mg.m, mg.s);

    double *loss = malloc((size_t)n * sizeof *loss);
    float *dx = malloc((size_t)n * d * sizeof *dx), *dw = malloc((size_t)c * d * sizeof *dw);
    if (!loss || !dx || !dw) exit(1);
    double mean = amlfs_margin_loss(&mg, x, w, y, n, d, c, loss, dx, dw);
    char what[128];
    snprintf(what, sizeof what, "%s loss vs torch", head);
    compare(what, loss, want_loss, (size_t)n, LOSS_ATOL, RTOL);
    /* dx and dw: float32 results of float64 sums; entries that cancel to near zero are
     * held to 1e-7 of the tensor's largest entry. */
    double scale = 0.0;
    for (size_t i = 0; i < (size_t)n * d; i++) scale = fmax(scale, fabs(want_dx[i]));
    for (size_t i = 0; i < (size_t)c * d; i++) scale = fmax(scale, fabs(want_dw[i]));
    snprintf(what, sizeof what, "%s dx vs torch", head);
    compare_f32(what, dx, want_dx, (size_t)n * d, 1e-7 * scale, RTOL);
    snprintf(what, sizeof what, "%s dw vs torch", head);
    compare_f32(what, dw, want_dw, (size_t)c * d, 1e-7 * scale, RTOL);
    double want_mean = 0.0;
    for (int i = 0; i < n; i++) want_mean += want_loss[i];
    CHECK_CLOSE(mean, want_mean / n, LOSS_ATOL, RTOL, head);

    /* The fixture covers every piece: k = 0..m-1, ArcFace's both branches. */
    int pieces[2 * 64] = {0};
    for (int i = 0; i < n; i++) {
        double c_here = target_cos(x + (size_t)i * d, w + (size_t)y[i] * d, d);
        CHECK_CLOSE(c_here, cos_y[i], 1e-12, 0, "fixture cos_target");
        pieces[head_piece(&mg, c_here)]++;
    }
    int want_pieces = mg.kind == AMLFS_MARGIN_ARCFACE ? 2
                    : mg.kind == AMLFS_MARGIN_COSFACE ? 1 : (int)mg.m;
    for (int k = 0; k < want_pieces; k++)
        CHECK(pieces[k] > 0, "%s: no fixture sample on piece %d", head, k);

    /* Finite differences, one sample at a time; s = 8 for the scaled heads. */
    amlfs_margin fd_mg = mg;
    if (mg.kind == AMLFS_MARGIN_COSFACE || mg.kind == AMLFS_MARGIN_ARCFACE) fd_mg.s = 8.0;
    int checked = 0, skipped = 0;
    double max_err = 0.0;
    for (int i = 0; i < n; i++)
        fd_margin_sample(&fd_mg, x + (size_t)i * d, w, y[i], d, c, &checked, &skipped,
                         &max_err);
    printf("  %-34s %6d coordinates, %d skipped at kinks, max abs err %.3g\n",
           "finite differences", checked, skipped, max_err);
    CHECK(checked >= 3 * d * n - 8, "%s: only %d finite-difference coordinates checked", head,
          checked);

    free(x), free(w), free(y), free(want_loss), free(want_dx), free(want_dw), free(cos_y);
    free(loss), free(dx), free(dw);
}

/* Central differences of cross-entropy and focal on the first rows of /ce/small, one
 * sample at a time, h = 1e-2 (logits of size 3): tolerance 1e-4 + 1e-3 |analytic|. */
static void test_logit_finite_differences(void)
{
    hsize_t dims[2], d1[2];
    float *logits = read_f32("/ce/small", "logits", dims);
    int32_t *y = read_i32("/ce/small", "targets", d1);
    int c = (int)dims[1];
    float *f = malloc((size_t)c * sizeof *f), *grad = malloc((size_t)c * sizeof *grad);
    if (!f || !grad) exit(1);
    double max_err = 0.0;
    int checked = 0;
    const double gammas[] = {0.0, 0.5, 2.0};
    for (int gi = 0; gi < 3; gi++)
        for (int i = 0; i < 4; i++) {
            memcpy(f, logits + (size_t)i * c, (size_t)c * sizeof *f);
            amlfs_focal_loss(f, &y[i], 1, c, gammas[gi], NULL, grad);
            for (int j = 0; j < c; j++) {
                float saved = f[j], hi = saved + 1e-2f, lo = saved - 1e-2f;
                f[j] = hi;
                double l_hi = amlfs_focal_loss(f, &y[i], 1, c, gammas[gi], NULL, NULL);
                f[j] = lo;
                double l_lo = amlfs_focal_loss(f, &y[i], 1, c, gammas[gi], NULL, NULL);
                f[j] = saved;
                double fd = (l_hi - l_lo) / ((double)hi - (double)lo);
                max_err = fmax(max_err, fabs(fd - grad[j]));
                CHECK(check_close(fd, grad[j], 1e-4, 1e-3),
                      "focal gamma %g sample %d class %d: finite difference %.9g, gradient %.9g",
                      gammas[gi], i, j, fd, (double)grad[j]);
                checked++;
            }
        }
    printf("cross-entropy and focal finite differences: %d coordinates, max abs err %.3g\n",
           checked, max_err);
    free(logits), free(y), free(f), free(grad);
}

/* ---- large batches: threads, NULL outputs ------------------------------------------ */

static uint64_t lcg_state = 0x2019060200000001ull;

static double uniform(void) /* [0, 1) */
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

/* N=512, C=2000 (the parallel path), against the literal loop; the same bytes on 1 and 4
 * threads; the loss-less and gradient-less calls give the same mean; gamma 0 focal is
 * cross-entropy exactly. */
static void test_large_batch(void)
{
    const int n = 512, c = 2000;
    size_t nc = (size_t)n * c;
    float *logits = malloc(nc * sizeof *logits);
    int32_t *y = malloc((size_t)n * sizeof *y);
    double *loss1 = malloc((size_t)n * sizeof *loss1), *loss4 = malloc((size_t)n * sizeof *loss4);
    float *grad1 = malloc(nc * sizeof *grad1), *grad4 = malloc(nc * sizeof *grad4);
    double *lit_loss = malloc((size_t)n * sizeof *lit_loss), *lit_grad = malloc(nc * sizeof *lit_grad);
    if (!logits || !y || !loss1 || !loss4 || !grad1 || !grad4 || !lit_loss || !lit_grad) exit(1);
    for (size_t i = 0; i < nc; i++) logits[i] = (float)(12.0 * uniform() - 6.0);
    for (int i = 0; i < n; i++) y[i] = (int32_t)(uniform() * c);
    printf("random batch (N=%d, C=%d)\n", n, c);

    const double gammas[] = {0.0, 2.0};
    for (int gi = 0; gi < 2; gi++) {
        double gamma = gammas[gi];
        omp_set_num_threads(1);
        double mean1 = amlfs_focal_loss(logits, y, n, c, gamma, loss1, grad1);
        omp_set_num_threads(4);
        double mean4 = amlfs_focal_loss(logits, y, n, c, gamma, loss4, grad4);
        CHECK(memcmp(&mean1, &mean4, sizeof mean1) == 0 &&
                  memcmp(loss1, loss4, (size_t)n * sizeof *loss1) == 0 &&
                  memcmp(grad1, grad4, nc * sizeof *grad1) == 0,
              "gamma %g: 1 and 4 threads differ (means %.17g %.17g)", gamma, mean1, mean4);
        double mean_no_loss = amlfs_focal_loss(logits, y, n, c, gamma, NULL, grad4);
        double mean_no_grad = amlfs_focal_loss(logits, y, n, c, gamma, NULL, NULL);
        CHECK(mean_no_loss == mean1 && mean_no_grad == mean1,
              "gamma %g: means with NULL outputs %.17g %.17g, with all %.17g", gamma,
              mean_no_loss, mean_no_grad, mean1);
        if (gamma == 0.0) {
            double mean_ce = amlfs_softmax_ce(logits, y, n, c, loss4, grad4);
            CHECK(mean_ce == mean1 && memcmp(grad1, grad4, nc * sizeof *grad1) == 0,
                  "focal gamma 0 is not cross-entropy bit for bit");
        }
        literal_focal(logits, y, n, c, gamma, lit_loss, lit_grad);
        compare(gamma == 0.0 ? "ce loss vs float64 loop" : "focal2 loss vs float64 loop", loss1,
                lit_loss, (size_t)n, LOSS_ATOL, RTOL);
        compare_f32(gamma == 0.0 ? "ce grad vs float64 loop" : "focal2 grad vs float64 loop",
                    grad1, lit_grad, nc, GRAD_ATOL, RTOL);
    }
    omp_set_num_threads(omp_get_num_procs());
    free(logits), free(y), free(loss1), free(loss4), free(grad1), free(grad4);
    free(lit_loss), free(lit_grad);
}

/* A margin batch above the parallel threshold: 1 and 4 threads give the same bytes. */
static void test_margin_threads(void)
{
    const int n = 64, d = 32, c = 100;
    float *x = malloc((size_t)n * d * sizeof *x), *w = malloc((size_t)c * d * sizeof *w);
    int32_t y[64];
    float *dx[2], *dw[2];
    double loss[2][64], mean[2];
    for (int t = 0; t < 2; t++) {
        dx[t] = malloc((size_t)n * d * sizeof *dx[t]);
        dw[t] = malloc((size_t)c * d * sizeof *dw[t]);
        if (!dx[t] || !dw[t]) exit(1);
    }
    if (!x || !w) exit(1);
    for (int i = 0; i < n * d; i++) x[i] = (float)(2.0 * uniform() - 1.0);
    for (int i = 0; i < c * d; i++) w[i] = (float)(2.0 * uniform() - 1.0);
    for (int i = 0; i < n; i++) y[i] = (int32_t)(uniform() * c);
    for (int kind = 0; kind < 4; kind++) {
        amlfs_margin mg = amlfs_margin_default((amlfs_margin_kind)kind);
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t ? 4 : 1);
            mean[t] = amlfs_margin_loss(&mg, x, w, y, n, d, c, loss[t], dx[t], dw[t]);
        }
        CHECK(isfinite(mean[0]) && memcmp(&mean[0], &mean[1], sizeof mean[0]) == 0 &&
                  memcmp(loss[0], loss[1], sizeof loss[0]) == 0 &&
                  memcmp(dx[0], dx[1], (size_t)n * d * sizeof *dx[0]) == 0 &&
                  memcmp(dw[0], dw[1], (size_t)c * d * sizeof *dw[0]) == 0,
              "margin kind %d: 1 and 4 threads differ (means %.17g %.17g)", kind, mean[0],
              mean[1]);
        double mean_plain = amlfs_margin_loss(&mg, x, w, y, n, d, c, NULL, NULL, NULL);
        CHECK(mean_plain == mean[0], "margin kind %d: mean without outputs %.17g, with %.17g",
              kind, mean_plain, mean[0]);
    }
    omp_set_num_threads(omp_get_num_procs());
    free(x), free(w);
    for (int t = 0; t < 2; t++) free(dx[t]), free(dw[t]);
}

/* ---- degenerate inputs ----------------------------------------------------------- */

static void test_degenerate(void)
{
    enum { C = 4, D = 3 };
    float f[2 * C] = {1, 2, 3, 4, 0.5f, -1, 2, 0};
    int32_t y[2] = {2, 1};
    double loss[2];
    float grad[2 * C];

    /* NaN and +inf logits: non-finite loss, no crash; -inf at the target: +inf. */
    f[1] = NAN;
    CHECK(isnan(amlfs_softmax_ce(f, y, 2, C, loss, grad)) && isnan(loss[0]) && isfinite(loss[1]),
          "NaN logit: losses %g %g", loss[0], loss[1]);
    f[1] = INFINITY;
    CHECK(!isfinite(amlfs_focal_loss(f, y, 2, C, 2.0, loss, grad)), "inf logit: finite loss");
    f[1] = 2;
    f[C + 1] = -INFINITY;
    double m = amlfs_softmax_ce(f, y, 2, C, loss, grad);
    CHECK(isinf(m) && m > 0 && isfinite(loss[0]) && isfinite(grad[C + 1]),
          "-inf target logit: mean %g, grad %g", m, (double)grad[C + 1]);
    f[C + 1] = -1;
    /* A non-target at -inf is a zero term: finite loss. */
    f[0] = -INFINITY;
    CHECK(isfinite(amlfs_softmax_ce(f, y, 2, C, loss, grad)) && grad[0] == 0.0f,
          "-inf non-target logit: loss %g grad %g", loss[0], (double)grad[0]);
    f[0] = 1;

    /* Logit gaps from 10 to 3e38 (every exponent the float32 exp's range reduction can
     * meet): loss log(1 + e^-gap), to float32 precision, terms below e^-87 flushed. */
    for (double gap = 10.0; gap < 3e38; gap *= 1.7) {
        float two[2] = {0.0f, (float)-gap};
        int32_t first = 0;
        CHECK_CLOSE(amlfs_softmax_ce(two, &first, 1, 2, NULL, NULL), log1p(exp(two[1])), 1e-37,
                    1e-6, "logit gap");
    }

    /* Out-of-range targets, bad gamma: NaN, no crash. */
    int32_t bad[2] = {C, -1};
    CHECK(isnan(amlfs_softmax_ce(f, bad, 2, C, loss, grad)) && isnan(loss[0]) && isnan(grad[0]),
          "out-of-range target");
    CHECK(isnan(amlfs_focal_loss(f, y, 2, C, -1.0, loss, grad)) && isnan(grad[0]),
          "negative gamma");
    CHECK(isnan(amlfs_focal_loss(f, y, 2, C, NAN, NULL, NULL)), "NaN gamma");
    CHECK(isnan(amlfs_softmax_ce(f, y, 0, C, NULL, NULL)), "empty batch");

    /* A target that wins by 40: loss ~ 3 e^-40 ~ 1.3e-17, kept to float32 precision. */
    float conf[C] = {0, -1, 40, -2};
    double want = log1p(exp(-40.0) + exp(-41.0) + exp(-42.0));
    double got = amlfs_softmax_ce(conf, &y[0], 1, C, NULL, NULL);
    CHECK_CLOSE(got, want, 0, 1e-6, "confident sample's loss");

    /* Margin heads: zero feature, zero class weight, NaN, invalid margins. */
    float x[2 * D] = {0, 0, 0, 1, 2, -1};
    float w[C * D] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1};
    float dx[2 * D], dw[C * D];
    for (int kind = 0; kind < 4; kind++) {
        amlfs_margin mg = amlfs_margin_default((amlfs_margin_kind)kind);
        double mean = amlfs_margin_loss(&mg, x, w, y, 2, D, C, loss, dx, dw);
        int finite = isfinite(mean);
        for (int i = 0; i < 2 * D; i++) finite &= isfinite(dx[i]);
        for (int i = 0; i < C * D; i++) finite &= isfinite(dw[i]);
        CHECK(finite, "margin kind %d: zero feature and zero class weight: mean %g", kind, mean);
        if (kind == AMLFS_MARGIN_COSFACE) { /* x = 0: every cosine 0, f = (0, 0, -s m, 0) */
            double e = exp(mg.s * mg.m);
            CHECK_CLOSE(loss[0], log1p(3.0 * e), 1e-12, 1e-12, "CosFace at x = 0");
        }
        x[4] = NAN;
        CHECK(isnan(amlfs_margin_loss(&mg, x, w, y, 2, D, C, loss, dx, dw)) && isnan(loss[1]),
              "margin kind %d: NaN feature", kind);
        x[4] = INFINITY;
        CHECK(!isfinite(amlfs_margin_loss(&mg, x, w, y, 2, D, C, loss, NULL, NULL)),
              "margin kind %d: inf feature", kind);
        x[4] = 2;
        CHECK(isnan(amlfs_margin_loss(&mg, x, w, bad, 2, D, C, loss, dx, dw)) && isnan(dw[0]),
              "margin kind %d: out-of-range target", kind);
    }
    amlfs_margin odd = {AMLFS_MARGIN_SPHEREFACE, 2.5, 1.0};
    CHECK(isnan(amlfs_margin_loss(&odd, x, w, y, 2, D, C, loss, dx, dw)) && isnan(dx[0]),
          "SphereFace m = 2.5");
    amlfs_margin unknown = amlfs_margin_default((amlfs_margin_kind)7);
    CHECK(isnan(amlfs_margin_loss(&unknown, x, w, y, 2, D, C, NULL, NULL, NULL)),
          "unknown margin kind");

    /* ArcFace with x parallel to its class weight (theta = 0): a finite gradient. */
    amlfs_margin arc = amlfs_margin_default(AMLFS_MARGIN_ARCFACE);
    float xa[D] = {0, 2, 0};
    int32_t ya = 1;
    amlfs_margin_loss(&arc, xa, w, &ya, 1, D, C, loss, dx, dw);
    int finite = isfinite(loss[0]);
    for (int i = 0; i < D; i++) finite &= isfinite(dx[i]);
    CHECK(finite, "ArcFace at theta = 0: loss %g", loss[0]);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own messages say what is missing */
    open_fixture();
    test_logit_case("/ce/small", 0);
    test_logit_case("/ce/wide", 0);
    test_logit_case("/ce/extreme", 0);
    test_logit_case("/focal/g2", 1);
    test_logit_case("/focal/g05", 1);
    test_logit_finite_differences();
    const char *heads[] = {"lsoftmax", "sphereface", "cosface", "arcface"};
    for (int h = 0; h < 4; h++) test_margin_case(heads[h]);
    test_large_batch();
    test_margin_threads();
    test_degenerate();
    H5Fclose(fixture);
    return check_done("test_classic");
}
