/* report_plots.c: the report's gnuplot scripts, share/report/NAME.gp filled with the
 * run's numbers: the ranges, the tics, the curves there are. The scripts name their data
 * by relative paths, so `cd RUN/report && gnuplot mu.gp` redraws a plot by hand.
 * Depends on: report_out (report.h), template, run. */
#include "report.h"

#include <math.h>
#include <string.h>

/* A y range around [lo, hi] with a margin; a flat series gets a band around it. */
static void padded_range(double lo, double hi, double *out_lo, double *out_hi)
{
    double pad = hi - lo > 1e-12 ? 0.08 * (hi - lo) : fmax(0.05 * fabs(hi), 0.01);
    *out_lo = lo - pad;
    *out_hi = hi + pad;
}

/* Integer tics over 1..n, at most about 15 of them. */
static int tic_step(int n) { return n > 15 ? (n + 14) / 15 : 1; }

/* The values of head.gp, the partial every script starts with. */
static amlfs_tmpl *script(const char *name, int width, int height)
{
    amlfs_tmpl *t = amlfs_tmpl_new();
    amlfs_tmpl_set(t, "script", "%s", name);
    amlfs_tmpl_set(t, "png", "%.*s.png", (int)(strlen(name) - 3), name);
    amlfs_tmpl_set(t, "width", "%d", width);
    amlfs_tmpl_set(t, "height", "%d", height);
    return t;
}

static void write_script(const amlfs_report *rep, const char *name, amlfs_tmpl *t)
{
    amlfs_report_fill(rep, name, t);
    amlfs_tmpl_free(t);
}

void amlfs_report_mu_gp(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    const amlfs_policy *p1 = &run->policy[0];
    int m = run->intervals, np = run->npolicies;
    amlfs_tmpl *t = script("mu.gp", 1400, 950);
    amlfs_tmpl_set(t, "space", "%s", amlfs_space_names[p1->space]);
    amlfs_tmpl_set(t, "m", "%d", m);
    amlfs_tmpl_set(t, "sigma", "%g", p1->sigma);
    amlfs_tmpl_set(t, "mode", "%s", amlfs_mode_names[p1->mode]);
    amlfs_tmpl_set(t, "xmax", "%g", np + 0.5);
    amlfs_tmpl_set(t, "xtics", "%d", tic_step(np));
    amlfs_tmpl_flag(t, "key", m <= 16); /* the keys of the intervals fit beside the panels */
    for (int g = 0; g < 4; g++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < np; k++)
            for (int j = g * m; j < (g + 1) * m; j++) {
                lo = fmin(lo, run->policy[k].mu[j]);
                hi = fmax(hi, run->policy[k].mu[j]);
            }
        double ylo, yhi, dlo = g < 2 ? amlfs_report_t_lo(rep) : 0.0, h = (1.0 - dlo) / m;
        padded_range(lo, hi, &ylo, &yhi);
        amlfs_tmpl *panel = amlfs_tmpl_item(t, amlfs_report_group(g));
        amlfs_tmpl_set(panel, "ylo", "%.10g", ylo);
        amlfs_tmpl_set(panel, "yhi", "%.10g", yhi);
        for (int k = 0; k < m; k++) {
            amlfs_tmpl *line = amlfs_tmpl_item(panel, "interval");
            amlfs_tmpl_flag(line, "first", k == 0);
            amlfs_tmpl_set(line, "column", "%d", 2 + g * m + k);
            amlfs_tmpl_set(line, "label", "[%.3g, %.3g%s", dlo + k * h,
                           k == m - 1 ? 1.0 : dlo + (k + 1) * h, k == m - 1 ? "]" : ")");
        }
    }
    write_script(rep, "mu.gp", t);
}

void amlfs_report_transforms_gp(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    amlfs_tmpl *t = script("transforms.gp", 1300, 560);
    amlfs_tmpl_set(t, "epoch", "%d", run->npolicies);
    amlfs_tmpl_set(t, "space", "%s", amlfs_space_names[last->space]);
    amlfs_tmpl_set(t, "m", "%lld", (long long)last->intervals);
    amlfs_tmpl_set(t, "init", "%s", amlfs_init_names[last->init]);
    amlfs_tmpl_flag(t, "cosine", run->space == AMLFS_SPACE_COSINE);
    amlfs_tmpl_flag(t, "mu1", amlfs_report_draws_mu_init(rep));
    amlfs_tmpl_set(amlfs_tmpl_item(t, "t_panel"), "index", "0");
    amlfs_tmpl_set(amlfs_tmpl_item(t, "tau_panel"), "index", "1");
    write_script(rep, "transforms.gp", t);
}

