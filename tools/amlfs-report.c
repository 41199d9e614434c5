/* amlfs-report: the report of a run directory (DESIGN.md 2, run directory): CSV tables
 * of the epochs, of mu and of the rewards; gnuplot PNGs of mu over the epochs, of the
 * transforms and the gradient weight at the final mu, and of the rewards; and an
 * index.html that shows them with the run's config and result. It reads what exists,
 * so an unfinished run reports the epochs rewarded so far.
 *
 * Every output is written atomically into RUN/report/: the tables, the plot data
 * (*.dat) and the gnuplot scripts (*.gp) first, then the PNGs (gnuplot draws each into
 * a temporary beside its target), index.html last. The scripts name their data by
 * relative paths, so `cd RUN/report && gnuplot mu.gp` redraws a plot by hand. */
#include "amlfs_kernels.h"
#include "atomic_out.h"
#include "config.h"
#include "h5io.h"
#include "policy.h"
#include "search.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
    "usage: amlfs-report RUN [--control RUN2]\n"
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
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the work failed (gnuplot missing or failing, a failed\n"
    "write), 2 bad usage, not a run directory, or an invalid or inconsistent file.\n";

#define PATH_LEN 4096
#define WEIGHT_POINTS 2000    /* p_y grid of weight.png: k / WEIGHT_POINTS, k = 1.. */
#define COSINE_WEIGHT_SCALE 64.0 /* s of the cosine-space weight grid: spans p_y in (0,1] */
#define STDERR_KEEP 65536     /* bytes of gnuplot's stderr kept for messages */

/* ---- paths ----------------------------------------------------------------------- */

/* buf = dir "/" fmt...; exit 2 when it does not fit. */
static void join(char *buf, size_t n, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void join(char *buf, size_t n, const char *dir, const char *fmt, ...)
{
    int used = snprintf(buf, n, "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    int more = used >= 0 && (size_t)used < n ? vsnprintf(buf + used, n - (size_t)used, fmt, ap)
                                              : -1;
    va_end(ap);
    if (more < 0 || (size_t)used + (size_t)more >= n)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "path too long");
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- the run in memory ------------------------------------------------------------- */

/* The phases of logs/times.csv are whatever the driver times (the epoch as a whole is
 * "epoch"); the report keeps them in their order of first appearance. */
#define MAX_PHASES 32
#define PHASE_NAME_LEN 32

typedef struct {
    amlfs_rewards r;
    double min, mean, max; /* over the finite rewards; NaN when there are none */
    int excluded;          /* samples without a reward */
    double seconds[MAX_PHASES]; /* wall-clock, per phase of run_info's list */
    int timed[MAX_PHASES];
} epoch_info;

typedef struct {
    char dir[PATH_LEN];    /* RUN as given, trailing slashes removed */
    char report[PATH_LEN]; /* RUN/report */
    amlfs_config_file config; /* RUN/config's lines as written (config.h) */
    amlfs_policy *policy; /* policy[k] samples epoch k + 1 */
    int npolicies;
    epoch_info *epoch; /* epoch[k] is epoch k + 1 */
    int nepochs;
    int intervals;
    amlfs_space space;
    int has_times;
    char phase[MAX_PHASES][PHASE_NAME_LEN]; /* the phases of logs/times.csv */
    int nphases;
    char stopped[1024]; /* the first line of RUN/STOPPED (the driver's reason), or "" */
    int has_final;
    char final_status[16];
    double final_top1, final_top5, final_loss;
    int64_t final_epoch, final_images;
    double weight_min, weight_max; /* over the curves of weight.dat */
} run_info;

static void *grow(void *p, size_t count, size_t size)
{
    void *q = realloc(p, count * size);
    if (!q)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory (%zu x %zu bytes)", count, size);
    return q;
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

/* RUN/config: key = value lines, # comments, read by config.h's reader; every key is
 * kept (the report shows the config as it is), other lines are left out with a note. */
static void read_config(run_info *run, const char *path)
{
    amlfs_config_file_read(&run->config, path, 1);
    if (run->config.skipped)
        amlfs_note("%s: %d line(s) not of the form key = value, left out", path,
                   run->config.skipped);
}

static const char *config_value(const run_info *run, const char *key)
{
    return amlfs_config_file_get(&run->config, key);
}

/* The policies policy/epoch-0001.h5, epoch-0002.h5, ... up to the first missing one. */
static void read_policies(run_info *run)
{
    for (int k = 1;; k++) {
        char path[PATH_LEN];
        join(path, sizeof path, run->dir, "policy/epoch-%04d.h5", k);
        if (!is_file(path))
            break;
        run->policy = grow(run->policy, (size_t)k, sizeof *run->policy);
        amlfs_policy *p = &run->policy[k - 1];
        amlfs_policy_read(p, path);
        run->npolicies = k;
        if (p->epoch != k)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@epoch: %lld, expected %d as its name says",
                       (long long)p->epoch, k);
        amlfs_space space = strcmp(p->space, "cosine") ? AMLFS_SPACE_PROB : AMLFS_SPACE_COSINE;
        if (k == 1) {
            run->intervals = (int)p->intervals;
            run->space = space;
        } else if (p->intervals != run->intervals || space != run->space) {
            amlfs_fail(AMLFS_EXIT_USAGE, path, "M = %lld in space %s, epoch 1's policy has "
                       "M = %d in space %s", (long long)p->intervals, p->space, run->intervals,
                       run->policy[0].space);
        }
    }
}

/* The epochs with a rewards file: epoch-0001/rewards.h5, ... up to the first missing. */
static void read_epochs(run_info *run)
{
    for (int e = 1;; e++) {
        char rpath[PATH_LEN], tpath[PATH_LEN];
        join(rpath, sizeof rpath, run->dir, "epoch-%04d/rewards.h5", e);
        if (!is_file(rpath))
            break;
        join(tpath, sizeof tpath, run->dir, "epoch-%04d/thetas.h5", e);
        if (e > run->npolicies)
            amlfs_fail(AMLFS_EXIT_USAGE, rpath, "epoch %d has rewards but no policy "
                       "(policy/epoch-%04d.h5 is missing)", e, e);
        run->epoch = grow(run->epoch, (size_t)e, sizeof *run->epoch);
        epoch_info *ep = &run->epoch[e - 1];
        memset(ep, 0, sizeof *ep);
        amlfs_rewards_read(&ep->r, rpath);
        run->nepochs = e;
        amlfs_thetas t;
        amlfs_thetas_read(&t, tpath);
        int64_t samples = t.samples, t_epoch = t.epoch, t_intervals = t.intervals;
        amlfs_thetas_free(&t);
        if (ep->r.epoch != e)
            amlfs_fail(AMLFS_EXIT_USAGE, rpath, "/@epoch: %lld, expected %d",
                       (long long)ep->r.epoch, e);
        if (t_epoch != e)
            amlfs_fail(AMLFS_EXIT_USAGE, tpath, "/@epoch: %lld, expected %d",
                       (long long)t_epoch, e);
        if (t_intervals != run->intervals)
            amlfs_fail(AMLFS_EXIT_USAGE, tpath, "/@intervals: M = %lld, the policy has M = %d",
                       (long long)t_intervals, run->intervals);
        if (ep->r.samples != samples)
            amlfs_fail(AMLFS_EXIT_USAGE, rpath, "has B = %lld, the thetas have B = %lld",
                       (long long)ep->r.samples, (long long)samples);
        double sum = 0;
        int n = 0;
        ep->min = INFINITY;
        ep->max = -INFINITY;
        for (int64_t i = 0; i < ep->r.samples; i++) {
            if (ep->r.excluded[i]) {
                ep->excluded++;
                continue;
            }
            double v = ep->r.raw[i];
            sum += v;
            n++;
            ep->min = v < ep->min ? v : ep->min;
            ep->max = v > ep->max ? v : ep->max;
        }
        ep->mean = n ? sum / n : NAN;
        if (!n)
            ep->min = ep->max = NAN;
    }
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
        if (e < 1 || e > run->nepochs)
            continue;
        int ph = phase_index(run, phase);
        if (ph < 0) {
            odd++;
            continue;
        }
        run->epoch[e - 1].seconds[ph] += s;
        run->epoch[e - 1].timed[ph] = 1;
    }
    free(line);
    fclose(f);
    if (odd)
        amlfs_note("%s: %d line(s) not of the form epoch,phase,seconds (or past %d phases), "
                   "left out", path, odd, MAX_PHASES);
}

static void read_final(run_info *run, const char *path)
{
    hid_t f = amlfs_h5_open(path, "eval");
    char split[16];
    amlfs_attr_str(f, "/", "split", split, sizeof split);
    amlfs_attr_str(f, "/", "status", run->final_status, sizeof run->final_status);
    run->final_epoch = amlfs_attr_i64(f, "/", "epoch");
    run->final_images = amlfs_attr_i64(f, "/", "images");
    run->final_top1 = amlfs_attr_f64(f, "/", "top1");
    run->final_top5 = amlfs_attr_f64(f, "/", "top5");
    run->final_loss = amlfs_attr_f64(f, "/", "loss");
    H5Fclose(f);
    if (strcmp(split, "test"))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@split: '%s', expected 'test'", split);
    run->has_final = 1;
}

static void read_run(run_info *run, const char *dir)
{
    memset(run, 0, sizeof *run);
    if (snprintf(run->dir, sizeof run->dir, "%s", dir) >= (int)sizeof run->dir)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "path too long");
    for (size_t n = strlen(run->dir); n > 1 && run->dir[n - 1] == '/'; n--)
        run->dir[n - 1] = '\0';
    struct stat st;
    if (stat(run->dir, &st) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "no such run directory");
    if (!S_ISDIR(st.st_mode))
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "not a directory");
    char path[PATH_LEN];
    join(path, sizeof path, run->dir, "config");
    if (!is_file(path))
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "not a run directory (no config)");
    read_config(run, path);
    join(path, sizeof path, run->dir, "policy/epoch-0001.h5");
    if (!is_file(path))
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "not a run directory (no policy/epoch-0001.h5)");
    read_policies(run);
    read_epochs(run);
    join(path, sizeof path, run->dir, "logs/times.csv");
    if (is_file(path))
        read_times(run, path);
    join(path, sizeof path, run->dir, "final/eval-test.h5");
    if (is_file(path))
        read_final(run, path);
    join(path, sizeof path, run->dir, "STOPPED");
    FILE *f = is_file(path) ? fopen(path, "r") : NULL;
    if (f) {
        if (!fgets(run->stopped, sizeof run->stopped, f))
            snprintf(run->stopped, sizeof run->stopped, "no reason recorded");
        run->stopped[strcspn(run->stopped, "\n")] = '\0';
        fclose(f);
    }
    join(run->report, sizeof run->report, run->dir, "report");
}

