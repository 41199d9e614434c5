/* report.h: the pieces of amlfs-report (tools/amlfs-report.c joins them): a run read by
 * run.h plus what the report adds (the config and logs/times.csv, which the tool reads),
 * and the writers of RUN/report/: the tables (report_tables.c), the plots' data
 * (report_data.c), the gnuplot scripts (report_plots.c) and index.html (report_html.c),
 * the last two from the templates of share/report/ (template.h).
 * Every output is written atomically (report_out.c). Depends on: run, template. */
#ifndef AMLFS_REPORT_H
#define AMLFS_REPORT_H

#include "run.h"
#include "template.h"

#include <stdio.h>

/* The phases of logs/times.csv are whatever the driver times (the epoch as a whole is
 * "epoch"); the report keeps them in their order of first appearance. */
#define MAX_PHASES 32
#define PHASE_NAME_LEN 32

typedef struct {
    char *key, *value;
} amlfs_report_setting;

typedef struct {
    double seconds[MAX_PHASES]; /* wall-clock, per phase of the report's list */
    int timed[MAX_PHASES];
} amlfs_report_times;

typedef struct {
    amlfs_run run;
    char report[AMLFS_RUN_PATH_LEN]; /* RUN/report */
    char share[AMLFS_RUN_PATH_LEN];  /* the templates: SHARE/report */
    amlfs_report_setting *config;    /* RUN/config in its order */
    int nconfig;
    int has_times;
    char phase[MAX_PHASES][PHASE_NAME_LEN]; /* the phases of logs/times.csv */
    int nphases;
    amlfs_report_times *times; /* times[k]: epoch k + 1, one per rewarded epoch */
    double weight_min, weight_max; /* over the curves of weight.dat */
} amlfs_report;

/* ---- report_out.c: files of RUN/report, written through a temporary ------------------ */

typedef struct {
    char target[AMLFS_RUN_PATH_LEN];
    const char *tmp;
    FILE *f;
} amlfs_report_out;

void amlfs_report_open(amlfs_report_out *o, const amlfs_report *rep, const char *name);
void amlfs_report_close(amlfs_report_out *o);
/* RUN/report/name from the template of the same name in rep->share, filled from t. */
void amlfs_report_fill(const amlfs_report *rep, const char *name, const amlfs_tmpl *t);
/* The names of theta's four groups in tables: a_t, b_t, a_tau, b_tau. */
const char *amlfs_report_group(int g);
/* The t domain's lower end: p_y in [0, 1], or the target cosine in [-1, 1]. */
double amlfs_report_t_lo(const amlfs_report *rep);
/* The slopes and biases (4M, allocated) that a mu of policy p stands for in its form. */
double *amlfs_report_theta_of(const amlfs_report *rep, const amlfs_policy *p, const double *mu);
/* Whether mu_1 differs from the final mu and from the identity (a curve of its own). */
int amlfs_report_draws_mu_init(const amlfs_report *rep);

/* ---- report_tables.c: epochs.csv, mu.csv, rewards.csv, control.csv ------------------ */

void amlfs_report_epochs_csv(const amlfs_report *rep);
void amlfs_report_mu_csv(const amlfs_report *rep);
void amlfs_report_rewards_csv(const amlfs_report *rep);
void amlfs_report_control_csv(const amlfs_report *rep, const amlfs_report *ctl);

/* ---- report_data.c: the plots' data, *.dat ------------------------------------------ */

void amlfs_report_mu_dat(const amlfs_report *rep);
void amlfs_report_transforms_dat(const amlfs_report *rep);
/* also sets rep->weight_min and weight_max, which weight.gp's range needs */
void amlfs_report_weight_dat(amlfs_report *rep);
void amlfs_report_rewards_dat(const amlfs_report *rep);
void amlfs_report_control_dat(const amlfs_report *rep, const amlfs_report *ctl);

/* ---- report_plots.c: the gnuplot scripts, NAME.gp from share/report/NAME.gp ----------- */

void amlfs_report_mu_gp(const amlfs_report *rep);
void amlfs_report_transforms_gp(const amlfs_report *rep);
void amlfs_report_weight_gp(const amlfs_report *rep);
void amlfs_report_rewards_gp(const amlfs_report *rep);
void amlfs_report_control_gp(const amlfs_report *rep, const amlfs_report *ctl);

/* ---- report_html.c: index.html from share/report/index.html -------------------------- */

/* ctl: the control run or NULL; epochs_planned: the config's epochs or NULL */
void amlfs_report_index(const amlfs_report *rep, const amlfs_report *ctl,
                        const char *epochs_planned);

#endif
