/* report_html.c: index.html, share/report/index.html filled with the run's result, its
 * control, its epochs and its config. Every value is escaped here; the page's own HTML
 * is the template's.
 * Depends on: report_out (report.h), template, run, policy (the exclusion codes), tool. */
#include "report.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* name = s escaped for HTML text and attribute values. */
static void set_text(amlfs_tmpl *t, const char *name, const char *s)
{
    char *out = amlfs_zalloc(strlen(s) * 6 + 1, 1), *o = out;
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: *o++ = *s; continue;
        }
        o = stpcpy(o, e);
    }
    amlfs_tmpl_set(t, name, "%s", out);
    free(out);
}

/* A number for a person: %.4g, or an en dash when absent. */
static void set_num(amlfs_tmpl *t, const char *name, double v)
{
    if (isnan(v))
        amlfs_tmpl_set(t, name, "&ndash;");
    else
        amlfs_tmpl_set(t, name, "%.4g", v);
}

static int tested_ok(const amlfs_run *run)
{
    return run->has_final && run->final_status == AMLFS_STATUS_OK;
}

/* The result table: the status, the search's settings, the last epoch, the test. */
static void result_rows(amlfs_tmpl *t, const amlfs_run *run, const amlfs_run *ctl,
                        const char *epochs_planned)
{
    const amlfs_policy *p1 = &run->policy[0], *last = &run->policy[run->npolicies - 1];
    amlfs_tmpl_flag(t, "against", 0);
    if (ctl && tested_ok(run) && tested_ok(ctl)) {
        amlfs_tmpl *a = amlfs_tmpl_item(t, "against");
        double diff = 100.0 * (amlfs_run_headline(run) - amlfs_run_headline(ctl));
        set_text(a, "headline", amlfs_run_headline_name(run));
        amlfs_tmpl_set(a, "run_top1", "%.4f", amlfs_run_headline(run));
        amlfs_tmpl_set(a, "control_top1", "%.4f", amlfs_run_headline(ctl));
        amlfs_tmpl_set(a, "points", "%+.2f", diff);
        amlfs_tmpl_flag(a, "above", diff > 0);
    }
    amlfs_tmpl_flag(t, "finished", run->has_final);
    amlfs_tmpl_flag(t, "stopped", !run->has_final && run->stopped[0]);
    amlfs_tmpl_flag(t, "unfinished", !run->has_final && !run->stopped[0]);
    set_text(t, "reason", run->stopped);
    amlfs_tmpl_set(t, "nepochs", "%d", run->nepochs);
    amlfs_tmpl_flag(t, "planned", epochs_planned != NULL);
    set_text(t, "epochs", epochs_planned ? epochs_planned : "");

    amlfs_tmpl *s = amlfs_tmpl_item(t, "search");
    set_text(s, "mode", amlfs_mode_names[p1->mode]);
    /* a fixed baseline with an exact margin loss: its samples do not train with theta */
    amlfs_tmpl_flag(s, "exact", p1->loss != AMLFS_EXACT_NONE);
    set_text(s, "loss", amlfs_loss_names[p1->loss]);
    set_text(s, "space", amlfs_space_names[p1->space]);
    set_text(s, "form", amlfs_form_names[p1->form]);
    amlfs_tmpl_set(s, "m", "%lld", (long long)p1->intervals);
    amlfs_tmpl_set(s, "sigma", "%g", p1->sigma);
    amlfs_tmpl_set(s, "sigma_intercept", "%g", p1->sigma_intercept);
    amlfs_tmpl_set(s, "lr", "%g", p1->lr);
    set_text(s, "init", amlfs_init_names[p1->init]);
    set_text(s, "sampling", amlfs_sampling_names[p1->sampling]);
    set_text(s, "shaping", amlfs_shaping_names[p1->shaping]);

    amlfs_tmpl_flag(t, "last_epoch", 0);
    if (run->nepochs) {
        const amlfs_run_epoch *ep = &run->epoch[run->nepochs - 1];
        amlfs_tmpl *l = amlfs_tmpl_item(t, "last_epoch");
        amlfs_tmpl_flag(l, "best", ep->r.best >= 0);
        amlfs_tmpl_set(l, "reward", "%.4f", ep->r.best_reward);
        set_text(l, "metric", amlfs_metric_names[ep->r.metric]);
        amlfs_tmpl_set(l, "epoch", "%d", run->nepochs);
        amlfs_tmpl_set(l, "sample", "%lld", (long long)ep->r.best);
        amlfs_tmpl_set(l, "samples", "%lld", (long long)ep->r.samples);
    }
    amlfs_tmpl_flag(t, "test", 0);
    if (run->has_final) {
        amlfs_tmpl *x = amlfs_tmpl_item(t, "test");
        amlfs_tmpl_flag(x, "ok", run->final_status == AMLFS_STATUS_OK);
        set_text(x, "status", amlfs_status_names[run->final_status]);
        amlfs_tmpl_flag(x, "face", run->final_face);
        amlfs_tmpl_flag(x, "reid", run->final_reid);
        amlfs_tmpl_flag(x, "classes", !run->final_face && !run->final_reid);
        amlfs_tmpl_set(x, "map", "%.4f", run->final_map);
        amlfs_tmpl_set(x, "accuracy", "%.4f", run->final_accuracy);
        amlfs_tmpl_set(x, "tar", "%.4f", run->final_tar);
        amlfs_tmpl_set(x, "rank1", "%.4f", run->final_rank1);
        amlfs_tmpl_set(x, "top1", "%.4f", run->final_top1);
        amlfs_tmpl_set(x, "top5", "%.4f", run->final_top5);
        amlfs_tmpl_set(x, "loss", "%.4f", run->final_loss);
        amlfs_tmpl_set(x, "images", "%lld", (long long)run->final_images);
        amlfs_tmpl_set(x, "epoch", "%lld", (long long)run->final_epoch);
    }
    amlfs_tmpl_set(t, "npolicies", "%d", run->npolicies);
    set_text(t, "last_update", last->last_update);
}