static void free_run(run_info *run)
{
    amlfs_config_file_free(&run->config);
    for (int k = 0; k < run->npolicies; k++)
        amlfs_policy_free(&run->policy[k]);
    free(run->policy);
    for (int k = 0; k < run->nepochs; k++)
        amlfs_rewards_free(&run->epoch[k].r);
    free(run->epoch);
}

/* What followed epoch e's rewards: the next policy's last_update, or "not updated" while
 * there is no next policy. */
static const char *update_of(const run_info *run, int e)
{
    return e < run->npolicies ? run->policy[e].last_update : "not updated";
}

/* |mu_{e+1} - mu_e| (L2), NaN while there is no next policy. */
static double mu_step(const run_info *run, int e)
{
    if (e >= run->npolicies)
        return NAN;
    const double *a = run->policy[e - 1].mu, *b = run->policy[e].mu;
    double s = 0;
    for (int j = 0; j < 4 * run->intervals; j++)
        s += (b[j] - a[j]) * (b[j] - a[j]);
    return sqrt(s);
}

/* ---- outputs ------------------------------------------------------------------------ */

typedef struct {
    char target[PATH_LEN];
    const char *tmp;
    FILE *f;
} out_file;

static void out_open(out_file *o, const run_info *run, const char *name)
{
    join(o->target, sizeof o->target, run->report, "%s", name);
    o->tmp = amlfs_out_begin(o->target);
    o->f = fopen(o->tmp, "w");
    if (!o->f)
        amlfs_fail(AMLFS_EXIT_FAILED, o->target, "cannot write: %s", strerror(errno));
}

static void out_close(out_file *o)
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

static const char *const group_names[4] = {"a_t", "b_t", "a_tau", "b_tau"};

static void write_epochs_csv(const run_info *run)
{
    out_file o;
    out_open(&o, run, "epochs.csv");
    fprintf(o.f, "epoch,samples,finite,reward_min,reward_mean,reward_max,best,best_reward,"
                 "update,mu_step_l2");
    for (int p = 0; p < run->nphases; p++)
        fprintf(o.f, ",seconds_%s", run->phase[p]);
    fputc('\n', o.f);
    for (int e = 1; e <= run->nepochs; e++) {
        const epoch_info *ep = &run->epoch[e - 1];
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
        csv_text(o.f, update_of(run, e));
        fputc(',', o.f);
        csv_num(o.f, mu_step(run, e));
        for (int p = 0; p < run->nphases; p++) {
            fputc(',', o.f);
            csv_num(o.f, ep->timed[p] ? ep->seconds[p] : NAN);
        }
        fputc('\n', o.f);
    }
    out_close(&o);
}

