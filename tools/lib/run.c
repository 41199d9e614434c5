/* run.c: the reader of a run directory (run.h).
 * Depends on: policy (policy, thetas and rewards files), h5io and h5get (the eval
 * file), tool. */
#include "run.h"
#include "h5io.h"
#include "tool.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void amlfs_run_path(char *buf, size_t n, const char *dir, const char *fmt, ...)
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

int amlfs_run_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void *grow(void *p, size_t count, size_t size)
{
    void *q = realloc(p, count * size);
    if (!q)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory (%zu x %zu bytes)", count, size);
    return q;
}

/* The policies policy/epoch-0001.h5, epoch-0002.h5, ... up to the first missing one. */
static void read_policies(amlfs_run *run)
{
    for (int k = 1;; k++) {
        char path[AMLFS_RUN_PATH_LEN];
        amlfs_run_path(path, sizeof path, run->dir, "policy/epoch-%04d.h5", k);
        if (!amlfs_run_is_file(path))
            break;
        run->policy = grow(run->policy, (size_t)k, sizeof *run->policy);
        amlfs_policy *p = &run->policy[k - 1];
        amlfs_policy_read(p, path);
        run->npolicies = k;
        if (p->epoch != k)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@epoch: %lld, expected %d as its name says",
                       (long long)p->epoch, k);
        if (k == 1) {
            run->intervals = (int)p->intervals;
            run->space = p->space;
        } else if (p->intervals != run->intervals || p->space != run->space) {
            amlfs_fail(AMLFS_EXIT_USAGE, path, "M = %lld in space %s, epoch 1's policy has "
                       "M = %d in space %s", (long long)p->intervals,
                       amlfs_space_names[p->space], run->intervals,
                       amlfs_space_names[run->space]);
        }
    }
}

/* min, mean, max over the finite rewards of an epoch and the count of the others. */
static void summarise(amlfs_run_epoch *ep)
{
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

/* The epochs with a rewards file: epoch-0001/rewards.h5, ... up to the first missing. */
static void read_epochs(amlfs_run *run)
{
    for (int e = 1;; e++) {
        char rpath[AMLFS_RUN_PATH_LEN], tpath[AMLFS_RUN_PATH_LEN];
        amlfs_run_path(rpath, sizeof rpath, run->dir, "epoch-%04d/rewards.h5", e);
        if (!amlfs_run_is_file(rpath))
            break;
        amlfs_run_path(tpath, sizeof tpath, run->dir, "epoch-%04d/thetas.h5", e);
        if (e > run->npolicies)
            amlfs_fail(AMLFS_EXIT_USAGE, rpath, "epoch %d has rewards but no policy "
                       "(policy/epoch-%04d.h5 is missing)", e, e);
        run->epoch = grow(run->epoch, (size_t)e, sizeof *run->epoch);
        amlfs_run_epoch *ep = &run->epoch[e - 1];
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
        summarise(ep);
    }
}

static void read_final(amlfs_run *run, const char *path)
{
    hid_t f = amlfs_h5_open(path, "eval");
    char split[16];
    amlfs_attr_str(f, "/", "split", split, sizeof split);
    run->final_status = amlfs_attr_enum(f, "/", "status", amlfs_status_names);
    run->final_epoch = amlfs_attr_i64(f, "/", "epoch");
    run->final_images = amlfs_attr_i64(f, "/", "images");
    run->final_top1 = amlfs_attr_f64(f, "/", "top1");
    run->final_top5 = amlfs_attr_f64(f, "/", "top5");
    run->final_loss = amlfs_attr_f64(f, "/", "loss");
    char task[32] = "classification";
    if (H5Aexists(f, "task") > 0)
        amlfs_attr_str(f, "/", "task", task, sizeof task);
    run->final_face = !strcmp(task, "face");
    run->final_reid = !strcmp(task, "reid");
    if (run->final_reid) {
        run->final_map = amlfs_attr_f64(f, "/", "mAP");
        run->final_rank1 = amlfs_attr_f64(f, "/", "rank1");
    }
    if (run->final_face) {
        run->final_accuracy = amlfs_attr_f64(f, "/", "accuracy");
        run->final_tar = amlfs_attr_f64(f, "/", "tar_at_far");
        run->final_rank1 = amlfs_attr_f64(f, "/", "rank1");
    }
    H5Fclose(f);
    if (strcmp(split, "test"))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@split: '%s', expected 'test'", split);
    run->has_final = 1;
}

/* The first line of RUN/STOPPED, the driver's reason for stopping, when it exists. */
static void read_stopped(amlfs_run *run, const char *path)
{
    FILE *f = amlfs_run_is_file(path) ? fopen(path, "r") : NULL;
    if (f) {
        if (!fgets(run->stopped, sizeof run->stopped, f))
            snprintf(run->stopped, sizeof run->stopped, "no reason recorded");
        run->stopped[strcspn(run->stopped, "\n")] = '\0';
        fclose(f);
    }
}

void amlfs_run_read(amlfs_run *run, const char *dir)
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
    char path[AMLFS_RUN_PATH_LEN];
    amlfs_run_path(path, sizeof path, run->dir, "config");
    if (!amlfs_run_is_file(path))
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "not a run directory (no config)");
    amlfs_run_path(path, sizeof path, run->dir, "policy/epoch-0001.h5");
    if (!amlfs_run_is_file(path))
        amlfs_fail(AMLFS_EXIT_USAGE, run->dir, "not a run directory (no policy/epoch-0001.h5)");
    read_policies(run);
    read_epochs(run);
    amlfs_run_path(path, sizeof path, run->dir, "final/eval-test.h5");
    if (amlfs_run_is_file(path))
        read_final(run, path);
    amlfs_run_path(path, sizeof path, run->dir, "STOPPED");
    read_stopped(run, path);
}

void amlfs_run_free(amlfs_run *run)
{
    for (int k = 0; k < run->npolicies; k++)
        amlfs_policy_free(&run->policy[k]);
    free(run->policy);
    for (int k = 0; k < run->nepochs; k++)
        amlfs_rewards_free(&run->epoch[k].r);
    free(run->epoch);
    run->policy = NULL;
    run->epoch = NULL;
    run->npolicies = run->nepochs = 0;
}

const char *amlfs_run_update_of(const amlfs_run *run, int e)
{
    return e < run->npolicies ? run->policy[e].last_update : "not updated";
}

double amlfs_run_mu_step(const amlfs_run *run, int e)
{
    if (e >= run->npolicies)
        return NAN;
    const double *a = run->policy[e - 1].mu, *b = run->policy[e].mu;
    double s = 0;
    for (int j = 0; j < 4 * run->intervals; j++)
        s += (b[j] - a[j]) * (b[j] - a[j]);
    return sqrt(s);
}

double amlfs_run_best_of(const amlfs_run *run, int e)
{
    if (e > run->nepochs || run->epoch[e - 1].r.best < 0)
        return NAN;
    return run->epoch[e - 1].r.best_reward;
}

double amlfs_run_headline(const amlfs_run *run)
{
    return run->final_face ? run->final_accuracy : run->final_reid ? run->final_map
                                                                   : run->final_top1;
}

const char *amlfs_run_headline_name(const amlfs_run *run)
{
    return run->final_face ? "verification accuracy" : run->final_reid ? "mAP" : "top-1";
}
