/* amlfs-train-epoch: one epoch of one sample: the start checkpoint trained with the
 * sample's loss theta_I, its data order and augmentation keyed by (seed, epoch, I)
 * (DESIGN.md 1 step 2). A non-finite loss stops the epoch and marks the checkpoint
 * diverged (exit 0: the search excludes it). */
#include "amlfs_rng.h"
#include "atomic_out.h"
#include "h5io.h"
#include "policy.h"
#include "tool.h"
#include "train.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-train-epoch --checkpoint start.h5 --thetas thetas.h5 --index I\n"
    "                         --data data.h5 --out checkpoint.h5 [--device cpu]\n"
    "                         [--threads N] [--stats FILE] [--read auto|memory|stream]\n"
    "\n"
    "Trains the start checkpoint one epoch (the thetas' epoch) on the training split with\n"
    "the loss theta_I, SGD and the checkpoint's schedule, and writes the new state with\n"
    "the epoch's train loss, accuracy, clamp fraction, the theta used and its status.\n"
    "The epoch's order: a permutation of the training images, or with the checkpoint's\n"
    "sampler pk, batches of P identities x K images (as many as the sampler draws).\n"
    "The same inputs give the same bytes for the same thread count and CPU ISA.\n"
    "Throughput goes to stderr, never into the checkpoint.\n"
    "\n"
    "  --checkpoint FILE   the state the epoch starts from (its epoch is E-1)\n"
    "  --thetas FILE       the epoch's thetas (epoch E)\n"
    "  --index I           the sample, 0 to B-1\n"
    "  --data FILE         the dataset file\n"
    "  --out FILE          the sample's checkpoint (written atomically)\n"
    "  --device D          cpu (default) or cuda:N\n"
    "  --threads N         CPU threads (default: OMP_NUM_THREADS, else all cores)\n"
    "  --stats FILE        also write the images trained and the seconds that took, as\n"
    "                      the lines images=N and seconds=S (for scripts; atomically,\n"
    "                      after the checkpoint)\n"
    "  --read R            auto (default): the training images are read whole, or\n"
    "                      streamed batch by batch from the file when they outgrow 4 GiB\n"
    "                      or a quarter of the memory; memory | stream force one way\n"
    "                      (the same checkpoint either way)\n"
    "  --describe-device   print what --device and --threads would run on (the CPU ISA\n"
    "                      oneDNN uses, the threads; or the GPU) and exit\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written (also when the loss diverged: status = diverged), 1 the work\n"
    "or the write failed, 2 bad usage or input.\n";

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-train-epoch");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'},
                                         {"thetas", required_argument, 0, 't'},
                                         {"index", required_argument, 0, 'i'},
                                         {"data", required_argument, 0, 'd'},
                                         {"out", required_argument, 0, 'o'},
                                         {"device", required_argument, 0, 'D'},
                                         {"threads", required_argument, 0, 'n'},
                                         {"describe-device", no_argument, 0, 'P'},
                                         {"stats", required_argument, 0, 'S'},
                                         {"read", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    int describe = 0;
    amlfs_read_mode read = AMLFS_READ_AUTO;
    const char *ckpt_path = NULL, *thetas_path = NULL, *data_path = NULL, *out = NULL;
    const char *device = "cpu", *stats = NULL;
    long long index = -1, threads = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt_path = optarg; break;
        case 't': thetas_path = optarg; break;
        case 'i': index = amlfs_arg_int("--index", optarg, 0, 1 << 30); break;
        case 'd': data_path = optarg; break;
        case 'o': out = optarg; break;
        case 'D': device = optarg; break;
        case 'n': threads = amlfs_arg_int("--threads", optarg, 1, 4096); break;
        case 'P': describe = 1; break;
        case 'S': stats = optarg; break;
        case 'R': read = (amlfs_read_mode)amlfs_arg_choice("--read", optarg, amlfs_read_names); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (describe) {
        amlfs_context *ctx = amlfs_open_device(device, (int)threads);
        printf("%s\n", amlfs_context_describe(ctx));
        amlfs_context_destroy(ctx);
        return AMLFS_EXIT_OK;
    }
    if (!ckpt_path || !thetas_path || !data_path || !out || index < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--checkpoint, --thetas, --index, --data and --out are required");

    amlfs_train_state st;
    amlfs_state_read(&st, ckpt_path);
    amlfs_thetas th;
    amlfs_thetas_read(&th, thetas_path);
    if (index >= th.samples)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "--index %lld, but B = %lld (0 to %lld)",
                   index, (long long)th.samples, (long long)th.samples - 1);
    if (th.epoch != st.epoch + 1)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "thetas of epoch %lld, but %s has trained "
                   "%lld epochs (expected thetas of epoch %lld)", (long long)th.epoch,
                   ckpt_path, (long long)st.epoch, (long long)st.epoch + 1);
    if (st.status != AMLFS_STATUS_OK)
        amlfs_fail(AMLFS_EXIT_USAGE, ckpt_path, "status %s: cannot train from it",
                   amlfs_status_names[st.status]);
    int cosine_head = amlfs_model_kind_is_cosine(st.shape.model);
    if (th.space == AMLFS_SPACE_COSINE && !cosine_head)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "cosine-space losses need a cosine head; "
                   "%s has a linear head (prob space)", amlfs_model_names[st.shape.model]);
    if (th.space != AMLFS_SPACE_COSINE && cosine_head)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "%s-space losses need a linear head; %s has a "
                   "cosine head (cosine space)", amlfs_space_names[th.space],
                   amlfs_model_names[st.shape.model]);
    amlfs_split train;
    amlfs_split_open(&train, data_path, "train", read);
    amlfs_check_fit(&st, ckpt_path, &train, data_path);

    amlfs_context *ctx = amlfs_open_device(device, (int)threads);
    char err[256];
    amlfs_model *m = amlfs_model_create(ctx, &st.shape, (uint32_t)st.seed, err, sizeof err);
    if (!m)
        amlfs_fail(AMLFS_EXIT_FAILED, ckpt_path, "%s", err);
    amlfs_checkpoint_load(m, ctx, ckpt_path);

    const double *theta = th.theta + (size_t)index * 4 * th.intervals;
    /* a cosine head: the loss on its cosines with the checkpoint's scale (the model's
     * default where the checkpoint has none) */
    amlfs_loss_spec spec = {.space = th.space, .intervals = (int)th.intervals, .theta = theta,
                            .scale = amlfs_model_get_shape(m)->scale};
    spec.exact = th.loss; /* the thetas' loss: searched (theta), or an exact margin loss */
    amlfs_schedule sched = amlfs_state_schedule(&st);
    amlfs_augment augment = st.augment;
    int n = train.n, batch = st.shape.batch, length = n;
    int *order;
    uint32_t seed = (uint32_t)st.seed, epoch = (uint32_t)th.epoch, sample = (uint32_t)index;
    if (st.sampler == AMLFS_SAMPLER_PK) { /* P x K batches; as many as the draws give */
        int ids = 0;
        int64_t cap = amlfs_pk_capacity(train.labels, n, (int)st.k, &ids);
        if (ids < st.p)
            amlfs_fail(AMLFS_EXIT_USAGE, data_path, "/train/labels: %d identities, but the pk "
                       "sampler of %s draws P = %lld a batch", ids, ckpt_path, (long long)st.p);
        if (cap > INT32_MAX)
            amlfs_fail(AMLFS_EXIT_USAGE, data_path, "/train/labels: an epoch of %lld images "
                       "(K = %lld), more than %d", (long long)cap, (long long)st.k, INT32_MAX);
        order = amlfs_zalloc((size_t)cap, sizeof(int));
        length = amlfs_pk_order(order, train.labels, n, (int)st.p, (int)st.k, seed, epoch,
                                sample);
    } else {
        order = amlfs_zalloc((size_t)n, sizeof(int));
        amlfs_epoch_order(order, n, seed, epoch, sample);
    }
    int batches = (length + batch - 1) / batch;
    float *x = amlfs_zalloc((size_t)batch * train.channels * train.height, train.width * sizeof(float));
    int32_t *y = amlfs_zalloc((size_t)batch, sizeof(int32_t));

    double t0 = amlfs_seconds(), loss_sum = 0.0;
    int64_t correct = 0, clamped = 0, seen = 0;
    int diverged = 0;
    for (int b = 0; b < batches; b++) {
        int first = b * batch, count = length - first < batch ? length - first : batch;
        amlfs_make_batch_of(&train, order, length, first, count, augment, seed, epoch, sample,
                            x, y);
        double loss = amlfs_train_batch(m, &st, &sched, epoch, b, batches, x, y, count, &spec,
                                        &correct, &clamped);
        seen += count;
        if (!isfinite(loss)) {
            amlfs_note("epoch %u sample %u: loss %g at batch %d of %d: diverged", epoch, sample,
                       loss, b + 1, batches);
            diverged = 1;
            loss_sum = NAN;
            break;
        }
        loss_sum += loss * count;
        if (amlfs_progress_on() && (b % 20 == 0 || b == batches - 1))
            fprintf(stderr, "\ramlfs-train-epoch: epoch %u sample %u: batch %d/%d, loss %.4f",
                    epoch, sample, b + 1, batches, loss_sum / (double)seen);
    }
    double seconds = amlfs_seconds() - t0;
    if (amlfs_progress_on())
        fputc('\n', stderr);

    st.epoch = th.epoch;
    st.status = diverged ? AMLFS_STATUS_DIVERGED : AMLFS_STATUS_OK;
    st.train_loss = diverged ? NAN : loss_sum / (double)seen;
    st.train_top1 = (double)correct / (double)seen;
    st.clamp_fraction = (double)clamped / (double)seen;
    st.intervals = th.intervals;
    st.space = th.space;
    free(st.theta);
    st.theta = amlfs_zalloc((size_t)(4 * th.intervals), sizeof(double));
    memcpy(st.theta, theta, sizeof(double) * 4 * (size_t)th.intervals);
    st.threads = amlfs_context_threads(ctx);
    snprintf(st.device, sizeof st.device, "%s", amlfs_context_describe(ctx));
    amlfs_checkpoint_write(&st, m, ctx, out);
    if (stats)
        amlfs_stats_write(stats, (long long)seen, seconds);
    printf("%s\n", out);
    amlfs_note("epoch %u sample %u: %s, train loss %.5f, top-1 %.4f, clamped %.4f; "
               "%lld images in %.2f s (%.0f images/s), %s",
               epoch, sample, amlfs_status_names[st.status], st.train_loss, st.train_top1,
               st.clamp_fraction, (long long)seen, seconds, (double)seen / seconds,
               amlfs_context_describe(ctx));
    free(order);
    free(x);
    free(y);
    amlfs_model_destroy(m);
    amlfs_context_destroy(ctx);
    amlfs_split_free(&train);
    amlfs_thetas_free(&th);
    amlfs_state_free(&st);
    return AMLFS_EXIT_OK;
}