static void write_mu_csv(const run_info *run)
{
    out_file o;
    out_open(&o, run, "mu.csv");
    int m = run->intervals;
    fprintf(o.f, "epoch");
    for (int g = 0; g < 4; g++)
        for (int k = 0; k < m; k++)
            fprintf(o.f, ",%s_%d", group_names[g], k);
    fputc('\n', o.f);
    for (int k = 0; k < run->npolicies; k++) {
        fprintf(o.f, "%d", k + 1);
        for (int j = 0; j < 4 * m; j++) {
            fputc(',', o.f);
            csv_num(o.f, run->policy[k].mu[j]);
        }
        fputc('\n', o.f);
    }
    out_close(&o);
}

static void write_rewards_csv(const run_info *run)
{
    out_file o;
    out_open(&o, run, "rewards.csv");
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
    out_close(&o);
}

/* ---- plot data ---------------------------------------------------------------------- */

/* The piece of a transform on [lo, hi] with m intervals that x falls in (DESIGN.md 1). */
static int piece_of(double x, double lo, double hi, int m)
{
    double xc = x < lo ? lo : (x > hi ? hi : x);
    int k = (int)((xc - lo) / (hi - lo) * m);
    return k < m - 1 ? k : m - 1;
}

/* The t domain of the space: p_y in [0, 1], or the target cosine in [-1, 1]. */
static double t_lo(const run_info *run) { return run->space == AMLFS_SPACE_COSINE ? -1.0 : 0.0; }

/* The slopes and biases (4M, allocated) that a mu of the policy stands for in its form
 * (DESIGN.md 1: the anchored form's mu is in the draw's coordinates). */
static double *theta_of(const run_info *run, const amlfs_policy *p, const double *mu)
{
    double *theta = amlfs_zalloc((size_t)(4 * run->intervals), sizeof(double));
    amlfs_form_theta(amlfs_form_parse(p->form), run->space, run->intervals, mu,
                     p->slope_floor, theta);
    return theta;
}

/* Whether mu_1 differs from the final mu and from the identity, so that drawing it adds
 * a curve of its own. */
static int draw_mu_init(const run_info *run)
{
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int d = 4 * run->intervals, m = run->intervals;
    int same = !memcmp(last->mu, last->mu_init, sizeof(double) * (size_t)d), identity = 1;
    double *theta = theta_of(run, last, last->mu_init);
    for (int j = 0; j < d; j++)
        identity &= theta[j] == ((j / m) % 2 == 0 ? 1.0 : 0.0);
    free(theta);
    return !same && !identity;
}

/* transforms.dat: index 0 t, index 1 tau; columns x, final, mu_1. Each piece is a line
 * segment: its two ends (just inside, so each belongs to its own piece) and a blank
 * line, so gnuplot draws the jumps between free biases as gaps. */
