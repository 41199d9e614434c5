/* amlfs-broadcast: the best sample's checkpoint becomes the start of the next epoch
 * for every sample (DESIGN.md 1 step 6). The copy is byte for byte. */
#include "h5io.h"
#include "atomic_out.h"
#include "checkpoint.h"
#include "policy.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-broadcast --rewards rewards.h5 --out start.h5 CKPT0.h5 CKPT1.h5 ...\n"
    "\n"
    "Copies the checkpoint of the epoch's best sample (highest reward, lowest index on\n"
    "ties, as the rewards file names it) to the next epoch's start, after validating it\n"
    "against the checkpoint schema. The B checkpoints are given in sample-index order;\n"
    "only the winner's is read.\n"
    "\n"
    "  --rewards FILE   the epoch's rewards\n"
    "  --out FILE       the next epoch's start checkpoint (written atomically)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed or the epoch has no finite reward (the\n"
    "run stops), 2 bad usage or input.\n";

static void copy_file(const char *from, const char *to)
{
    const char *tmp = amlfs_out_begin(to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    if (!in)
        amlfs_fail(AMLFS_EXIT_USAGE, from, "cannot read: %s", strerror(errno));
    if (!out)
        amlfs_fail(AMLFS_EXIT_FAILED, to, "cannot write: %s", strerror(errno));
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            amlfs_fail(AMLFS_EXIT_FAILED, to, "cannot write: %s", strerror(errno));
    int read_error = ferror(in);
    fclose(in);
    if (read_error)
        amlfs_fail(AMLFS_EXIT_USAGE, from, "read error");
    if (fclose(out) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, to, "cannot write: %s", strerror(errno));
    amlfs_out_commit(tmp);
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-broadcast");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"rewards", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *rewards_path = NULL, *out = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rewards_path = optarg; break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (!rewards_path || !out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--rewards and --out are required");
    amlfs_rewards r;
    amlfs_rewards_read(&r, rewards_path);
    int given = argc - optind;
    if (given != r.samples)
        amlfs_fail(AMLFS_EXIT_USAGE, rewards_path,
                   "has B = %lld samples, but %d checkpoints were given", (long long)r.samples,
                   given);
    if (r.best < 0)
        amlfs_fail(AMLFS_EXIT_FAILED, rewards_path,
                   "epoch %lld has no finite reward: nothing to broadcast, the run stops",
                   (long long)r.epoch);
    const char *winner = argv[optind + r.best];
    hid_t f = amlfs_h5_open(winner, "checkpoint");
    amlfs_status status = amlfs_attr_enum(f, "/", "status", amlfs_status_names);
    int64_t epoch = amlfs_attr_i64(f, "/", "epoch");
    H5Fclose(f);
    if (status != AMLFS_STATUS_OK)
        amlfs_fail(AMLFS_EXIT_USAGE, winner, "the best sample's checkpoint has status %s",
                   amlfs_status_names[status]);
    if (epoch != r.epoch)
        amlfs_fail(AMLFS_EXIT_USAGE, winner, "checkpoint of epoch %lld, the rewards are of "
                   "epoch %lld", (long long)epoch, (long long)r.epoch);
    copy_file(winner, out);
    printf("%s\n", out);
    amlfs_note("epoch %lld: sample %lld is best (reward %.6g)", (long long)r.epoch,
               (long long)r.best, r.best_reward);
    amlfs_rewards_free(&r);
    return AMLFS_EXIT_OK;
}
