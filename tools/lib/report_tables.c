/* report_tables.c: the report's CSV tables (RFC 4180), for scripts and spreadsheets.
 * Depends on: report_out (report.h), run. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
static void csv_text(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* A number in the fewest digits (15 to 17) that read back to the same double, empty
 * when NaN: 0.1 stays 0.1, and every value survives the table exactly. */
static void csv_num(FILE *f, double v)
{
    if (isnan(v))
        return;
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

void amlfs_report_epochs_csv(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "epochs.csv");
    fprintf(o.f, "epoch,samples,finite,reward_min,reward_mean,reward_max,best,best_reward,"
                 "update,mu_step_l2");
    for (int p = 0; p < rep->nphases; p++)
        fprintf(o.f, ",seconds_%s", rep->phase[p]);
    fputc('\n', o.f);
    for (int e = 1; e <= run->nepochs; e++) {
        const amlfs_run_epoch *ep = &run->epoch[e - 1];
        const amlfs_report_times *tm = &rep->times[e - 1];
        fprintf(o.f, "%d,%lld,%lld,", e, (long long)ep->r.samples, (long long)ep->r.finite);
        csv_num(o.f, ep->min);
        fputc(',', o.f);
        csv_num(o.f, ep->mean);
        fputc(',', o.f);
        csv_num(o.f, ep->max);
        fputc(',', o.f);
        if (ep->r.best >= 0)
            fprintf(o.f, "%lld", (long long)ep->r.best);
        fputc(',', o.f);
        csv_num(o.f, ep->r.best >= 0 ? ep->r.best_reward : NAN);
        fputc(',', o.f);
        csv_text(o.f, amlfs_run_update_of(run, e));
        fputc(',', o.f);
        csv_num(o.f, amlfs_run_mu_step(run, e));
        for (int p = 0; p < rep->nphases; p++) {
            fputc(',', o.f);
            csv_num(o.f, tm->timed[p] ? tm->seconds[p] : NAN);
        }
        fputc('\n', o.f);
    }
    amlfs_report_close(&o);
}

void amlfs_report_mu_csv(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "mu.csv");
    int m = run->intervals;
    fprintf(o.f, "epoch");
    for (int g = 0; g < 4; g++)
        for (int k = 0; k < m; k++)
            fprintf(o.f, ",%s_%d", amlfs_report_group(g), k);
    fputc('\n', o.f);
    for (int k = 0; k < run->npolicies; k++) {
        fprintf(o.f, "%d", k + 1);
        for (int j = 0; j < 4 * m; j++) {
            fputc(',', o.f);
            csv_num(o.f, run->policy[k].mu[j]);
        }
        fputc('\n', o.f);
    }
    amlfs_report_close(&o);
}

void amlfs_report_rewards_csv(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "rewards.csv");
    fprintf(o.f, "epoch,sample,reward,normalized,excluded,is_best\n");
    for (int e = 1; e <= run->nepochs; e++) {
        const amlfs_rewards *r = &run->epoch[e - 1].r;
        for (int64_t i = 0; i < r->samples; i++) {
            fprintf(o.f, "%d,%lld,", e, (long long)i);
            csv_num(o.f, r->excluded[i] ? NAN : r->raw[i]);
            fputc(',', o.f);
            csv_num(o.f, r->normalized[i]);
            fprintf(o.f, ",%d,%d\n", r->excluded[i], i == r->best);
        }
    }
    amlfs_report_close(&o);
}

void amlfs_report_control_csv(const amlfs_report *rep, const amlfs_report *ctl)
{
    const amlfs_run *run = &rep->run, *c = &ctl->run;
    int n = run->nepochs > c->nepochs ? run->nepochs : c->nepochs;
    amlfs_report_out o;
    amlfs_report_open(&o, rep, "control.csv");
    fprintf(o.f, "epoch,run_best_reward,control_best_reward,difference\n");
    for (int e = 1; e <= n; e++) {
        double a = amlfs_run_best_of(run, e), b = amlfs_run_best_of(c, e);
        fprintf(o.f, "%d,", e);
        csv_num(o.f, a);
        fputc(',', o.f);
        csv_num(o.f, b);
        fputc(',', o.f);
        csv_num(o.f, a - b);
        fputc('\n', o.f);
    }
    amlfs_report_close(&o);
}
