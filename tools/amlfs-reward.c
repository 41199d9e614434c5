/* amlfs-reward: the epoch's rewards from its B eval files, shaped for the update
 * (DESIGN.md 1 steps 3-4). Missing, unreadable, diverged and non-finite evals are
 * excluded and recorded; they do not fail the tool. */
#include "checkpoint.h"
#include "h5io.h"
#include "policy.h"
#include "search.h"
#include "tool.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-reward --thetas thetas.h5 --metric top1 --out rewards.h5 EVAL0.h5 ...\n"
    "\n"
    "Reads the B eval files in sample-index order (a missing one still takes its place),\n"
    "takes the metric as reward, excludes what has none, normalises the finite rewards\n"
    "(z-score or centred ranks, as the policy says) and names the best sample. With\n"
    "fewer than 2 finite rewards or zero spread the update is skipped, reason recorded.\n"
    "\n"
    "  --thetas FILE    the epoch's thetas (B, epoch and shaping come from it)\n"
    "  --metric NAME    top1 | top5 | loss (loss is negated: higher is better) |\n"
    "                   accuracy (face verification) | rank1 (face identification,\n"
    "                   re-ID CMC rank-1) | mAP (re-ID)\n"
    "  --out FILE       the rewards file to write (atomically)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written (even with no finite reward: amlfs-broadcast then stops the\n"
    "run), 1 the write failed, 2 bad usage or input.\n";

/* The reward of one eval file, or an exclusion code. */
static int read_reward(const char *path, amlfs_metric metric, int64_t epoch, double *reward,
                       char *why, size_t n)
{
    *reward = NAN;
    hid_t f = amlfs_h5_try_open(path, "eval", why, n);
    if (f < 0)
        return strcmp(why, "no such file") ? EXCLUDED_INVALID : EXCLUDED_MISSING;
    amlfs_status status = amlfs_attr_enum(f, "/", "status", amlfs_status_names);
    int64_t e = amlfs_attr_i64(f, "/", "epoch");
    double v = amlfs_attr_f64(f, "/", amlfs_metric_names[metric]);
    H5Fclose(f);
    if (status == AMLFS_STATUS_DIVERGED) {
        snprintf(why, n, "diverged");
        return EXCLUDED_DIVERGED;
    }
    if (e != epoch) {
        snprintf(why, n, "eval of epoch %lld, expected %lld", (long long)e, (long long)epoch);
        return EXCLUDED_WRONG_EPOCH;
    }
    if (!isfinite(v)) {
        snprintf(why, n, "%s is %g", amlfs_metric_names[metric], v);
        return EXCLUDED_NONFINITE;
    }
    *reward = metric == METRIC_LOSS ? -v : v;
    return EXCLUDED_NO;
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-reward");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"thetas", required_argument, 0, 't'},
                                         {"metric", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *thetas_path = NULL, *out = NULL;
    int metric = -1, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': thetas_path = optarg; break;
        case 'm': metric = amlfs_arg_choice("--metric", optarg, amlfs_metric_names); break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (!thetas_path || !out || metric < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--thetas, --metric and --out are required");

    amlfs_thetas t;
    amlfs_thetas_read(&t, thetas_path);
    int b = (int)t.samples, given = argc - optind;
    if (given != b)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path,
                   "has B = %d samples, but %d eval files were given", b, given);

    amlfs_rewards r;
    memset(&r, 0, sizeof r);
    amlfs_rewards_alloc(&r, b);
    r.epoch = t.epoch;
    r.metric = (amlfs_metric)metric;
    r.shaping = t.shaping;
    for (int i = 0; i < b; i++) {
        char why[1024];
        const char *path = argv[optind + i];
        r.excluded[i] = (uint8_t)read_reward(path, r.metric, t.epoch, &r.raw[i], why,
                                             sizeof why);
        if (r.excluded[i])
            amlfs_note("sample %d excluded: %s: %s", i, path, why);
    }
    r.finite = amlfs_shape_rewards(r.raw, r.excluded, b, r.shaping, r.normalized,
                                   r.update_skipped, sizeof r.update_skipped);
    r.best = amlfs_best_sample(r.raw, r.excluded, b);
    r.best_reward = r.best >= 0 ? r.raw[r.best] : NAN;
    if (r.update_skipped[0])
        amlfs_note("epoch %lld: the policy update will be skipped: %s", (long long)r.epoch,
                   r.update_skipped);
    amlfs_rewards_write(&r, out);
    printf("%s\n", out);
    amlfs_rewards_free(&r);
    amlfs_thetas_free(&t);
    return AMLFS_EXIT_OK;
}