static void write_transforms_dat(const run_info *run)
{
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int m = run->intervals;
    double *theta_fin = theta_of(run, last, last->mu), *theta_ini = theta_of(run, last, last->mu_init);
    amlfs_loss_spec fin = {run->space, m, theta_fin, 1.0};
    amlfs_loss_spec ini = {run->space, m, theta_ini, 1.0};
    out_file o;
    out_open(&o, run, "transforms.dat");
    fprintf(o.f, "# the transforms at the final mu (policy of epoch %d) and at mu_1\n",
            run->npolicies);
    for (int which = 0; which < 2; which++) {
        double lo = which ? 0.0 : t_lo(run), hi = 1.0, h = (hi - lo) / m;
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
    out_close(&o);
}

/* One curve of weight.dat: w = -p_y dL/dp_y from amlfs_searchable_loss, the function
 * training calls, on two-class inputs chosen to give each p_y of the grid.
 * prob space: logits (log(p/(1-p)), 0), target 0.
 * cosine space: w depends on p_y = softmax(s t(cos_y), s cos_j)_y through tau alone, so
 * t is set to the identity and the cosines (logit(p)/s, 0) give each p_y; t's part, where
 * a sample sits on this axis, is what transforms.png shows.
 * A blank line wherever the pieces in use or a clamp change: the biases are free, so the
 * weight jumps there, and gnuplot leaves a gap. */
static void weight_curve(FILE *f, run_info *run, const double *theta)
{
    int m = run->intervals, n = WEIGHT_POINTS, cosine = run->space == AMLFS_SPACE_COSINE;
    double *th = amlfs_zalloc((size_t)(4 * m), sizeof(double));
    memcpy(th, theta, sizeof(double) * (size_t)(4 * m));
    if (cosine)
        for (int k = 0; k < m; k++) {
            th[k] = 1.0;
            th[m + k] = 0.0;
        }
    amlfs_loss_spec spec = {run->space, m, th, cosine ? COSINE_WEIGHT_SCALE : 1.0};
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
            run->weight_min = fmin(run->weight_min, w[i]);
            run->weight_max = fmax(run->weight_max, w[i]);
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

static void write_weight_dat(run_info *run)
{
    run->weight_min = INFINITY;
    run->weight_max = -INFINITY;
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    out_file o;
    out_open(&o, run, "weight.dat");
    fprintf(o.f, "# -p_y dL/dp_y, the gradient weight relative to cross-entropy\n"
                 "# index 0: p_y w at the final mu (policy of epoch %d)\n", run->npolicies);
    double *theta = theta_of(run, last, last->mu);
    weight_curve(o.f, run, theta);
    free(theta);
    fprintf(o.f, "\n\n# index 1: p_y w at mu_1\n");
    if (draw_mu_init(run)) {
        theta = theta_of(run, last, last->mu_init);
        weight_curve(o.f, run, theta);
        free(theta);
    }
    else /* the identity (cross-entropy's 1) or the final mu: not drawn again */
        fprintf(o.f, "# (mu_1 is the identity or the final mu: not drawn)\nNaN NaN\n");
    out_close(&o);
}

static void write_mu_dat(const run_info *run)
{
    out_file o;
    out_open(&o, run, "mu.dat");
    int m = run->intervals;
    fprintf(o.f, "# epoch");
    for (int g = 0; g < 4; g++)
        for (int k = 0; k < m; k++)
            fprintf(o.f, " %s_%d", group_names[g], k);
    fputc('\n', o.f);
    for (int k = 0; k < run->npolicies; k++) {
        fprintf(o.f, "%d", k + 1);
        for (int j = 0; j < 4 * m; j++)
            fprintf(o.f, " %.10g", run->policy[k].mu[j]);
        fputc('\n', o.f);
    }
    out_close(&o);
}

/* Where sample i of b is drawn, around its epoch's tic: spread so that equal rewards
 * stay visible as separate points. */
static double sample_x(int e, int64_t i, int64_t b)
{
    return b > 1 ? e + 0.3 * ((double)i / (double)(b - 1) - 0.5) : e;
}

/* rewards.dat: index 0 every finite reward (epoch sample reward x), index 1 per epoch
 * (epoch mean best_reward best_x; rows of epochs without a finite reward left out). */
static void write_rewards_dat(const run_info *run)
{
    out_file o;
    out_open(&o, run, "rewards.dat");
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
        const epoch_info *ep = &run->epoch[e - 1];
        if (ep->r.best >= 0) {
            fprintf(o.f, "%d %.10g %.10g %.6g\n", e, ep->mean, ep->r.best_reward,
                    sample_x(e, ep->r.best, ep->r.samples));
            any = 1;
        }
    }
    if (!any)
        fprintf(o.f, "0 NaN NaN NaN\n");
    out_close(&o);
}

/* ---- gnuplot scripts ------------------------------------------------------------------- */

/* The script's head: the PNG it draws ("out" may be set on the command line: the report
 * draws into a temporary), pngcairo where it exists, else libgd's png. */
static void gp_head(FILE *f, const char *png, int width, int height)
{
    fprintf(f,
            "# %s: written by amlfs-report; `gnuplot %.*s.gp` in this directory redraws it.\n"
            "if (!exists(\"out\")) out = \"%s\"\n"
            "set encoding utf8\n"
            "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
            "    set terminal pngcairo size %d,%d enhanced font \",11\"\n"
            "} else {\n"
            "    set terminal png size %d,%d enhanced\n"
            "}\n"
            "set output out\n"
            "set grid lt 1 lw 1 lc rgb \"#e4e4e4\"\n",
            png, (int)(strlen(png) - 4), png, png, width, height, width, height);
}

/* A y range around [lo, hi] with a margin; a flat series gets a band around it. */
static void padded_range(double lo, double hi, double *out_lo, double *out_hi)
{
    double pad = hi - lo > 1e-12 ? 0.08 * (hi - lo) : fmax(0.05 * fabs(hi), 0.01);
    *out_lo = lo - pad;
    *out_hi = hi + pad;
}

/* Integer tics over 1..n, at most about 15 of them. */
static int tic_step(int n) { return n > 15 ? (n + 14) / 15 : 1; }

static void interval_label(char *buf, size_t n, double lo, double hi, int m, int k)
{
    double h = (hi - lo) / m;
    snprintf(buf, n, "[%.3g, %.3g%s", lo + k * h, k == m - 1 ? hi : lo + (k + 1) * h,
             k == m - 1 ? "]" : ")");
}

static void write_mu_gp(const run_info *run)
{
    static const char *const titles[4] = {
        "slopes of t: a_t", "biases of t: b_t", "slopes of τ: a_{τ}", "biases of τ: b_{τ}"};
    static const char *const ylabels[4] = {"a_t", "b_t", "a_{τ}", "b_{τ}"};
    const amlfs_policy *p1 = &run->policy[0];
    int m = run->intervals, np = run->npolicies;
    out_file o;
    out_open(&o, run, "mu.gp");
    gp_head(o.f, "mu.png", 1400, 950);
    fprintf(o.f,
            "set multiplot layout 2,2 margins 0.06,0.86,0.07,0.91 spacing 0.075,0.11 "
            "title \"μ over the epochs (%s space, M = %d, σ = %g, mode %s; θ is drawn from "
            "N(μ, σ^2 I))\" font \",13\"\n"
            "set xlabel \"epoch (that the policy samples)\"\n"
            "set xrange [0.5:%g]\n"
            "set xtics %d\n",
            p1->space, m, p1->sigma, p1->mode, np + 0.5, tic_step(np));
    for (int g = 0; g < 4; g++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < np; k++)
            for (int j = g * m; j < (g + 1) * m; j++) {
                lo = fmin(lo, run->policy[k].mu[j]);
                hi = fmax(hi, run->policy[k].mu[j]);
            }
        double ylo, yhi;
        padded_range(lo, hi, &ylo, &yhi);
        /* one key per row, right of it: t's intervals, then tau's (the same colours in
         * both panels of a row) */
        if (g % 2 == 0 && m <= 16)
            fprintf(o.f, "set key at screen 0.995, screen %s right top box "
                         "title \"intervals of %s\"\n",
                    g ? "0.45" : "0.89", g ? "τ" : "t");
        else
            fprintf(o.f, "unset key\n");
        double dlo = g < 2 ? t_lo(run) : 0.0;
        fprintf(o.f, "set title \"%s\"\nset ylabel \"%s\"\nset yrange [%.10g:%.10g]\nplot ",
                titles[g], ylabels[g], ylo, yhi);
        for (int k = 0; k < m; k++) {
            char label[64];
            interval_label(label, sizeof label, dlo, 1.0, m, k);
            fprintf(o.f, "%s\"mu.dat\" using 1:%d with linespoints lw 1.5 pt 7 ps 0.7 "
                         "title \"%s\"",
                    k ? ", \\\n     " : "", 2 + g * m + k, label);
        }
        fputc('\n', o.f);
    }
    fprintf(o.f, "unset multiplot\n");
    out_close(&o);
}

static void write_transforms_gp(const run_info *run)
{
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int cosine = run->space == AMLFS_SPACE_COSINE, init = draw_mu_init(run);
    out_file o;
    out_open(&o, run, "transforms.gp");
    gp_head(o.f, "transforms.png", 1300, 560);
    fprintf(o.f,
            "set multiplot layout 1,2 title \"the transforms at the final μ (policy of epoch "
            "%d, %s space, M = %lld)\" font \",13\"\n"
            "set key top left box opaque\n"
            "set samples 201\n",
            run->npolicies, last->space, (long long)last->intervals);
    const char *x_t = cosine ? "cos θ_y (target cosine)" : "p_y";
    for (int which = 0; which < 2; which++) {
        double lo = which ? 0.0 : t_lo(run);
        if (which)
            fprintf(o.f, "set title \"τ(u), then clamped to [ε, ∞); L = -log τ(%s)\"\n"
                         "set xlabel \"u = %s\"\nset ylabel \"τ(u)\"\n",
                    cosine ? "softmax(f')_y" : "t(p_y)", cosine ? "softmax(f')_y" : "t(p_y)");
        else if (cosine)
            fprintf(o.f, "set title \"t: the target logit is s·t(cos θ_y)\"\n"
                         "set xlabel \"%s\"\nset ylabel \"t(cos θ_y)\"\n", x_t);
        else
            fprintf(o.f, "set title \"t(p_y), then clamped to [ε, 1]\"\n"
                         "set xlabel \"%s\"\nset ylabel \"t(p_y)\"\n", x_t);
        fprintf(o.f, "set xrange [%g:1]\n"
                     "plot x with lines dt 2 lw 1.5 lc rgb \"black\" title \"identity\", \\\n"
                     "     \"transforms.dat\" index %d using 1:2 with lines lw 2.5 "
                     "lc rgb \"#1f77b4\" title \"final μ\"",
                lo, which);
        if (init)
            fprintf(o.f, ", \\\n     \"transforms.dat\" index %d using 1:3 with lines lw 2 "
                         "dt 4 lc rgb \"#ff7f0e\" title \"μ_1 (%s fit)\"",
                    which, last->init);
        fputc('\n', o.f);
    }
    fprintf(o.f, "unset multiplot\n");
    out_close(&o);
}

