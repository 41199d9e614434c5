/* report_out.c: the report's files, each written into a temporary beside its target and
 * committed whole, and what several of its writers share.
 * Depends on: atomic_out, search (the form's theta), template, run, tool. */
#include "report.h"
#include "atomic_out.h"
#include "search.h"
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void amlfs_report_open(amlfs_report_out *o, const amlfs_report *rep, const char *name)
{
    amlfs_run_path(o->target, sizeof o->target, rep->report, "%s", name);
    o->tmp = amlfs_out_begin(o->target);
    o->f = fopen(o->tmp, "w");
    if (!o->f)
        amlfs_fail(AMLFS_EXIT_FAILED, o->target, "cannot write: %s", strerror(errno));
}

void amlfs_report_close(amlfs_report_out *o)
{
    errno = 0;
    int bad = ferror(o->f);
    if (fclose(o->f) != 0 || bad) {
        int e = errno;
        amlfs_out_abandon(o->tmp);
        amlfs_fail(AMLFS_EXIT_FAILED, o->target, "cannot write: %s",
                   e ? strerror(e) : "write error");
    }
    amlfs_out_commit(o->tmp);
}

void amlfs_report_fill(const amlfs_report *rep, const char *name, const amlfs_tmpl *t)
{
    amlfs_report_out o;
    amlfs_report_open(&o, rep, name);
    amlfs_tmpl_write(o.f, rep->share, name, t);
    amlfs_report_close(&o);
}

const char *amlfs_report_group(int g)
{
    static const char *const names[4] = {"a_t", "b_t", "a_tau", "b_tau"};
    return names[g];
}

double amlfs_report_t_lo(const amlfs_report *rep)
{
    return rep->run.space == AMLFS_SPACE_COSINE ? -1.0 : 0.0;
}

/* DESIGN.md 1: the anchored form's mu is in the draw's coordinates */
double *amlfs_report_theta_of(const amlfs_report *rep, const amlfs_policy *p, const double *mu)
{
    const amlfs_run *run = &rep->run;
    double *theta = amlfs_zalloc((size_t)(4 * run->intervals), sizeof(double));
    amlfs_form_theta(p->form, run->space, run->intervals, mu, p->slope_floor, theta);
    return theta;
}

int amlfs_report_draws_mu_init(const amlfs_report *rep)
{
    const amlfs_run *run = &rep->run;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int d = 4 * run->intervals, m = run->intervals;
    int same = !memcmp(last->mu, last->mu_init, sizeof(double) * (size_t)d), identity = 1;
    double *theta = amlfs_report_theta_of(rep, last, last->mu_init);
    for (int j = 0; j < d; j++)
        identity &= theta[j] == ((j / m) % 2 == 0 ? 1.0 : 0.0);
    free(theta);
    return !same && !identity;
}
