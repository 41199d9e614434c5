/* test_exact: rules that a tolerance would hide, checked exactly.
 *   - max pooling with tied windows: the whole gradient of a window goes to its first
 *     maximum in row-major order (PyTorch's rule), in the reference and on the fast path
 *     (the plan the models run), with integer-valued gradients so that sums are exact;
 *   - the gradient of a confident sample (logit gap 30: p about 1e-13 for the others,
 *     1 - p_y about 1e-12) and of a confidently wrong one, of the searchable loss at the
 *     identity and of softmax cross-entropy, to 1e-6 relative per element, against a
 *     float64 computation written out here (the small terms summed directly, never as
 *     1 - p_y). */
#include "check.h"
#include "amlfs_kernels.h"
#include "amlfs_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tied max pooling ------------------------------------------------------------ */

/* din of max pooling written out: each output's dout to the first maximum of its window
 * (padding never selected) */
static void literal_pool_backward(float *din, const float *dout, const float *in,
                                  const amlfs_pool_shape *s)
{
    int oh = amlfs_pool_out_h(s), ow = amlfs_pool_out_w(s);
    memset(din, 0, sizeof(float) * s->n * s->c * s->h * s->w);
    for (int nc = 0; nc < s->n * s->c; nc++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int best = -1;
                for (int a = i * s->stride - s->pad; a < i * s->stride - s->pad + s->kernel; a++)
                    for (int b = j * s->stride - s->pad; b < j * s->stride - s->pad + s->kernel;
                         b++) {
                        if (a < 0 || a >= s->h || b < 0 || b >= s->w)
                            continue;
                        int k = (nc * s->h + a) * s->w + b;
                        if (best < 0 || in[k] > in[best])
                            best = k;
                    }
                din[best] += dout[(nc * oh + i) * ow + j];
            }
}

static int ties_in(const float *in, const amlfs_pool_shape *s)
{
    int oh = amlfs_pool_out_h(s), ow = amlfs_pool_out_w(s), tied = 0;
    for (int nc = 0; nc < s->n * s->c; nc++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float top = -INFINITY;
                int count = 0;
                for (int a = i * s->stride - s->pad; a < i * s->stride - s->pad + s->kernel; a++)
                    for (int b = j * s->stride - s->pad; b < j * s->stride - s->pad + s->kernel;
                         b++) {
                        if (a < 0 || a >= s->h || b < 0 || b >= s->w)
                            continue;
                        float v = in[(nc * s->h + a) * s->w + b];
                        if (v > top) { top = v; count = 1; }
                        else if (v == top) count++;
                    }
                tied += count > 1;
            }
    return tied;
}

static void check_pool(amlfs_context *ctx, const char *name, amlfs_pool_shape s)
{
    size_t n_in = (size_t)s.n * s.c * s.h * s.w,
           n_out = (size_t)s.n * s.c * amlfs_pool_out_h(&s) * amlfs_pool_out_w(&s);
    float *in = calloc(n_in, sizeof(float)), *dout = calloc(n_out, sizeof(float));
    float *want = calloc(n_in, sizeof(float)), *ref = calloc(n_in, sizeof(float));
    float *fast = calloc(n_in, sizeof(float)), *out = calloc(n_out, sizeof(float));
    /* few distinct values: most windows hold a tie, some at their top */
    for (size_t k = 0; k < n_in; k++)
        in[k] = (float)(((uint32_t)k * 2654435761u >> 9) % 3) * 0.5f - 0.5f;
    for (size_t k = 0; k < n_out; k++)
        dout[k] = (float)(1 + (k * 13) % 29);
    int tied = ties_in(in, &s);
    CHECK(tied > (int)n_out / 4, "%s: only %d of %zu windows tied", name, tied, n_out);
    literal_pool_backward(want, dout, in, &s);
    ref_pool_backward(ref, dout, in, &s);
    size_t bad = 0;
    for (size_t k = 0; k < n_in; k++)
        bad += ref[k] != want[k];
    CHECK(bad == 0, "%s: the reference routes %zu gradients elsewhere than the first maximum",
          name, bad);
    char err[256] = "";
    amlfs_pool_plan *plan = amlfs_pool_plan_create(ctx, &s, err, sizeof err);
    CHECK(plan != NULL, "%s: plan: %s", name, err);
    if (plan) {
        size_t ws_bytes = amlfs_pool_workspace_bytes(plan);
        void *ws = ws_bytes ? amlfs_alloc(ctx, ws_bytes) : NULL;
        amlfs_pool_forward(plan, out, in, ws);
        amlfs_pool_backward(plan, fast, dout, in, out, ws);
        size_t fbad = 0;
        for (size_t k = 0; k < n_in; k++)
            fbad += fast[k] != want[k];
        CHECK(fbad == 0, "%s: the fast path routes %zu gradients elsewhere than the first "
              "maximum", name, fbad);
        amlfs_free(ctx, ws);
        amlfs_pool_plan_destroy(plan);
    }
    printf("  %s: %d of %zu windows tied, gradients to the first maximum\n", name, tied, n_out);
    free(in), free(dout), free(want), free(ref), free(fast), free(out);
}

