/* amlfs-update: the next epoch's policy (DESIGN.md 1 steps 4-5): one REINFORCE + Adam
 * step on mu in amlfs mode, unless the rewards say the update is skipped. */
#include "h5io.h"
#include "policy.h"
#include "search.h"
#include "tool.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-update --policy policy.h5 --thetas thetas.h5 --rewards rewards.h5\n"
    "                    --out next.h5\n"
    "\n"
    "Writes the policy of the next epoch. In amlfs mode mu takes one Adam step up the\n"
    "REINFORCE gradient (1/F) sum_i R_i (d_i - mu) / sigma^2 over the searched\n"
    "coordinates (sigma > 0; d_i the draws, theta_i in the free form); when the rewards\n"
    "record a skipped update (fewer than 2 finite rewards, zero spread) mu and the Adam\n"
    "state stay as they are. In random, fixed and replay modes mu never changes.\n"
    "The new policy's last_update says which happened.\n"
    "\n"
    "  --policy FILE    the policy of epoch E\n"
    "  --thetas FILE    the thetas it drew for epoch E\n"
    "  --rewards FILE   the rewards of epoch E\n"
    "  --out FILE       the policy of epoch E+1 (written atomically)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-update");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"policy", required_argument, 0, 'p'},
                                         {"thetas", required_argument, 0, 't'},
                                         {"rewards", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *policy_path = NULL, *thetas_path = NULL, *rewards_path = NULL, *out = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': policy_path = optarg; break;
        case 't': thetas_path = optarg; break;
        case 'r': rewards_path = optarg; break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!policy_path || !thetas_path || !rewards_path || !out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--policy, --thetas, --rewards and --out are required");

    amlfs_policy p;
    amlfs_thetas t;
    amlfs_rewards r;
    amlfs_policy_read(&p, policy_path);
    amlfs_thetas_read(&t, thetas_path);
    amlfs_rewards_read(&r, rewards_path);
    int d = (int)(4 * p.intervals), b = (int)t.samples;
    if (t.epoch != p.epoch)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "thetas of epoch %lld, the policy's is %lld",
                   (long long)t.epoch, (long long)p.epoch);
    if (t.intervals != p.intervals || t.space != p.space)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "M = %lld in space %s, the policy has "
                   "M = %lld in space %s", (long long)t.intervals, amlfs_space_names[t.space],
                   (long long)p.intervals, amlfs_space_names[p.space]);
    if (t.form != p.form)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "holds %s-form draws, the policy %s is in "
                   "the %s form", amlfs_form_names[t.form], policy_path,
                   amlfs_form_names[p.form]);
    /* a replayed schedule's thetas hold the source run's draw, not this mu */
    int replayed = p.mode == MODE_REPLAY;
    if ((!replayed && memcmp(t.mu, p.mu, sizeof(double) * (size_t)d)) || t.sigma != p.sigma ||
        memcmp(t.sigma_of, p.sigma_of, sizeof(double) * (size_t)d) || t.seed != p.seed ||
        t.slope_floor != p.slope_floor)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "was not drawn from %s (mu, sigma, slope "
                   "floor or seed differ)", policy_path);
    if (r.epoch != p.epoch)
        amlfs_fail(AMLFS_EXIT_USAGE, rewards_path, "rewards of epoch %lld, the policy's is "
                   "%lld", (long long)r.epoch, (long long)p.epoch);
    if (r.samples != t.samples)
        amlfs_fail(AMLFS_EXIT_USAGE, rewards_path, "has B = %lld, the thetas have B = %lld",
                   (long long)r.samples, (long long)t.samples);

    if (p.mode != MODE_AMLFS) {
        snprintf(p.last_update, sizeof p.last_update, "not updated: %s mode",
                 amlfs_mode_names[p.mode]);
    } else if (r.update_skipped[0]) {
        snprintf(p.last_update, sizeof p.last_update, "skipped: %s", r.update_skipped);
        amlfs_note("epoch %lld: update skipped: %s", (long long)p.epoch, r.update_skipped);
    } else {
        p.adam_step = amlfs_adam_ascent(p.mu, p.adam_m, p.adam_v, p.adam_step, t.draw,
                                        r.normalized, r.excluded, b, d, p.sigma_of, p.lr,
                                        p.beta1, p.beta2, p.adam_eps, NULL);
        snprintf(p.last_update, sizeof p.last_update, "applied");
        for (int j = 0; j < d; j++)
            if (!isfinite(p.mu[j]))
                amlfs_fail(AMLFS_EXIT_FAILED, out, "the update made mu[%d] non-finite", j);
    }
    p.epoch += 1;
    amlfs_policy_write(&p, out);
    printf("%s\n", out);
    amlfs_policy_free(&p);
    amlfs_thetas_free(&t);
    amlfs_rewards_free(&r);
    return AMLFS_EXIT_OK;
}
