/* amlfs-init: the epoch-1 policy of a search (DESIGN.md 1, the search; 2, the tools). */
#include "amlfs_kernels.h"
#include "h5io.h"
#include "policy.h"
#include "search.h"
#include "tool.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-init --policy-only --out policy.h5 [options]\n"
    "\n"
    "Writes the policy that samples epoch 1: mu_1, sigma, the Adam state and the\n"
    "search's settings. mu_1 is the identity (cross-entropy) or the least-squares fit of\n"
    "the space's theta to a classic loss; the fit's maximum error is recorded.\n"
    "\n"
    "  --out FILE          the policy file to write (atomically)\n"
    "  --intervals M       intervals of each piecewise-linear transform (default 6)\n"
    "  --space S           prob | cosine (default prob)\n"
    "  --sigma X           standard deviation of the sampling distribution (default 0.2)\n"
    "  --policy-lr X       Adam learning rate of mu (default 0.05)\n"
    "  --init L            identity | focal | cosface | arcface | sphereface\n"
    "                      (default identity; the margins need --space cosine)\n"
    "  --mode X            amlfs | random | fixed | replay (default amlfs)\n"
    "  --from FILE         replay: the finished run's last policy, whose mu is replayed\n"
    "  --sampling X        plain | antithetic (default plain; antithetic needs even B)\n"
    "  --shaping X         zscore | rank (default zscore)\n"
    "  --seed S            the run's seed, 0 to 4294967295 (default 1)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

static const char *const spaces[] = {"prob", "cosine", NULL};
static const char *const inits[] = {"identity", "focal", "cosface", "arcface", "sphereface",
                                    NULL};

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-init");
    amlfs_help_version(argc, argv, usage);
    enum { O_POLICY_ONLY = 256, O_OUT, O_INTERVALS, O_SPACE, O_SIGMA, O_LR, O_INIT, O_MODE,
           O_FROM, O_SAMPLING, O_SHAPING, O_SEED };
    static const struct option opts[] = {
        {"policy-only", no_argument, 0, O_POLICY_ONLY},
        {"out", required_argument, 0, O_OUT},
        {"intervals", required_argument, 0, O_INTERVALS},
        {"space", required_argument, 0, O_SPACE},
        {"sigma", required_argument, 0, O_SIGMA},
        {"policy-lr", required_argument, 0, O_LR},
        {"init", required_argument, 0, O_INIT},
        {"mode", required_argument, 0, O_MODE},
        {"from", required_argument, 0, O_FROM},
        {"sampling", required_argument, 0, O_SAMPLING},
        {"shaping", required_argument, 0, O_SHAPING},
        {"seed", required_argument, 0, O_SEED},
        {0, 0, 0, 0}};
    int policy_only = 0, intervals = 6, intervals_set = 0, space = 0, space_set = 0,
        init = 0, mode = MODE_AMLFS, sampling = SAMPLING_PLAIN, shaping = SHAPING_ZSCORE;
    double sigma = 0.2, lr = 0.05;
    long long seed = 1;
    const char *out = NULL, *from = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_POLICY_ONLY: policy_only = 1; break;
        case O_OUT: out = optarg; break;
        case O_INTERVALS:
            /* M < 1 has no transform; the bound above keeps files and fits small */
            intervals = (int)amlfs_arg_int("--intervals", optarg, 1, 4096);
            intervals_set = 1;
            break;
        case O_SPACE:
            space = amlfs_arg_choice("--space", optarg, spaces);
            space_set = 1;
            break;
        case O_SIGMA:
            sigma = amlfs_arg_double("--sigma", optarg, 0, 1e6);
            if (!(sigma > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--sigma: %g, expected sigma > 0", sigma);
            break;
        case O_LR:
            lr = amlfs_arg_double("--policy-lr", optarg, 0, 1e6);
            if (!(lr > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--policy-lr: %g, expected > 0", lr);
            break;
        case O_INIT: init = amlfs_arg_choice("--init", optarg, inits); break;
        case O_MODE: mode = amlfs_arg_choice("--mode", optarg, amlfs_mode_names); break;
        case O_FROM: from = optarg; break;
        case O_SAMPLING:
            sampling = amlfs_arg_choice("--sampling", optarg, amlfs_sampling_names);
            break;
        case O_SHAPING:
            shaping = amlfs_arg_choice("--shaping", optarg, amlfs_shaping_names);
            break;
        case O_SEED: seed = amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!policy_only)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give --policy-only (see --help)");
    if (!out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--out is required");
    if ((mode == MODE_REPLAY) != (from != NULL))
        amlfs_fail(AMLFS_EXIT_USAGE, from, mode == MODE_REPLAY
                                               ? "--mode replay needs --from POLICY.h5"
                                               : "--from is for --mode replay only");

    amlfs_policy p;
    memset(&p, 0, sizeof p);
    if (from) {
        /* replay trains one model on a finished run's final mu: that mu is mu_1 */
        amlfs_policy src;
        amlfs_policy_read(&src, from);
        if (intervals_set && intervals != src.intervals)
            amlfs_fail(AMLFS_EXIT_USAGE, from, "has M = %lld, --intervals says %d",
                       (long long)src.intervals, intervals);
        if (space_set && strcmp(spaces[space], src.space))
            amlfs_fail(AMLFS_EXIT_USAGE, from, "has space %s, --space says %s", src.space,
                       spaces[space]);
        intervals = (int)src.intervals;
        space = strcmp(src.space, "prob") ? 1 : 0;
        amlfs_policy_alloc(&p, intervals);
        memcpy(p.mu, src.mu, sizeof(double) * 4 * (size_t)intervals);
        snprintf(p.init, sizeof p.init, "%s", src.init);
        p.init_max_error = src.init_max_error;
        amlfs_policy_free(&src);
    } else {
        amlfs_policy_alloc(&p, intervals);
        double err = 0.0;
        if (amlfs_fit_theta((amlfs_init_kind)init,
                            space ? AMLFS_SPACE_COSINE : AMLFS_SPACE_PROB, intervals, p.mu,
                            &err) != 0)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                       "--init %s is a margin loss, defined in the cosine space only "
                       "(add --space cosine)",
                       inits[init]);
        snprintf(p.init, sizeof p.init, "%s", inits[init]);
        p.init_max_error = err;
    }
    memcpy(p.mu_init, p.mu, sizeof(double) * 4 * (size_t)intervals);
    p.epoch = 1;
    p.adam_step = 0;
    p.seed = seed;
    snprintf(p.space, sizeof p.space, "%s", spaces[space]);
    snprintf(p.mode, sizeof p.mode, "%s", amlfs_mode_names[mode]);
    snprintf(p.sampling, sizeof p.sampling, "%s", amlfs_sampling_names[sampling]);
    snprintf(p.shaping, sizeof p.shaping, "%s", amlfs_shaping_names[shaping]);
    snprintf(p.last_update, sizeof p.last_update, "init");
    p.sigma = sigma;
    p.lr = lr;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.adam_eps = 1e-8;
    amlfs_policy_write(&p, out);
    printf("%s\n", out);
    amlfs_policy_free(&p);
    return AMLFS_EXIT_OK;
}