static void write_weight_gp(const run_info *run)
{
    const amlfs_policy *last = &run->policy[run->npolicies - 1];
    int cosine = run->space == AMLFS_SPACE_COSINE;
    const char *baseline = cosine ? "the normalised softmax" : "cross-entropy";
    double lo = fmax(fmin(0.0, run->weight_min), -3.0), hi = fmin(fmax(1.5, run->weight_max), 4.0);
    double ylo = lo - 0.05 * (hi - lo), yhi = hi + 0.05 * (hi - lo);
    out_file o;
    out_open(&o, run, "weight.gp");
    gp_head(o.f, "weight.png", 1000, 650);
    fprintf(o.f,
            "set title \"gradient weight relative to %s, -p_y ∂L/∂p_y "
            "(%s space)\" font \",13\"\n"
            "set xlabel \"%s\"\n"
            "set ylabel \"w = -p_y ∂L/∂p_y\"\n"
            "set xrange [0:1]\n"
            "# the range holds 0, 1 and the curves, but a pole where τ nears 0 is cut\n"
            "set yrange [%.6g:%.6g]\n"
            "set key top right box opaque\n"
            "set samples 201\n"
            "plot 1 with lines dt 2 lw 1.5 lc rgb \"black\" title \"%s (1)\", \\\n"
            "     \"weight.dat\" index 0 using 1:2 with lines lw 2.5 lc rgb \"#1f77b4\" "
            "title \"final μ (policy of epoch %d)\"",
            baseline, last->space,
            cosine ? "p_y = softmax(s·t(cos θ_y), s·cos θ_j)_y" : "p_y (probability of the "
                                                                  "target class)",
            ylo, yhi, baseline, run->npolicies);
    if (draw_mu_init(run))
        fprintf(o.f, ", \\\n     \"weight.dat\" index 1 using 1:2 with lines lw 2 dt 4 "
                     "lc rgb \"#ff7f0e\" title \"μ_1 (%s fit)\"",
                last->init);
    fputc('\n', o.f);
    out_close(&o);
}

static void write_rewards_gp(const run_info *run)
{
    out_file o;
    out_open(&o, run, "rewards.gp");
    gp_head(o.f, "rewards.png", 1100, 620);
    const char *metric = run->nepochs ? run->epoch[0].r.metric : "top1";
    const char *ylabel = !strcmp(metric, "loss")   ? "reward: -(validation loss)"
                         : !strcmp(metric, "top5") ? "reward: validation top-5 accuracy"
                                                   : "reward: validation top-1 accuracy";
    double lo = INFINITY, hi = -INFINITY;
    for (int e = 0; e < run->nepochs; e++)
        if (run->epoch[e].r.best >= 0) {
            lo = fmin(lo, run->epoch[e].min);
            hi = fmax(hi, run->epoch[e].max);
        }
    if (!(lo <= hi)) {
        fprintf(o.f, "set title \"validation rewards per epoch\" font \",13\"\n"
                     "set xrange [0:1]\nset yrange [0:1]\nunset key\nunset tics\n"
                     "set label 1 \"no epoch has a finite reward yet\" at graph 0.5, graph 0.5 "
                     "center font \",14\"\n"
                     "plot -1 notitle\n");
        out_close(&o);
        return;
    }
    double ylo, yhi;
    padded_range(lo, hi, &ylo, &yhi);
    fprintf(o.f,
            "set title \"validation rewards per epoch (%s; %d epoch%s)\" font \",13\"\n"
            "set xlabel \"epoch\"\nset ylabel \"%s\"\n"
            "set xrange [0.5:%g]\nset xtics %d\nset yrange [%.10g:%.10g]\n"
            "set key outside right top\n",
            metric, run->nepochs, run->nepochs == 1 ? "" : "s", ylabel, run->nepochs + 0.5,
            tic_step(run->nepochs), ylo, yhi);
    for (int e = 1; e <= run->nepochs; e++)
        if (run->epoch[e - 1].excluded)
            fprintf(o.f, "set label \"%d excluded\" at %d, graph 0.03 center font \",9\" "
                         "tc rgb \"#d62728\"\n",
                    run->epoch[e - 1].excluded, e);
    fprintf(o.f,
            "plot \"rewards.dat\" index 0 using 4:3 with points pt 7 ps 0.9 "
            "lc rgb \"#1f77b4\" title \"sample\", \\\n"
            "     \"rewards.dat\" index 1 using 1:2 with linespoints lw 2 pt 5 ps 0.8 "
            "lc rgb \"#2ca02c\" title \"mean\", \\\n"
            "     \"rewards.dat\" index 1 using 4:3 with points pt 6 ps 2.4 lw 2 "
            "lc rgb \"#d62728\" title \"best (next start)\"\n");
    out_close(&o);
}

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
            amlfs_fail(AMLFS_EXIT_USAGE, ctl->dir,
                       "not a control of %s: %s = %s, the run's is %s", run->dir, keys[k],
                       b ? b : "(unset)", a ? a : "(unset)");
    }
}

/* The best reward of epoch e (from 1), NaN when it has none or the run has fewer. */
static double best_of(const run_info *run, int e)
{
    if (e > run->nepochs || run->epoch[e - 1].r.best < 0)
        return NAN;
    return run->epoch[e - 1].r.best_reward;
}

static int epochs_of_both(const run_info *run, const run_info *ctl)
{
    return run->nepochs > ctl->nepochs ? run->nepochs : ctl->nepochs;
}

static void write_control_csv(const run_info *run, const run_info *ctl)
{
    out_file o;
    out_open(&o, run, "control.csv");
    fprintf(o.f, "epoch,run_best_reward,control_best_reward,difference\n");
    for (int e = 1; e <= epochs_of_both(run, ctl); e++) {
        double a = best_of(run, e), b = best_of(ctl, e);
        fprintf(o.f, "%d,", e);
        csv_num(o.f, a);
        fputc(',', o.f);
        csv_num(o.f, b);
        fputc(',', o.f);
        csv_num(o.f, a - b);
        fputc('\n', o.f);
    }
    out_close(&o);
}

static void write_control_dat(const run_info *run, const run_info *ctl)
{
    out_file o;
    out_open(&o, run, "control.dat");
    fprintf(o.f, "# epoch run_best_reward control_best_reward (NaN: none)\n");
    int n = epochs_of_both(run, ctl);
    for (int e = 1; e <= n; e++)
        fprintf(o.f, "%d %.10g %.10g\n", e, best_of(run, e), best_of(ctl, e));
    if (n == 0)
        fprintf(o.f, "0 NaN NaN\n");
    out_close(&o);
}

