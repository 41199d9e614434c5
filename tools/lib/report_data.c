/* report_data.c: the data the report's plots draw (*.dat, gnuplot's whitespace columns;
 * "index" blocks separated by two blank lines). The transforms and the gradient weight
 * come from the loss kernel itself, as training computes them.
 * Depends on: report_out (report.h), the kernels (amlfs_kernels.h), run, tool. */
#include "report.h"
#include "amlfs_kernels.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_POINTS 2000       /* p_y grid of weight.png: k / WEIGHT_POINTS, k = 1.. */
#define COSINE_WEIGHT_SCALE 64.0 /* s of the cosine-space weight grid: spans p_y in (0,1] */

/* The piece of a transform on [lo, hi] with m intervals that x falls in (DESIGN.md 1). */
static int piece_of(double x, double lo, double hi, int m)
{
    double xc = x < lo ? lo : (x > hi ? hi : x);
    int k = (int)((xc - lo) / (hi - lo) * m);
    return k < m - 1 ? k : m - 1;
}

void amlfs_report_mu_dat(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "mu.dat");
    int m = run->intervals;
    fprintf(o.f, "# epoch");
    for (int g = 0; g < 4; g++)
        for (int k = 0; k < m; k++)
            fprintf(o.f, " %s_%d", amlfs_report_group(g), k);
    fputc('\n', o.f);
    for (int k = 0; k < run->npolicies; k++) {
        fprintf(o.f, "%d", k + 1);
        for (int j = 0; j < 4 * m; j++)
            fprintf(o.f, " %.10g", run->policy[k].mu[j]);
        fputc('\n', o.f);
    }
    amlfs_report_close(&o);
}

/* transforms.dat: index 0 t, index 1 tau; columns x, final, mu_1. Each piece is a line
 * segment: its two ends (just inside, so each belongs to its own piece) and a blank
 * line, so gnuplot draws the jumps between free biases as gaps. */
void amlfs_report_transforms_dat(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int m = run->intervals;
    double *theta_fin = amlfs_report_theta_of(rep, last, last->mu),
           *theta_ini = amlfs_report_theta_of(rep, last, last->mu_init);
    amlfs_loss_spec fin = {.space = run->space, .intervals = m,
                           .theta = theta_fin, .scale = 1.0};
    amlfs_loss_spec ini = {.space = run->space, .intervals = m,
                           .theta = theta_ini, .scale = 1.0};
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "transforms.dat");
    fprintf(o.f, "# the transforms at the final mu (policy of epoch %d) and at mu_1\n",
            run->npolicies);
    for (int which = 0; which < 2; which++) {
        double lo = which ? 0.0 : amlfs_report_t_lo(rep), hi = 1.0, h = (hi - lo) / m;
        fprintf(o.f, "%s# index %d: x %s_final %s_mu1\n", which ? "\n\n" : "", which,
                which ? "tau" : "t", which ? "tau" : "t");
        for (int k = 0; k < m; k++) {
            double ends[2] = {k ? lo + k * h + 1e-12 : lo,
                              k < m - 1 ? lo + (k + 1) * h - 1e-12 : hi};
            for (int j = 0; j < 2; j++) {
                double x = ends[j];
                double vf = which ? amlfs_loss_tau(&fin, x) : amlfs_loss_t(&fin, x);
                double vi = which ? amlfs_loss_tau(&ini, x) : amlfs_loss_t(&ini, x);
                fprintf(o.f, "%.10g %.10g %.10g\n", x, vf, vi);
            }
            fputc('\n', o.f);
        }
    }
    free(theta_fin);
    free(theta_ini);
    amlfs_report_close(&o);
}

/* One curve of weight.dat: w = -p_y dL/dp_y from amlfs_searchable_loss, the function
 * training calls, on two-class inputs chosen to give each p_y of the grid.
 * prob space: logits (log(p/(1-p)), 0), target 0.
 * cosine space: w depends on p_y = softmax(s t(cos_y), s cos_j)_y through tau alone, so
 * t is set to the identity and the cosines (logit(p)/s, 0) give each p_y; t's part, where
 * a sample sits on this axis, is what transforms.png shows.
 * A blank line wherever the pieces in use or a clamp change: the biases are free, so the
 * weight jumps there, and gnuplot leaves a gap. */