/* What the search bought against its control: validation and, when both have it, test. */
static void control_section(amlfs_tmpl *t, const amlfs_run *run, const amlfs_run *ctl)
{
    amlfs_tmpl_flag(t, "control", 0);
    if (!ctl)
        return;
    amlfs_tmpl *c = amlfs_tmpl_item(t, "control");
    set_text(c, "dir", ctl->dir);
    set_text(c, "mode", amlfs_mode_names[ctl->policy[0].mode]);
    amlfs_tmpl_set(c, "nepochs", "%d", ctl->nepochs);
    amlfs_tmpl_flag(c, "plural", ctl->nepochs != 1);
    int e = run->nepochs < ctl->nepochs ? run->nepochs : ctl->nepochs;
    amlfs_tmpl_flag(c, "common", 0);
    if (e > 0) {
        amlfs_tmpl *k = amlfs_tmpl_item(c, "common");
        double a = amlfs_run_best_of(run, e), b = amlfs_run_best_of(ctl, e);
        amlfs_tmpl_set(k, "run_best", "%.4f", a);
        amlfs_tmpl_set(k, "control_best", "%.4f", b);
        amlfs_tmpl_set(k, "difference", "%+.4f", a - b);
        amlfs_tmpl_set(k, "epoch", "%d", e);
        set_text(k, "metric", amlfs_metric_names[run->epoch[0].r.metric]);
    }
    amlfs_tmpl_flag(c, "tested", tested_ok(run) && tested_ok(ctl));
    set_text(c, "headline", amlfs_run_headline_name(run));
    amlfs_tmpl_set(c, "run_top1", "%.4f", amlfs_run_headline(run));
    amlfs_tmpl_set(c, "control_top1", "%.4f", amlfs_run_headline(ctl));
    amlfs_tmpl_set(c, "points", "%+.2f", 100.0 * (amlfs_run_headline(run) - amlfs_run_headline(ctl)));
}

/* The epochs table, with the seconds of the phase "epoch" of logs/times.csv. */
static void epoch_rows(amlfs_tmpl *t, const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    int ph = -1;
    for (int p = 0; p < rep->nphases; p++)
        if (!strcmp(rep->phase[p], "epoch"))
            ph = p;
    amlfs_tmpl_flag(t, "has_epochs", run->nepochs > 0);
    amlfs_tmpl_flag(t, "epoch", 0);
    for (int e = 1; e <= run->nepochs; e++) {
        const amlfs_run_epoch *ep = &run->epoch[e - 1];
        const amlfs_report_times *tm = &rep->times[e - 1];
        amlfs_tmpl *row = amlfs_tmpl_item(t, "epoch");
        amlfs_tmpl_set(row, "e", "%d", e);
        amlfs_tmpl_set(row, "samples", "%lld", (long long)ep->r.samples);
        amlfs_tmpl_set(row, "finite", "%lld", (long long)ep->r.finite);
        set_num(row, "min", ep->min);
        set_num(row, "mean", ep->mean);
        set_num(row, "max", ep->max);
        if (ep->r.best >= 0)
            amlfs_tmpl_set(row, "best", "%lld", (long long)ep->r.best);
        else
            amlfs_tmpl_set(row, "best", "&ndash;");
        set_num(row, "best_reward", ep->r.best >= 0 ? ep->r.best_reward : NAN);
        set_text(row, "update", amlfs_run_update_of(run, e));
        set_num(row, "mu_step", amlfs_run_mu_step(run, e));
        set_num(row, "seconds", ph >= 0 && tm->timed[ph] ? tm->seconds[ph] : NAN);
    }
}

static void config_rows(amlfs_tmpl *t, const amlfs_report *rep)
{
    amlfs_tmpl_flag(t, "has_config", rep->nconfig > 0);
    amlfs_tmpl_flag(t, "setting", 0);
    for (int i = 0; i < rep->nconfig; i++) {
        amlfs_tmpl *s = amlfs_tmpl_item(t, "setting");
        set_text(s, "key", rep->config[i].key);
        set_text(s, "value", rep->config[i].value);
    }
}

void amlfs_report_index(const amlfs_report *rep, const amlfs_report *ctl,
                        const char *epochs_planned)
{
    const amlfs_run *run = &rep->run;
    amlfs_tmpl *t = amlfs_tmpl_new();
    set_text(t, "dir", run->dir);
    result_rows(t, run, ctl ? &ctl->run : NULL, epochs_planned);
    control_section(t, run, ctl ? &ctl->run : NULL);
    amlfs_tmpl_flag(t, "cosine", run->space == AMLFS_SPACE_COSINE);
    epoch_rows(t, rep);
    amlfs_tmpl_flag(t, "has_times", rep->has_times);
    amlfs_tmpl_set(t, "excluded_codes", "%s", EXCLUDED_CODES);
    config_rows(t, rep);
    amlfs_report_fill(rep, "index.html", t);
    amlfs_tmpl_free(t);
}
