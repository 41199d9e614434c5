/* amlfs-sample: the B losses of one epoch, draws d_i ~ N(mu, diag(sigma^2)) from the
 * Philox stream (seed, epoch, i) so any machine draws the same d_i, and theta_i, the
 * slopes and biases of d_i in the policy's form (DESIGN.md 1). */
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
    "Draws the epoch's B losses from the policy: d_i = mu + sigma eps_i per coordinate,\n"
    "eps_i the normals of Philox stream (seed, E, i); antithetic sampling mirrors the\n"
    "first B/2 draws; fixed and replay modes write B copies of mu. /draw holds the draws,\n"
    "/theta the slopes and biases each stands for in the policy's form (free: the same;\n"
    "anchored: continuous transforms, slopes below the floor raised to it, counted in\n"
    "@floored). The policy's loss (searched, or an exact margin loss of a fixed\n"
    "baseline) is copied into the thetas' attribute loss. Same inputs, same bytes.\n"
    "\n"
    "  --policy FILE    the policy of epoch E (amlfs-init, amlfs-update), or a file\n"
    "                   written by hand without the root attribute 'schema': /mu (4M)\n"
    "                   float64 or float32, in the free form (the slopes and biases\n"
    "                   [a_t, b_t, a_tau, b_tau], M each) unless the attribute form\n"
    "                   says anchored; the optional root attributes space, form, sigma,\n"
    "                   sigma_intercept, slope_floor, lr, seed, epoch (1), mode,\n"
    "                   sampling, shaping and a /sigma (4M) default as amlfs-init's\n"
    "  --epoch E        must equal the policy's epoch\n"
    "  --samples B      number of samples, B >= 2 (B >= 1 in fixed and replay modes: one\n"
    "                   model; even for antithetic)\n"
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
    amlfs_mode mode = p.mode;
    amlfs_sampling sampling = p.sampling;
    if (epoch != p.epoch)
        amlfs_fail(AMLFS_EXIT_USAGE, policy_path, "samples epoch %lld, --epoch says %lld",
                   (long long)p.epoch, epoch);
    if (samples < 2 && mode != MODE_REPLAY && mode != MODE_FIXED)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--samples: B = %lld, the search needs B >= 2 (B = 1 only in fixed and "
                   "replay modes)", samples);
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
                       "policy, this one is in %s mode", amlfs_mode_names[p.mode]);
        amlfs_thetas src;
        amlfs_thetas_read(&src, replay_path);
        if (replay_index >= src.samples)
            amlfs_fail(AMLFS_EXIT_USAGE, replay_path, "--replay-index %lld, but B = %lld",
                       replay_index, (long long)src.samples);
        if (src.intervals != p.intervals || src.space != p.space)
            amlfs_fail(AMLFS_EXIT_USAGE, replay_path, "M = %lld in space %s, the policy has "
                       "M = %lld in space %s", (long long)src.intervals,
                       amlfs_space_names[src.space], (long long)p.intervals,
                       amlfs_space_names[p.space]);
        if (src.form != p.form)
            amlfs_fail(AMLFS_EXIT_USAGE, replay_path, "holds %s-form draws, the policy is "
                       "in the %s form", amlfs_form_names[src.form], amlfs_form_names[p.form]);
        /* the draw: in the policy's form it stands for the replayed theta */
        memcpy(p.mu, src.draw + (size_t)replay_index * d, sizeof(double) * (size_t)d);
        memcpy(t.mu, p.mu, sizeof(double) * (size_t)d);
        amlfs_thetas_free(&src);
    }
    amlfs_draw_thetas(p.mu, d, (int)samples, p.sigma_of, (uint32_t)p.seed, (uint32_t)p.epoch,
                      mode, sampling, t.draw);
    t.floored = 0;
    for (long long i = 0; i < samples; i++)
        t.floored += amlfs_form_theta(p.form, p.space, (int)p.intervals, t.draw + (size_t)i * d,
                                      p.slope_floor, t.theta + (size_t)i * d);
    memcpy(t.sigma_of, p.sigma_of, sizeof(double) * (size_t)d);
    t.form = p.form;
    t.sigma_intercept = p.sigma_intercept;
    t.slope_floor = p.slope_floor;
    t.epoch = p.epoch;
    t.seed = p.seed;
    t.sigma = p.sigma;
    t.space = p.space;
    t.mode = p.mode;
    t.sampling = p.sampling;
    t.shaping = p.shaping;
    t.loss = p.loss;
    amlfs_thetas_write(&t, out);
    printf("%s\n", out);
    amlfs_thetas_free(&t);
    amlfs_policy_free(&p);
    return AMLFS_EXIT_OK;
}
