/* amlfs-eval: a checkpoint's top-1, top-5 and cross-entropy on a split of the dataset,
 * batch norm in inference mode (DESIGN.md 1 step 3: the reward comes from val). */
#include "atomic_out.h"
#include "h5io.h"
#include "tool.h"
#include "train.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-eval --checkpoint checkpoint.h5 --data data.h5 --split val|test\n"
    "                  --out eval.h5 [--device cpu] [--threads N] [--stats FILE]\n"
    "                  [--read auto|memory|stream]\n"
    "\n"
    "Evaluates the model on every image of the split: top-1 and top-5 accuracy and the\n"
    "mean softmax cross-entropy. A diverged checkpoint is not evaluated: its eval records\n"
    "NaN metrics with status diverged, which amlfs-reward excludes.\n"
    "\n"
    "  --checkpoint FILE   the model\n"
    "  --data FILE         the dataset file\n"
    "  --split S           val | test (the search rewards on val, never on test)\n"
    "  --out FILE          the eval file (written atomically)\n"
    "  --device D          cpu (default) or cuda:N\n"
    "  --threads N         CPU threads (default: OMP_NUM_THREADS, else all cores)\n"
    "  --stats FILE        also write the images evaluated and the seconds that took,\n"
    "                      as the lines images=N and seconds=S (for scripts;\n"
    "                      atomically, after the eval file)\n"
    "  --read R            auto (default): the split's images are read whole, or streamed\n"
    "                      batch by batch when they outgrow 4 GiB or a quarter of the\n"
    "                      memory; memory | stream force one way (the same metrics)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the work or the write failed, 2 bad usage or input.\n";

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-eval");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'},
                                         {"data", required_argument, 0, 'd'},
                                         {"split", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"device", required_argument, 0, 'D'},
                                         {"threads", required_argument, 0, 'n'},
                                         {"stats", required_argument, 0, 'S'},
                                         {"read", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    amlfs_read_mode read = AMLFS_READ_AUTO;
    static const char *const splits[] = {"val", "test", "train", NULL};
    const char *ckpt_path = NULL, *data_path = NULL, *out = NULL, *device = "cpu";
    const char *stats = NULL;
    int split = -1, c;
    long long threads = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt_path = optarg; break;
        case 'd': data_path = optarg; break;
        case 's': split = amlfs_arg_choice("--split", optarg, splits); break;
        case 'o': out = optarg; break;
        case 'D': device = optarg; break;
        case 'n': threads = amlfs_arg_int("--threads", optarg, 1, 4096); break;
        case 'S': stats = optarg; break;
        case 'R': read = (amlfs_read_mode)amlfs_arg_choice("--read", optarg, amlfs_read_names); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!ckpt_path || !data_path || !out || split < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--checkpoint, --data, --split and --out are required");

    amlfs_train_state st;
    amlfs_state_read(&st, ckpt_path);
    amlfs_split s;
    amlfs_split_open(&s, data_path, splits[split], read);
    amlfs_check_fit(&st, ckpt_path, &s, data_path);
    int diverged = st.status != AMLFS_STATUS_OK;
    double top1 = NAN, top5 = NAN, loss = NAN;
    double t0 = amlfs_seconds();
    if (!diverged) {
        amlfs_context *ctx = amlfs_open_device(device, (int)threads);
        char err[256];
        amlfs_model *m = amlfs_model_create(ctx, &st.shape, (uint32_t)st.seed, err, sizeof err);
        if (!m)
            amlfs_fail(AMLFS_EXIT_FAILED, ckpt_path, "%s", err);
        amlfs_checkpoint_load(m, ctx, ckpt_path);
        int batch = st.shape.batch, classes = s.classes, k = classes < 5 ? classes : 5;
        int *order = amlfs_zalloc((size_t)s.n, sizeof(int));
        for (int i = 0; i < s.n; i++)
            order[i] = i;
        float *x = amlfs_zalloc((size_t)batch * s.channels * s.height, s.width * sizeof(float));
        float *logits = amlfs_zalloc((size_t)batch, (size_t)classes * sizeof(float));
        double *row_loss = amlfs_zalloc((size_t)batch, sizeof(double));
        int32_t *y = amlfs_zalloc((size_t)batch, sizeof(int32_t));
        int64_t hit1 = 0, hit5 = 0;
        double loss_sum = 0;
        for (int first = 0; first < s.n; first += batch) {
            int count = s.n - first < batch ? s.n - first : batch;
            amlfs_make_batch(&s, order, first, count, AUGMENT_NONE, 0, 0, 0, x, y);
            amlfs_model_infer(m, x, count, logits);
            amlfs_softmax_ce(logits, y, count, classes, row_loss, NULL);
            for (int i = 0; i < count; i++) {
                const float *row = logits + (size_t)i * classes;
                int above = 0; /* classes scoring above the target: its rank from 0 */
                for (int j = 0; j < classes; j++)
                    above += row[j] > row[y[i]] || (row[j] == row[y[i]] && j < y[i]);
                hit1 += above == 0;
                hit5 += above < k;
                loss_sum += row_loss[i];
            }
        }
        top1 = (double)hit1 / s.n;
        top5 = (double)hit5 / s.n;
        loss = loss_sum / s.n;
        free(order);
        free(x);
        free(logits);
        free(row_loss);
        free(y);
        amlfs_model_destroy(m);
        amlfs_context_destroy(ctx);
    }
    double seconds = amlfs_seconds() - t0;
    amlfs_h5_out o = amlfs_h5_create(out, "eval");
    amlfs_attr_set_str(o.file, "/", "split", splits[split]);
    amlfs_attr_set_str(o.file, "/", "status",
                       amlfs_status_names[diverged ? AMLFS_STATUS_DIVERGED : AMLFS_STATUS_OK]);
    amlfs_attr_set_i64(o.file, "/", "epoch", st.epoch);
    amlfs_attr_set_i64(o.file, "/", "images", s.n);
    amlfs_attr_set_f64(o.file, "/", "top1", top1);
    amlfs_attr_set_f64(o.file, "/", "top5", top5);
    amlfs_attr_set_f64(o.file, "/", "loss", loss);
    amlfs_h5_finish(&o);
    if (stats)
        amlfs_stats_write(stats, s.n, seconds);
    printf("%s\n", out);
    amlfs_note("%s epoch %lld on %s: top-1 %.4f, top-5 %.4f, loss %.4f; %d images in %.2f s",
               ckpt_path, (long long)st.epoch, splits[split], top1, top5, loss, s.n, seconds);
    amlfs_split_free(&s);
    amlfs_state_free(&st);
    return AMLFS_EXIT_OK;
}
