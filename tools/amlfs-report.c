/* amlfs-report: the report of a run directory (DESIGN.md 2, run directory): CSV tables
 * of the epochs, of mu and of the rewards; gnuplot PNGs of mu over the epochs, of the
 * transforms and the gradient weight at the final mu, and of the rewards; and an
 * index.html that shows them with the run's config and result. It reads what exists,
 * so an unfinished run reports the epochs rewarded so far.
 *
 * Every output is written atomically into RUN/report/: the tables, the plot data
 * (*.dat) and the gnuplot scripts (*.gp) first, then the PNGs (gnuplot draws each into
 * a temporary beside its target), index.html last. The scripts name their data by
 * relative paths, so `cd RUN/report && gnuplot mu.gp` redraws a plot by hand.
 *
 * This file joins the pieces: the run reader (tools/lib/run.c), the writers of
 * tools/lib/report_*.c and the templates of share/report/ (the gnuplot scripts and the
 * page); it reads the run's config and logs/times.csv itself. */
#include "config.h"
#include "gnuplot.h"
#include "report.h"
#include "run.h"
#include "share.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-report RUN [--control RUN2] [--share DIR]\n"
    "\n"
    "Reads the run directory RUN (config, policy/, epoch-NNNN/, final/, logs/times.csv)\n"
    "and writes RUN/report/:\n"
    "  epochs.csv     per epoch: B, finite rewards, reward min/mean/max, the best sample\n"
    "                 and its reward, the policy update (applied, skipped: REASON, not\n"
    "                 updated), |mu_{e+1} - mu_e| (L2), and from logs/times.csv\n"
    "                 (epoch,phase,seconds rows) a column seconds_PHASE per phase it\n"
    "                 names (repeated rows of a phase are summed)\n"
    "  mu.csv         mu of every policy: a_t_0..a_t_{M-1}, b_t_.., a_tau_.., b_tau_..\n"
    "  rewards.csv    every sample's reward (empty where excluded), R-hat, exclusion code\n"
    "  mu.png         every component of mu over the epochs\n"
    "  transforms.png t and tau at the final mu, the identity dashed\n"
    "  weight.png     the gradient weight relative to cross-entropy, -p_y dL/dp_y,\n"
    "                 against p_y, as training computes it (cross-entropy: 1)\n"
    "  rewards.png    the rewards of each epoch, their mean and the best\n"
    "  index.html     the result, the figures, the tables and the config\n"
    "and the plots' data (*.dat) and gnuplot scripts (*.gp). An unfinished run reports\n"
    "the epochs that have rewards; the test result appears once final/eval-test.h5\n"
    "exists. Needs gnuplot (Debian: gnuplot-nox) on PATH.\n"
    "\n"
    "  --control RUN2  a control run of the same data, model and metric (typically\n"
    "                  amlfs-run --set mode=fixed: cross-entropy, the best of B kept, no\n"
    "                  search), read the same way; adds control.csv (per epoch the best\n"
    "                  validation reward of both and the difference), control.png (the\n"
    "                  two over the epochs) and a section of index.html: what the search\n"
    "                  bought against it, on validation and, when both have it, on test\n"
    "  --share DIR     the folder of the templates, report/*.gp and report/index.html\n"
    "                  (default: $AMLFS_SHARE, else PREFIX/share/amlfs beside an\n"
    "                  installed bin/, else the source tree's share/ for build/*/bin)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the work failed (gnuplot missing or failing, a failed\n"
    "write), 2 bad usage, not a run directory, an invalid or inconsistent file, or a\n"
    "template missing or invalid.\n";

/* The report's run: amlfs_run, the config and logs/times.csv (report.h). */
typedef amlfs_report run_info;

static char *copy_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = amlfs_zalloc(n, 1);
    memcpy(c, s, n);
    return c;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* RUN/config, read by config.h's reader leniently: every key is kept in its order (the
 * report shows the config as it is), other lines are left out with a note. */