void amlfs_report_weight_gp(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    /* the range holds 0, 1 and the curves, but a pole where tau nears 0 is cut */
    double lo = fmax(fmin(0.0, rep->weight_min), -3.0), hi = fmin(fmax(1.5, rep->weight_max), 4.0);
    amlfs_tmpl *t = script("weight.gp", 1000, 650);
    amlfs_tmpl_set(t, "space", "%s", amlfs_space_names[last->space]);
    amlfs_tmpl_set(t, "epoch", "%d", run->npolicies);
    amlfs_tmpl_set(t, "init", "%s", amlfs_init_names[last->init]);
    amlfs_tmpl_set(t, "ylo", "%.6g", lo - 0.05 * (hi - lo));
    amlfs_tmpl_set(t, "yhi", "%.6g", hi + 0.05 * (hi - lo));
    amlfs_tmpl_flag(t, "cosine", run->space == AMLFS_SPACE_COSINE);
    amlfs_tmpl_flag(t, "mu1", amlfs_report_draws_mu_init(rep));
    write_script(rep, "weight.gp", t);
}

void amlfs_report_rewards_gp(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_tmpl *t = script("rewards.gp", 1100, 620);
    amlfs_metric metric = run->nepochs ? run->epoch[0].r.metric : METRIC_TOP1;
    double lo = INFINITY, hi = -INFINITY, ylo = 0, yhi = 0;
    for (int e = 0; e < run->nepochs; e++)
        if (run->epoch[e].r.best >= 0) {
            lo = fmin(lo, run->epoch[e].min);
            hi = fmax(hi, run->epoch[e].max);
        }
    amlfs_tmpl_flag(t, "rewarded", lo <= hi);
    if (lo <= hi)
        padded_range(lo, hi, &ylo, &yhi);
    amlfs_tmpl_set(t, "metric", "%s", amlfs_metric_names[metric]);
    amlfs_tmpl_flag(t, "loss", metric == METRIC_LOSS);
    amlfs_tmpl_flag(t, "top5", metric == METRIC_TOP5);
    amlfs_tmpl_flag(t, "top1", metric == METRIC_TOP1);
    amlfs_tmpl_flag(t, "accuracy", metric == METRIC_ACCURACY);
    amlfs_tmpl_flag(t, "rank1", metric == METRIC_RANK1);
    amlfs_tmpl_flag(t, "map", metric == METRIC_MAP);
    amlfs_tmpl_set(t, "nepochs", "%d", run->nepochs);
    amlfs_tmpl_flag(t, "plural", run->nepochs != 1);
    amlfs_tmpl_set(t, "xmax", "%g", run->nepochs + 0.5);
    amlfs_tmpl_set(t, "xtics", "%d", tic_step(run->nepochs));
    amlfs_tmpl_set(t, "ylo", "%.10g", ylo);
    amlfs_tmpl_set(t, "yhi", "%.10g", yhi);
    amlfs_tmpl_flag(t, "excluded", 0);
    for (int e = 1; e <= run->nepochs; e++)
        if (run->epoch[e - 1].excluded) {
            amlfs_tmpl *x = amlfs_tmpl_item(t, "excluded");
            amlfs_tmpl_set(x, "count", "%d", run->epoch[e - 1].excluded);
            amlfs_tmpl_set(x, "epoch", "%d", e);
        }
    write_script(rep, "rewards.gp", t);
}

void amlfs_report_control_gp(const amlfs_report *rep, const amlfs_report *ctl)
{
    const amlfs_run *run = &rep->run, *c = &ctl->run;
    int n = run->nepochs > c->nepochs ? run->nepochs : c->nepochs;
    double lo = INFINITY, hi = -INFINITY, ylo = 0, yhi = 0;
    for (int e = 1; e <= n; e++) {
        double v[2] = {amlfs_run_best_of(run, e), amlfs_run_best_of(c, e)};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                lo = fmin(lo, v[k]);
                hi = fmax(hi, v[k]);
            }
    }
    amlfs_tmpl *t = script("control.gp", 1100, 560);
    amlfs_tmpl_flag(t, "rewarded", lo <= hi);
    if (lo <= hi)
        padded_range(lo, hi, &ylo, &yhi);
    amlfs_tmpl_set(t, "metric", "%s",
                   amlfs_metric_names[run->nepochs ? run->epoch[0].r.metric : METRIC_TOP1]);
    amlfs_tmpl_set(t, "xmax", "%g", n + 0.5);
    amlfs_tmpl_set(t, "xtics", "%d", tic_step(n));
    amlfs_tmpl_set(t, "ylo", "%.10g", ylo);
    amlfs_tmpl_set(t, "yhi", "%.10g", yhi);
    amlfs_tmpl_set(t, "run_mode", "%s", amlfs_mode_names[run->policy[0].mode]);
    amlfs_tmpl_set(t, "control_mode", "%s", amlfs_mode_names[c->policy[0].mode]);
    write_script(rep, "control.gp", t);
}
