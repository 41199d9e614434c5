/* amlfs-sample: the B losses of one epoch, theta_i ~ N(mu, sigma^2 I), drawn from the
 * Philox stream (seed, epoch, i) so any machine draws the same theta_i. */
#include "h5io.h"
#include "policy.h"
#include "search.h"
#include "tool.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-sample --policy policy.h5 --epoch E --samples B --out thetas.h5\n"
    "\n"
    "Draws the epoch's B losses from the policy: theta_i = mu + sigma eps_i, eps_i the\n"
    "normals of Philox stream (seed, E, i); antithetic sampling mirrors the first B/2\n"
    "draws; fixed and replay modes write B copies of mu. Same inputs, same bytes.\n"
    "\n"
    "  --policy FILE    the policy of epoch E\n"
    "  --epoch E        must equal the policy's epoch\n"
    "  --samples B      number of samples, B >= 2 (B >= 1 in replay; even for antithetic)\n"
    "  --out FILE       the thetas file to write (atomically)\n"
    "  --replay-thetas FILE, --replay-index I\n"
    "                   replay mode: copies of row I of a finished run's thetas (its\n"
    "                   best of the epoch) instead of mu, to replay a schedule\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-sample");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"policy", required_argument, 0, 'p'},
                                         {"epoch", required_argument, 0, 'e'},
                                         {"samples", required_argument, 0, 'b'},
                                         {"out", required_argument, 0, 'o'},
                                         {"replay-thetas", required_argument, 0, 'r'},
                                         {"replay-index", required_argument, 0, 'x'},
                                         {0, 0, 0, 0}};
    const char *replay_path = NULL;
    long long replay_index = -1;
    const char *policy_path = NULL, *out = NULL;
    long long epoch = -1, samples = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': policy_path = optarg; break;
        case 'e': epoch = amlfs_arg_int("--epoch", optarg, 1, 1000000); break;
        case 'b': samples = amlfs_arg_int("--samples", optarg, 0, 65536); break;
        case 'o': out = optarg; break;
        case 'r': replay_path = optarg; break;
        case 'x': replay_index = amlfs_arg_int("--replay-index", optarg, 0, 65535); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!policy_path || !out || epoch < 0 || samples < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--policy, --epoch, --samples and --out are required");

    amlfs_policy p;
    amlfs_policy_read(&p, policy_path);
    int mode = 0, sampling = 0;
    while (strcmp(amlfs_mode_names[mode], p.mode))
        mode++;
    sampling = strcmp(p.sampling, "plain") ? SAMPLING_ANTITHETIC : SAMPLING_PLAIN;
    if (epoch != p.epoch)
        amlfs_fail(AMLFS_EXIT_USAGE, policy_path, "samples epoch %lld, --epoch says %lld",
                   (long long)p.epoch, epoch);
    if (samples < 2 && mode != MODE_REPLAY)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--samples: B = %lld, the search needs B >= 2 (B = 1 only in replay)",
                   samples);
    if (samples < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--samples: B = %lld, expected B >= 1", samples);
    if (sampling == SAMPLING_ANTITHETIC && samples % 2 && mode != MODE_FIXED &&
        mode != MODE_REPLAY)
        amlfs_fail(AMLFS_EXIT_USAGE, policy_path,
                   "antithetic sampling needs an even B, --samples says %lld", samples);

    amlfs_thetas t;
    memset(&t, 0, sizeof t);
    amlfs_thetas_alloc(&t, samples, p.intervals);
    int d = (int)(4 * p.intervals);
    memcpy(t.mu, p.mu, sizeof(double) * (size_t)d);
    if ((replay_path != NULL) != (replay_index >= 0))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--replay-thetas and --replay-index go together");
    if (replay_path) {
        if (mode != MODE_REPLAY)
            amlfs_fail(AMLFS_EXIT_USAGE, policy_path, "--replay-thetas needs a replay-mode "
                       "policy, this one is in %s mode", p.mode);
        amlfs_thetas src;
        amlfs_thetas_read(&src, replay_path);
        if (replay_index >= src.samples)
            amlfs_fail(AMLFS_EXIT_USAGE, replay_path, "--replay-index %lld, but B = %lld",
                       replay_index, (long long)src.samples);
        if (src.intervals != p.intervals || strcmp(src.space, p.space))
            amlfs_fail(AMLFS_EXIT_USAGE, replay_path, "M = %lld in space %s, the policy has "
                       "M = %lld in space %s", (long long)src.intervals, src.space,
                       (long long)p.intervals, p.space);
        memcpy(p.mu, src.theta + (size_t)replay_index * d, sizeof(double) * (size_t)d);
        memcpy(t.mu, p.mu, sizeof(double) * (size_t)d);
        amlfs_thetas_free(&src);
    }
    amlfs_draw_thetas(p.mu, d, (int)samples, p.sigma, (uint32_t)p.seed, (uint32_t)p.epoch,
                      (amlfs_mode)mode, (amlfs_sampling)sampling, t.theta);
    t.epoch = p.epoch;
    t.seed = p.seed;
    t.sigma = p.sigma;
    memcpy(t.space, p.space, sizeof t.space);
    memcpy(t.mode, p.mode, sizeof t.mode);
    memcpy(t.sampling, p.sampling, sizeof t.sampling);
    memcpy(t.shaping, p.shaping, sizeof t.shaping);
    amlfs_thetas_write(&t, out);
    printf("%s\n", out);
    amlfs_thetas_free(&t);
    amlfs_policy_free(&p);
    return AMLFS_EXIT_OK;
}