static void read_config(run_info *run, const char *path)
{
    amlfs_config_file cf;
    amlfs_config_file_read(&cf, path, 1);
    run->config = cf.n ? amlfs_zalloc((size_t)cf.n, sizeof *run->config) : NULL;
    for (int i = 0; i < cf.n; i++) {
        run->config[i].key = copy_text(cf.entry[i].key);
        run->config[i].value = copy_text(cf.entry[i].value);
    }
    run->nconfig = cf.n;
    if (cf.skipped)
        amlfs_note("%s: %d line(s) not of the form key = value, left out", path, cf.skipped);
    amlfs_config_file_free(&cf);
}

/* The last value the config gives key (as the driver reads it), NULL when none. */
static const char *config_value(const run_info *run, const char *key)
{
    for (int i = run->nconfig - 1; i >= 0; i--)
        if (!strcmp(run->config[i].key, key))
            return run->config[i].value;
    return NULL;
}

/* A phase name for a CSV header: letters, digits and _+.- only. */
static int phase_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < PHASE_NAME_LEN &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-") ==
               n;
}

/* The index of a phase in the run's list, added when new; -1 when the list is full. */
static int phase_index(run_info *run, const char *name)
{
    for (int i = 0; i < run->nphases; i++)
        if (!strcmp(run->phase[i], name))
            return i;
    if (run->nphases == MAX_PHASES)
        return -1;
    snprintf(run->phase[run->nphases], PHASE_NAME_LEN, "%s", name);
    return run->nphases++;
}

/* logs/times.csv: epoch,phase,seconds rows (a header row allowed). Rows of no epoch (a
 * driver's setup, epoch 0) or of epochs not rewarded yet are left out; repeated rows of
 * one phase (a resumed epoch) are summed. */
static void read_times(run_info *run, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        amlfs_note("%s: cannot read (%s), the report has no times", path, strerror(errno));
        return;
    }
    run->has_times = 1;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, odd = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *text = trim(line);
        if (!*text || (lineno == 1 && !strncmp(text, "epoch,", 6)))
            continue;
        char *c1 = strchr(text, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2 || strchr(c2 + 1, ',')) {
            odd++;
            continue;
        }
        *c1 = *c2 = '\0';
        char *epoch_text = trim(text), *phase = trim(c1 + 1), *seconds_text = trim(c2 + 1);
        char *end1, *end2;
        errno = 0;
        long e = strtol(epoch_text, &end1, 10);
        double s = strtod(seconds_text, &end2);
        if (errno || end1 == epoch_text || *end1 || end2 == seconds_text || *end2 ||
            !isfinite(s) || s < 0 || !phase_name_ok(phase)) {
            odd++;
            continue;
        }
        if (e < 1 || e > run->run.nepochs)
            continue;
        int ph = phase_index(run, phase);
        if (ph < 0) {
            odd++;
            continue;
        }
        run->times[e - 1].seconds[ph] += s;
        run->times[e - 1].timed[ph] = 1;
    }
    free(line);
    fclose(f);
    if (odd)
        amlfs_note("%s: %d line(s) not of the form epoch,phase,seconds (or past %d phases), "
                   "left out", path, odd, MAX_PHASES);
}

/* ---- the control ------------------------------------------------------------------------ */

/* ---- the control ------------------------------------------------------------------------ */

/* A control is comparable with the run: the same data (set, splits, noise), model and
 * reward metric, where either config names them. Exit 2 otherwise, naming the key. */
static void check_control(const run_info *run, const run_info *ctl)
{
    static const char *const keys[] = {"dataset", "train_size", "val_size", "noise",
                                       "noise_kind", "model", "metric"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *a = config_value(run, keys[k]), *b = config_value(ctl, keys[k]);
        if (!a && !b)
            continue;
        if (!a || !b || strcmp(a, b))
            amlfs_fail(AMLFS_EXIT_USAGE, ctl->run.dir,
                       "not a control of %s: %s = %s, the run's is %s", run->run.dir, keys[k],
                       b ? b : "(unset)", a ? a : "(unset)");
    }
}