static void write_control_gp(const run_info *run, const run_info *ctl)
{
    out_file o;
    out_open(&o, run, "control.gp");
    gp_head(o.f, "control.png", 1100, 560);
    int n = epochs_of_both(run, ctl);
    double lo = INFINITY, hi = -INFINITY;
    for (int e = 1; e <= n; e++) {
        double v[2] = {best_of(run, e), best_of(ctl, e)};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                lo = fmin(lo, v[k]);
                hi = fmax(hi, v[k]);
            }
    }
    if (!(lo <= hi)) {
        fprintf(o.f, "set title \"best validation reward per epoch, run and control\" "
                     "font \",13\"\nset xrange [0:1]\nset yrange [0:1]\nunset key\nunset tics\n"
                     "set label 1 \"neither run has a finite reward yet\" at graph 0.5, "
                     "graph 0.5 center font \",14\"\nplot -1 notitle\n");
        out_close(&o);
        return;
    }
    double ylo, yhi;
    padded_range(lo, hi, &ylo, &yhi);
    const char *metric = run->nepochs ? run->epoch[0].r.metric : "top1";
    fprintf(o.f,
            "set title \"best validation reward per epoch (%s): the search against its "
            "control\" font \",13\"\n"
            "set xlabel \"epoch\"\nset ylabel \"best validation reward (%s)\"\n"
            "set xrange [0.5:%g]\nset xtics %d\nset yrange [%.10g:%.10g]\n"
            "set key bottom right\n"
            "plot \"control.dat\" using 1:2 with linespoints lw 2 pt 7 ps 0.9 "
            "lc rgb \"#d62728\" title \"run (%s)\", \\\n"
            "     \"control.dat\" using 1:3 with linespoints lw 2 pt 5 ps 0.9 dt 2 "
            "lc rgb \"#1f77b4\" title \"control (%s)\"\n",
            metric, metric, n + 0.5, tic_step(n), ylo, yhi, run->policy[0].mode,
            ctl->policy[0].mode);
    out_close(&o);
}

/* ---- running gnuplot ------------------------------------------------------------------- */

/* The last non-empty line of text (gnuplot's error message ends its output). */
static void last_line(const char *text, char *buf, size_t n)
{
    buf[0] = '\0';
    const char *s = text;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        size_t i = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < len)
            snprintf(buf, n, "%.*s", (int)(len - i), s + i);
        s += len + (e ? 1 : 0);
    }
}

/* Runs `gnuplot SCRIPT` in the report directory, drawing into a temporary beside PNG,
 * and commits the PNG. Exit 1 when gnuplot is missing, fails, or draws no PNG. */