/* ---- a confident sample's gradient ----------------------------------------------- */

/* float64 softmax cross-entropy of one row written out: with m the largest logit,
 * e_j = exp(f_j - m), S = sum e_j; p_j = e_j / S; loss = log S - (f_y - m);
 * dL/df_y = -(sum over j != y of e_j) / S, summed directly (1 - p_y would cancel). */
static void literal_ce(const double *f, int c, int y, double *loss, double *grad)
{
    double m = f[0];
    for (int j = 1; j < c; j++)
        m = fmax(m, f[j]);
    double s = 0, others = 0;
    for (int j = 0; j < c; j++) {
        s += exp(f[j] - m);
        if (j != y)
            others += exp(f[j] - m);
    }
    *loss = f[y] == m ? log1p(others / exp(f[y] - m)) : log(s) - (f[y] - m);
    for (int j = 0; j < c; j++)
        grad[j] = j == y ? -others / s : exp(f[j] - m) / s;
}

static void check_confident(void)
{
    enum { N = 3, C = 10 };
    /* row 0: the target 30 above every other logit; row 1: the target 30 below the
     * largest; row 2: the target 30 above, the others spread by a few units */
    float logits[N * C];
    int32_t y[N] = {3, 7, 0};
    for (int j = 0; j < C; j++) {
        logits[0 * C + j] = j == 3 ? 31.0f : 1.0f;
        logits[1 * C + j] = j == 2 ? 30.5f : 0.5f;
        logits[2 * C + j] = j == 0 ? 30.0f : -0.25f * (float)j;
    }
    double theta[24] = {0};
    for (int j = 0; j < 6; j++)
        theta[j] = theta[12 + j] = 1.0;
    amlfs_loss_spec spec = {.space = AMLFS_SPACE_PROB, .intervals = 6,
                            .theta = theta, .scale = 0};
    double loss[N], ce_loss[N];
    float grad[N * C], ce_grad[N * C];
    amlfs_searchable_loss(&spec, logits, y, N, C, loss, grad, NULL, NULL);
    amlfs_softmax_ce(logits, y, N, C, ce_loss, ce_grad);
    for (int i = 0; i < N; i++) {
        double f[C], want_loss, want[C];
        for (int j = 0; j < C; j++)
            f[j] = logits[i * C + j];
        literal_ce(f, C, y[i], &want_loss, want);
        char what[96];
        snprintf(what, sizeof what, "row %d: searchable loss at the identity", i);
        CHECK_CLOSE(loss[i], want_loss, 0, 1e-6, what);
        snprintf(what, sizeof what, "row %d: cross-entropy", i);
        CHECK_CLOSE(ce_loss[i], want_loss, 0, 1e-6, what);
        double worst = 0;
        for (int j = 0; j < C; j++) {
            double w = want[j] / N; /* the gradient of the mean */
            worst = fmax(worst, fabs(grad[i * C + j] - w) / fabs(w));
            snprintf(what, sizeof what, "row %d: searchable d/df_%d", i, j);
            CHECK_CLOSE(grad[i * C + j], w, 0, 1e-6, what);
            snprintf(what, sizeof what, "row %d: cross-entropy d/df_%d", i, j);
            CHECK_CLOSE(ce_grad[i * C + j], w, 0, 1e-6, what);
        }
        printf("  row %d: loss %.6g, d/df_y %.6g, smallest |d/df| %.3g; worst relative error "
               "%.2g\n", i, want_loss, want[y[i]] / N, fabs(want[(y[i] + 1) % C]) / N, worst);
    }
}

int main(void)
{
    char err[256];
    amlfs_device cpu = {AMLFS_DEVICE_CPU, 0, 0};
    amlfs_context *ctx = amlfs_context_create(cpu, 1, err, sizeof err);
    CHECK(ctx != NULL, "context: %s", err);
    if (ctx) {
        /* small-cnn's pooling (2, stride 2) and an overlapping, padded window */
        check_pool(ctx, "max pool 2/2", (amlfs_pool_shape){2, 3, 8, 8, 2, 2, 0, AMLFS_POOL_MAX,
                                                            0, AMLFS_LAYOUT_PLAIN});
        check_pool(ctx, "max pool 3/2 pad 1", (amlfs_pool_shape){2, 3, 9, 9, 3, 2, 1,
                                                                  AMLFS_POOL_MAX, 0,
                                                                  AMLFS_LAYOUT_PLAIN});
        amlfs_context_destroy(ctx);
    }
    check_confident();
    return check_done("test_exact");
}