/* The run at dir and what the report adds to it: the config, logs/times.csv. */
static void read_report(run_info *run, const char *dir, const char *share)
{
    memset(run, 0, sizeof *run);
    amlfs_run_read(&run->run, dir);
    char path[AMLFS_RUN_PATH_LEN];
    amlfs_run_path(path, sizeof path, run->run.dir, "config");
    read_config(run, path);
    run->times = amlfs_zalloc((size_t)run->run.nepochs, sizeof *run->times);
    amlfs_run_path(path, sizeof path, run->run.dir, "logs/times.csv");
    if (amlfs_run_is_file(path))
        read_times(run, path);
    amlfs_run_path(run->report, sizeof run->report, run->run.dir, "report");
    amlfs_run_path(run->share, sizeof run->share, share, "report");
}

static void free_report(run_info *run)
{
    for (int i = 0; i < run->nconfig; i++) {
        free(run->config[i].key);
        free(run->config[i].value);
    }
    free(run->config);
    free(run->times);
    amlfs_run_free(&run->run);
}

/* The templates are checked before anything is written: a missing one is exit 2 naming
 * it, and the report is not left half made. */
static void check_share(const run_info *run, int control)
{
    static const char *const names[] = {"head.gp", "mu.gp", "mu-panel.gp", "transforms.gp",
                                        "transforms-plot.gp", "weight.gp", "rewards.gp",
                                        "index.html", "control.gp"};
    int n = (int)(sizeof names / sizeof names[0]) - (control ? 0 : 1);
    for (int i = 0; i < n; i++) {
        char path[AMLFS_RUN_PATH_LEN];
        amlfs_run_path(path, sizeof path, run->share, "%s", names[i]);
        if (!amlfs_run_is_file(path))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "no such template (the share folder: --share "
                       "DIR or AMLFS_SHARE)");
    }
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-report");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"control", required_argument, 0, 'c'},
                                         {"share", required_argument, 0, 's'},
                                         {0, 0, 0, 0}};
    opterr = 0;
    const char *control = NULL, *share_opt = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            control = optarg;
        else if (c == 's')
            share_opt = optarg;
        else
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
    }
    if (argc - optind != 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "expected one run directory (see --help)");

    char share[AMLFS_RUN_PATH_LEN];
    amlfs_share_dir(share, sizeof share, share_opt, "report");
    run_info run, ctl;
    read_report(&run, argv[optind], share);
    if (control) {
        read_report(&ctl, control, share);
        check_control(&run, &ctl);
    }
    check_share(&run, control != NULL);
    if (mkdir(run.report, 0777) != 0 && errno != EEXIST)
        amlfs_fail(AMLFS_EXIT_FAILED, run.report, "cannot create: %s", strerror(errno));

    amlfs_report_epochs_csv(&run);
    amlfs_report_mu_csv(&run);
    amlfs_report_rewards_csv(&run);
    amlfs_report_mu_dat(&run);
    amlfs_report_transforms_dat(&run);
    amlfs_report_weight_dat(&run);
    amlfs_report_rewards_dat(&run);
    amlfs_report_mu_gp(&run);
    amlfs_report_transforms_gp(&run);
    amlfs_report_weight_gp(&run);
    amlfs_report_rewards_gp(&run);
    amlfs_gnuplot_draw(run.report, "mu.gp", "mu.png");
    amlfs_gnuplot_draw(run.report, "transforms.gp", "transforms.png");
    amlfs_gnuplot_draw(run.report, "weight.gp", "weight.png");
    amlfs_gnuplot_draw(run.report, "rewards.gp", "rewards.png");
    if (control) {
        amlfs_report_control_csv(&run, &ctl);
        amlfs_report_control_dat(&run, &ctl);
        amlfs_report_control_gp(&run, &ctl);
        amlfs_gnuplot_draw(run.report, "control.gp", "control.png");
    }
    amlfs_report_index(&run, control ? &ctl : NULL, config_value(&run, "epochs"));
    printf("%s/index.html\n", run.report);
    if (control)
        free_report(&ctl);
    free_report(&run);
    return AMLFS_EXIT_OK;
}