static void draw(const run_info *run, const char *script, const char *png)
{
    char target[PATH_LEN], script_path[PATH_LEN];
    join(target, sizeof target, run->report, "%s", png);
    join(script_path, sizeof script_path, run->report, "%s", script);
    const char *tmp = amlfs_out_begin(target);
    const char *tmp_name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
    char set_out[PATH_LEN];
    /* the temporary's name is NAME.png's with [A-Za-z0-9] added: safe in quotes */
    snprintf(set_out, sizeof set_out, "out='%s'", tmp_name);

    int err_pipe[2], exec_pipe[2];
    if (pipe(err_pipe) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot create a pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
        /* the child leaves through _exit: the parent's exit handlers are not its own */
        close(err_pipe[0]);
        close(exec_pipe[0]);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        dup2(err_pipe[1], STDERR_FILENO);
        if (chdir(run->report) == 0)
            execlp("gnuplot", "gnuplot", "--default-settings", "-e", set_out, script,
                   (char *)NULL);
        int e = errno;
        if (write(exec_pipe[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(err_pipe[1]);
    close(exec_pipe[1]);
    char *text = amlfs_zalloc(STDERR_KEEP + 1, 1);
    size_t len = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(err_pipe[0], chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t take = (size_t)got < STDERR_KEEP - len ? (size_t)got : STDERR_KEEP - len;
        memcpy(text + len, chunk, take);
        len += take;
    }
    close(err_pipe[0]);
    int exec_errno = 0;
    ssize_t n = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
    close(exec_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char line[1024];
    last_line(text, line, sizeof line);
    free(text);
    if (n == (ssize_t)sizeof exec_errno) {
        amlfs_out_abandon(tmp);
        if (exec_errno == ENOENT)
            amlfs_fail(AMLFS_EXIT_FAILED, "gnuplot",
                       "not found on PATH (Debian: apt-get install gnuplot-nox)");
        amlfs_fail(AMLFS_EXIT_FAILED, "gnuplot", "cannot run in %s: %s", run->report,
                   strerror(exec_errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        amlfs_out_abandon(tmp);
        if (WIFSIGNALED(status))
            amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot was killed by signal %d",
                       WTERMSIG(status));
        amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot failed (exit %d): %s",
                   WEXITSTATUS(status), line[0] ? line : "no message");
    }
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(tmp, "rb");
    size_t have = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    if (have != sizeof head || memcmp(head, magic, sizeof magic)) {
        amlfs_out_abandon(tmp);
        amlfs_fail(AMLFS_EXIT_FAILED, script_path, "gnuplot exited 0 but wrote no PNG%s%s",
                   line[0] ? ": " : "", line);
    }
    if (line[0])
        amlfs_note("%s: gnuplot says: %s", script_path, line);
    amlfs_out_commit(tmp);
}

/* ---- index.html ---------------------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A number for a person: %.4g, or an en dash when absent. */
static void html_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("&ndash;", f);
    else
        fprintf(f, "%.4g", v);
}

static void html_row(FILE *f, const char *name, const char *value)
{
    fputs("<tr><th>", f);
    html_text(f, name);
    fputs("</th><td>", f);
    html_text(f, value);
    fputs("</td></tr>\n", f);
}

static void html_figure(FILE *f, const char *png, const char *alt, const char *caption)
{
    fprintf(f, "<figure>\n<img src=\"%s\" alt=\"", png);
    html_text(f, alt);
    fprintf(f, "\">\n<figcaption><a href=\"%s\">%s</a>: ", png, png);
    fputs(caption, f); /* captions are this file's own HTML */
    fputs("</figcaption>\n</figure>\n", f);
}

static void write_index(const run_info *run, const run_info *ctl)
{
    const amlfs_policy *p1 = &run->policy[0], *last = &run->policy[run->npolicies - 1];
    const char *epochs_cfg = config_value(run, "epochs");
    out_file o;
    out_open(&o, run, "index.html");
    FILE *f = o.f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>amlfs report: ",
          f);
    html_text(f, run->dir);
    fputs("</title>\n<style>\n"
          "body { font-family: sans-serif; max-width: 80em; margin: 1em auto; padding: 0 1em; }\n"
          "table { border-collapse: collapse; margin: 0.5em 0; }\n"
          "th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }\n"
          "td.n { text-align: right; font-variant-numeric: tabular-nums; }\n"
          "figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #eee; }\n"
          "figcaption { max-width: 60em; }\n"
          "</style>\n</head>\n<body>\n<h1>amlfs report: ",
          f);
    html_text(f, run->dir);
    fputs("</h1>\n", f);

    /* the result */
    char buf[1024];
    fputs("<h2>Result</h2>\n<table>\n", f);
    /* first, what the search bought: the test top-1 against the control's */
    if (ctl && run->has_final && ctl->has_final && !strcmp(run->final_status, "ok") &&
        !strcmp(ctl->final_status, "ok")) {
        double diff = 100.0 * (run->final_top1 - ctl->final_top1);
        snprintf(buf, sizeof buf, "test top-1 %.4f against the control's %.4f: %+.2f points "
                                  "(%s)",
                 run->final_top1, ctl->final_top1, diff,
                 diff > 0 ? "above the control, one run of each"
                          : "not above the control, one run of each");
        html_row(f, "against the control", buf);
    }
    if (run->has_final) {
        html_row(f, "status", "finished: the best model of the last epoch was evaluated once "
                              "on the test split");
    } else if (run->stopped[0]) {
        snprintf(buf, sizeof buf, "stopped (RUN/STOPPED): %s", run->stopped);
        html_row(f, "status", buf);
    } else {
        html_row(f, "status", "unfinished: no final/eval-test.h5 yet");
    }
    if (epochs_cfg)
        snprintf(buf, sizeof buf, "%d of %s", run->nepochs, epochs_cfg);
    else
        snprintf(buf, sizeof buf, "%d", run->nepochs);
    html_row(f, "epochs rewarded", buf);
    snprintf(buf, sizeof buf, "%s, %s space, %s form, M = %lld, sigma = %g (intercepts %g), "
                              "policy lr %g, mu_1 = %s, sampling %s, shaping %s",
             p1->mode, p1->space, p1->form, (long long)p1->intervals, p1->sigma,
             p1->sigma_intercept, p1->lr, p1->init, p1->sampling, p1->shaping);
    html_row(f, "search", buf);
    if (run->nepochs) {
        const epoch_info *ep = &run->epoch[run->nepochs - 1];
        if (ep->r.best >= 0)
            snprintf(buf, sizeof buf, "%.4f (%s, epoch %d, sample %lld of %lld)",
                     ep->r.best_reward, ep->r.metric, run->nepochs, (long long)ep->r.best,
                     (long long)ep->r.samples);
        else
            snprintf(buf, sizeof buf, "none: no finite reward in epoch %d", run->nepochs);
        html_row(f, "best validation reward, last epoch", buf);
    }
    if (run->has_final) {
        if (!strcmp(run->final_status, "ok"))
            snprintf(buf, sizeof buf, "top-1 %.4f, top-5 %.4f, loss %.4f (%lld images, "
                                      "model of epoch %lld)",
                     run->final_top1, run->final_top5, run->final_loss,
                     (long long)run->final_images, (long long)run->final_epoch);
        else
            snprintf(buf, sizeof buf, "%s: no metrics (model of epoch %lld)",
                     run->final_status, (long long)run->final_epoch);
        html_row(f, "test (final/eval-test.h5)", buf);
    }
    snprintf(buf, sizeof buf, "policy of epoch %d (%s)", run->npolicies, last->last_update);
    html_row(f, "final mu", buf);
    fputs("</table>\n", f);

    /* what the search bought against its control */
    if (ctl) {
        fputs("<h2>Against the control</h2>\n<table>\n", f);
        snprintf(buf, sizeof buf, "%s (mode %s, %d epoch%s rewarded)", ctl->dir,
                 ctl->policy[0].mode, ctl->nepochs, ctl->nepochs == 1 ? "" : "s");
        html_row(f, "control run", buf);
        int e = run->nepochs < ctl->nepochs ? run->nepochs : ctl->nepochs;
        if (e > 0) {
            double a = best_of(run, e), b = best_of(ctl, e);
            snprintf(buf, sizeof buf, "run %.4f, control %.4f: %+.4f (epoch %d, %s)", a, b,
                     a - b, e, run->epoch[0].r.metric);
            html_row(f, "best validation reward, last common epoch", buf);
        }
        if (run->has_final && ctl->has_final && !strcmp(run->final_status, "ok") &&
            !strcmp(ctl->final_status, "ok"))
            snprintf(buf, sizeof buf, "run %.4f, control %.4f: %+.2f points", run->final_top1,
                     ctl->final_top1, 100.0 * (run->final_top1 - ctl->final_top1));
        else
            snprintf(buf, sizeof buf, "not both evaluated on test yet (final/eval-test.h5)");
        html_row(f, "test top-1", buf);
        fputs("</table>\n", f);
        html_figure(f, "control.png", "best validation reward, run and control",
                    "the best validation reward of each epoch (the sample that becomes the next "
                    "epoch's start) in the run and in its control, over the epochs "
                    "(control.csv).");
    }

    /* the figures */
    fputs("<h2>Figures</h2>\n", f);
    html_figure(f, "mu.png", "mu over the epochs",
                "every component of &mu; over the epochs, one panel per group of "
                "&theta; = [a<sub>t</sub>, b<sub>t</sub>, a<sub>&tau;</sub>, "
                "b<sub>&tau;</sub>], one line per interval of the transform's domain "
                "(as the paper's Figure 3). The x axis is the epoch that the policy samples; "
                "the last point is the policy after the last update.");
    html_figure(f, "transforms.png", "t and tau at the final mu",
                run->space == AMLFS_SPACE_COSINE
                    ? "the transforms at the final &mu;: t on the target cosine over [-1, 1] "
                      "(the target logit is s&middot;t(cos &theta;<sub>y</sub>)) and &tau; on "
                      "[0, 1], with the identity dashed and &mu;<sub>1</sub> dash-dotted when it "
                      "differs. Gaps are the jumps between intervals (the biases are free)."
                    : "the transforms at the final &mu;: t on p<sub>y</sub> and &tau; on "
                      "t(p<sub>y</sub>), both over [0, 1], as sampled values before the "
                      "clamps (t to [&epsilon;, 1], &tau; to [&epsilon;, &infin;)); the "
                      "identity (cross-entropy) dashed, &mu;<sub>1</sub> dash-dotted when it "
                      "differs. Gaps are the jumps between intervals (the biases are free).");
    html_figure(f, "weight.png", "gradient weight relative to cross-entropy",
                run->space == AMLFS_SPACE_COSINE
                    ? "the gradient weight of the final &mu;'s loss relative to the "
                      "normalised softmax, &minus;p<sub>y</sub> &part;L/&part;p<sub>y</sub>, "
                      "against p<sub>y</sub> = softmax(f')<sub>y</sub>, computed by the "
                      "training kernel (it depends on p<sub>y</sub> through &tau; alone; t "
                      "sets where a sample lies on this axis). 1 (dashed) is the normalised "
                      "softmax; 0 where a clamp is active; values beyond the frame are cut "
                      "(as the paper's Figure 4)."
                    : "the gradient weight of the final &mu;'s loss relative to "
                      "cross-entropy, &minus;p<sub>y</sub> &part;L/&part;p<sub>y</sub>, "
                      "against p<sub>y</sub>, computed by the training kernel: "
                      "&part;L/&part;f<sub>j</sub> = w (p<sub>j</sub> &minus; 1[j = y]). "
                      "Cross-entropy's weight is 1 (dashed); below 1 a sample's gradient is "
                      "damped, above 1 amplified, 0 where a clamp is active; values beyond "
                      "the frame are cut (as the paper's Figure 4).");
    html_figure(f, "rewards.png", "rewards per epoch",
                "each epoch's validation rewards (one point per sample with a finite "
                "reward), their mean, and the best sample, whose model every sample of the "
                "next epoch starts from; samples without a reward are counted at the "
                "bottom.");

    /* the epochs */
    fputs("<h2>Epochs</h2>\n", f);
    if (!run->nepochs) {
        fputs("<p>No epoch has rewards yet.</p>\n", f);
    } else {
        fputs("<table>\n<tr><th>epoch</th><th>B</th><th>finite</th><th>min</th><th>mean</th>"
              "<th>max</th><th>best</th><th>best reward</th><th>update</th>"
              "<th>|&Delta;&mu;|</th><th>seconds (epoch)</th></tr>\n",
              f);
        for (int e = 1; e <= run->nepochs; e++) {
            const epoch_info *ep = &run->epoch[e - 1];
            fprintf(f, "<tr><td class=\"n\">%d</td><td class=\"n\">%lld</td>"
                       "<td class=\"n\">%lld</td><td class=\"n\">",
                    e, (long long)ep->r.samples, (long long)ep->r.finite);
            html_num(f, ep->min);
            fputs("</td><td class=\"n\">", f);
            html_num(f, ep->mean);
            fputs("</td><td class=\"n\">", f);
            html_num(f, ep->max);
            fputs("</td><td class=\"n\">", f);
            if (ep->r.best >= 0)
                fprintf(f, "%lld", (long long)ep->r.best);
            else
                fputs("&ndash;", f);
            fputs("</td><td class=\"n\">", f);
            html_num(f, ep->r.best >= 0 ? ep->r.best_reward : NAN);
            fputs("</td><td>", f);
            html_text(f, update_of(run, e));
            fputs("</td><td class=\"n\">", f);
            html_num(f, mu_step(run, e));
            fputs("</td><td class=\"n\">", f);
            int ph = -1;
            for (int p = 0; p < run->nphases; p++)
                if (!strcmp(run->phase[p], "epoch"))
                    ph = p;
            html_num(f, ph >= 0 && ep->timed[ph] ? ep->seconds[ph] : NAN);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }

    /* the tables and the plots' sources */
    fputs("<h2>Tables</h2>\n<ul>\n"
          "<li><a href=\"epochs.csv\">epochs.csv</a>: per epoch B, the finite rewards, reward "
          "min/mean/max, the best sample and its reward, the policy update, "
          "|&mu;<sub>e+1</sub> &minus; &mu;<sub>e</sub>| and the wall-clock seconds of each "
          "phase",
          f);
    fputs(run->has_times ? " (from logs/times.csv)" : " (empty: the run has no logs/times.csv)",
          f);
    fputs("</li>\n"
          "<li><a href=\"mu.csv\">mu.csv</a>: &mu; of every policy, a_t, b_t, a_tau, b_tau "
          "per interval</li>\n"
          "<li><a href=\"rewards.csv\">rewards.csv</a>: every sample's reward (empty where "
          "excluded), R&#770;, its exclusion code (" EXCLUDED_CODES ") and whether it was "
          "the best</li>\n"
          "<li>the plots' data and gnuplot scripts (<code>gnuplot NAME.gp</code> in this "
          "directory redraws NAME.png): "
          "<a href=\"mu.dat\">mu.dat</a> <a href=\"mu.gp\">mu.gp</a>, "
          "<a href=\"transforms.dat\">transforms.dat</a> "
          "<a href=\"transforms.gp\">transforms.gp</a>, "
          "<a href=\"weight.dat\">weight.dat</a> <a href=\"weight.gp\">weight.gp</a>, "
          "<a href=\"rewards.dat\">rewards.dat</a> <a href=\"rewards.gp\">rewards.gp</a></li>\n"
          "</ul>\n",
          f);

    /* the config */
    fputs("<h2>Config</h2>\n", f);
    if (!run->config.n) {
        fputs("<p>RUN/config holds no settings.</p>\n", f);
    } else {
        fputs("<table>\n", f);
        for (int i = 0; i < run->config.n; i++)
            html_row(f, run->config.entry[i].key, run->config.entry[i].value);
        fputs("</table>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    out_close(&o);
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-report");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"control", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    opterr = 0;
    const char *control = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            control = optarg;
        else
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
    }
    if (argc - optind != 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "expected one run directory (see --help)");

    run_info run, ctl;
    read_run(&run, argv[optind]);
    if (control) {
        read_run(&ctl, control);
        check_control(&run, &ctl);
    }
    if (mkdir(run.report, 0777) != 0 && errno != EEXIST)
        amlfs_fail(AMLFS_EXIT_FAILED, run.report, "cannot create: %s", strerror(errno));

    write_epochs_csv(&run);
    write_mu_csv(&run);
    write_rewards_csv(&run);
    write_mu_dat(&run);
    write_transforms_dat(&run);
    write_weight_dat(&run);
    write_rewards_dat(&run);
    write_mu_gp(&run);
    write_transforms_gp(&run);
    write_weight_gp(&run);
    write_rewards_gp(&run);
    draw(&run, "mu.gp", "mu.png");
    draw(&run, "transforms.gp", "transforms.png");
    draw(&run, "weight.gp", "weight.png");
    draw(&run, "rewards.gp", "rewards.png");
    if (control) {
        write_control_csv(&run, &ctl);
        write_control_dat(&run, &ctl);
        write_control_gp(&run, &ctl);
        draw(&run, "control.gp", "control.png");
    }
    write_index(&run, control ? &ctl : NULL);
    printf("%s/index.html\n", run.report);
    if (control)
        free_run(&ctl);
    free_run(&run);
    return AMLFS_EXIT_OK;
}