static void weight_curve(FILE *f, amlfs_report *rep, const double *theta)
{
    const amlfs_run *run = &rep->run;
    int m = run->intervals, n = WEIGHT_POINTS, cosine = run->space == AMLFS_SPACE_COSINE;
    double *th = amlfs_zalloc((size_t)(4 * m), sizeof(double));
    memcpy(th, theta, sizeof(double) * (size_t)(4 * m));
    if (cosine)
        for (int k = 0; k < m; k++) {
            th[k] = 1.0;
            th[m + k] = 0.0;
        }
    amlfs_loss_spec spec = {.space = run->space, .intervals = m,
                            .theta = th, .scale = cosine ? COSINE_WEIGHT_SCALE : 1.0};
    float *in = amlfs_zalloc((size_t)n * 2, sizeof(float));
    int32_t *y = amlfs_zalloc((size_t)n, sizeof(int32_t));
    double *p = amlfs_zalloc((size_t)n, sizeof(double));
    double *w = amlfs_zalloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        double q = (double)(i + 1) / n;
        /* logit 40 makes p_y = 1 to double precision */
        double z = q < 1.0 ? log(q) - log1p(-q) : 40.0;
        float v = cosine ? (float)fmax(-1.0, fmin(1.0, z / COSINE_WEIGHT_SCALE)) : (float)z;
        in[2 * i] = v;
        p[i] = 1.0 / (1.0 + exp(-(double)v * spec.scale)); /* the p_y of the float input */
    }
    amlfs_searchable_loss(&spec, in, y, n, 2, NULL, NULL, w, NULL);
    long prev = -1;
    for (int i = 0; i < n; i++) {
        /* the pieces and clamps in use at p: t's piece and output clamp, tau's piece and
         * output clamp (DESIGN.md 1) */
        double u = cosine ? p[i] : amlfs_loss_t(&spec, p[i]);
        int t_clamp = cosine ? 0 : (u < AMLFS_LOSS_EPS ? 1 : (u > 1.0 ? 2 : 0));
        double uc = t_clamp == 1 ? AMLFS_LOSS_EPS : (t_clamp == 2 ? 1.0 : u);
        int tau_clamp = amlfs_loss_tau(&spec, uc) < AMLFS_LOSS_EPS;
        long key = (((long)(cosine ? 0 : piece_of(p[i], 0.0, 1.0, m)) * m +
                     piece_of(uc, 0.0, 1.0, m)) * 3 + t_clamp) * 2 + tau_clamp;
        if (prev >= 0 && key != prev)
            fputc('\n', f);
        prev = key;
        if (isfinite(w[i])) {
            fprintf(f, "%.10g %.10g\n", p[i], w[i]);
            rep->weight_min = fmin(rep->weight_min, w[i]);
            rep->weight_max = fmax(rep->weight_max, w[i]);
        } else { /* never expected of finite theta: a gap, not a wrong point */
            fputc('\n', f);
            prev = -1;
        }
    }
    free(th);
    free(in);
    free(y);
    free(p);
    free(w);
}

void amlfs_report_weight_dat(amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    rep->weight_min = INFINITY;
    rep->weight_max = -INFINITY;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "weight.dat");
    fprintf(o.f, "# -p_y dL/dp_y, the gradient weight relative to cross-entropy\n"
                 "# index 0: p_y w at the final mu (policy of epoch %d)\n", run->npolicies);
    double *theta = amlfs_report_theta_of(rep, last, last->mu);
    weight_curve(o.f, rep, theta);
    free(theta);
    fprintf(o.f, "\n\n# index 1: p_y w at mu_1\n");
    if (amlfs_report_draws_mu_init(rep)) {
        theta = amlfs_report_theta_of(rep, last, last->mu_init);
        weight_curve(o.f, rep, theta);
        free(theta);
    }
    else /* the identity (cross-entropy's 1) or the final mu: not drawn again */
        fprintf(o.f, "# (mu_1 is the identity or the final mu: not drawn)\nNaN NaN\n");
    amlfs_report_close(&o);
}

/* Where sample i of b is drawn, around its epoch's tic: spread so that equal rewards
 * stay visible as separate points. */
static double sample_x(int e, int64_t i, int64_t b)
{
    return b > 1 ? e + 0.3 * ((double)i / (double)(b - 1) - 0.5) : e;
}

/* rewards.dat: index 0 every finite reward (epoch sample reward x), index 1 per epoch
 * (epoch mean best_reward best_x; rows of epochs without a finite reward left out). */
void amlfs_report_rewards_dat(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "rewards.dat");
    fprintf(o.f, "# index 0: epoch sample reward x (finite rewards only; x where drawn)\n");
    int any = 0;
    for (int e = 1; e <= run->nepochs; e++) {
        const amlfs_rewards *r = &run->epoch[e - 1].r;
        for (int64_t i = 0; i < r->samples; i++)
            if (!r->excluded[i]) {
                fprintf(o.f, "%d %lld %.10g %.6g\n", e, (long long)i, r->raw[i],
                        sample_x(e, i, r->samples));
                any = 1;
            }
    }
    if (!any)
        fprintf(o.f, "0 0 NaN NaN\n"); /* gnuplot needs a row to read an index */
    fprintf(o.f, "\n\n# index 1: epoch mean best_reward best_x\n");
    any = 0;
    for (int e = 1; e <= run->nepochs; e++) {
        const amlfs_run_epoch *ep = &run->epoch[e - 1];
        if (ep->r.best >= 0) {
            fprintf(o.f, "%d %.10g %.10g %.6g\n", e, ep->mean, ep->r.best_reward,
                    sample_x(e, ep->r.best, ep->r.samples));
            any = 1;
        }
    }
    if (!any)
        fprintf(o.f, "0 NaN NaN NaN\n");
    amlfs_report_close(&o);
}

void amlfs_report_control_dat(const amlfs_report *rep, const amlfs_report *ctl)
{
    const amlfs_run *run = &rep->run, *c = &ctl->run;
    int n = run->nepochs > c->nepochs ? run->nepochs : c->nepochs;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "control.dat");
    fprintf(o.f, "# epoch run_best_reward control_best_reward (NaN: none)\n");
    for (int e = 1; e <= n; e++)
        fprintf(o.f, "%d %.10g %.10g\n", e, amlfs_run_best_of(run, e), amlfs_run_best_of(c, e));
    if (n == 0)
        fprintf(o.f, "0 NaN NaN\n");
    amlfs_report_close(&o);
}
