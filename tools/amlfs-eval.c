/* amlfs-eval: a checkpoint's metrics on a split of the dataset, batch norm in inference
 * mode (DESIGN.md 1 step 3: the reward comes from val). Classification: top-1, top-5 and
 * cross-entropy. Face: 10-fold verification accuracy on the split's pairs, and rank-1 of
 * the dataset's probe identities against its distractors (tools/lib/metric.c). */
#include "atomic_out.h"
#include "h5io.h"
#include "metric.h"
#include "plain.h"
#include "reid.h"
#include "tool.h"
#include "train.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-eval --checkpoint checkpoint.h5 --data data.h5 --split val|test\n"
    "                  --out eval.h5 [--device cpu] [--threads N] [--stats FILE]\n"
    "                  [--read auto|memory|stream] [--task classification|face] [--flip]\n"
    "                  [--identify] [--features F.h5] [--distance euclidean|cosine]\n"
    "                  [--rerank]\n"
    "\n"
    "Evaluates the model on every image of the split. Classification: top-1 and top-5\n"
    "accuracy and the mean softmax cross-entropy. Face (a cosine-head model on a face\n"
    "dataset): the embeddings of the split's images, then verification on its /pairs and\n"
    "/issame as insightface computes it (10 contiguous folds, squared L2 distance of the\n"
    "normalised embeddings, the threshold of the other nine folds): accuracy, its std over\n"
    "the folds, the mean threshold and TAR at FAR 1e-3; with --identify (default on the\n"
    "test split when the dataset has /probe and /distractors) MegaFace rank-1 of the probe\n"
    "identities against the distractors. A diverged checkpoint is not evaluated: its eval\n"
    "records NaN metrics with status diverged, which amlfs-reward excludes.\n"
    "Re-ID (a cosine-head model on a reid dataset): the split's /query images ranked\n"
    "against its other images, as torchreid evaluates Market-1501 (same identity and\n"
    "camera removed, junk ignored, queries without a true match skipped): mAP and CMC\n"
    "to rank 50.\n"
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
    "  --task T            classification | face | reid (default: the dataset's /@task)\n"
    "  --flip              face: sum each embedding with its horizontally flipped image's\n"
    "  --identify          face: also rank-1 of /probe against /distractors\n"
    "  --features FILE     face, reid: also write the split's embeddings with their\n"
    "                      labels and pairs (face) or camids and query flags (reid)\n"
    "                      (schema features, for amlfs-metric)\n"
    "  --distance D        reid: euclidean (default) | cosine between embeddings\n"
    "  --rerank            reid: k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the work or the write failed, 2 bad usage or input.\n";

typedef enum { TASK_CLASSIFICATION = 0, TASK_FACE = 1, TASK_REID = 2 } eval_task;
static const char *const task_names[] = {"classification", "face", "reid", NULL};
static const char *const distance_names[] = {"euclidean", "cosine", NULL}; /* amlfs_reid_distance */

/* The metrics an eval file records; NaN where the task has none. */
typedef struct {
    double top1, top5, loss;
    double accuracy, accuracy_std, threshold, tar_at_far, far, rank1;
    int64_t pairs, trials;
    double map, cmc[50];     /* re-ID: mAP, CMC ranks 1..50 (rank1 above is cmc[0]) */
    int64_t queries, skipped; /* re-ID: queries ranked, queries without a true match */
} eval_metrics;

/* The dataset's /@task (classification when it has none). */
static eval_task dataset_task(const char *path)
{
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "dataset", &plain);
    char task[32];
    amlfs_plain_attr_str(f, path, "/", "task", NULL, "classification", task, sizeof task);
    H5Fclose(f);
    int t = amlfs_choice_index(task_names, task);
    if (t < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@task = '%s': amlfs-eval evaluates "
                   "classification, face and reid", task);
    return (eval_task)t;
}

/* Top-1, top-5 and the mean cross-entropy of the split's images (of s cos for a cosine
 * head of scale s). */
static void classify(amlfs_model *m, const amlfs_split *s, int batch, eval_metrics *r)
{
    double scale = amlfs_model_head_is_cosine(m) ? amlfs_model_get_shape(m)->scale : 0.0;
    int classes = s->classes, k = classes < 5 ? classes : 5;
    int *order = amlfs_zalloc((size_t)s->n, sizeof(int));
    for (int i = 0; i < s->n; i++)
        order[i] = i;
    float *x = amlfs_zalloc((size_t)batch * s->channels * s->height, s->width * sizeof(float));
    float *logits = amlfs_zalloc((size_t)batch, (size_t)classes * sizeof(float));
    double *row_loss = amlfs_zalloc((size_t)batch, sizeof(double));
    int32_t *y = amlfs_zalloc((size_t)batch, sizeof(int32_t));
    int64_t hit1 = 0, hit5 = 0;
    double loss_sum = 0;
    for (int first = 0; first < s->n; first += batch) {
        int count = s->n - first < batch ? s->n - first : batch;
        amlfs_make_batch(s, order, first, count, AUGMENT_NONE, 0, 0, 0, x, y);
        amlfs_model_infer(m, x, count, logits);
        if (scale > 0) /* a cosine head's logits are s cos */
            for (size_t i = 0; i < (size_t)count * classes; i++)
                logits[i] = (float)(scale * logits[i]);
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
    r->top1 = (double)hit1 / s->n;
    r->top5 = (double)hit5 / s->n;
    r->loss = loss_sum / s->n;
    free(order);
    free(x);
    free(logits);
    free(row_loss);
    free(y);
}

/* The embeddings (n, D) of a split's images in file order; with flip, each summed with
 * that of its horizontally mirrored image (the usual test-time augmentation of face
 * verification). */
static float *embed_split(amlfs_model *m, const amlfs_split *s, int batch, int flip)
{
    int d = amlfs_model_embedding_dim(m);
    size_t plane = (size_t)s->height * s->width, img = plane * s->channels;
    int *order = amlfs_zalloc((size_t)s->n, sizeof(int));
    for (int i = 0; i < s->n; i++)
        order[i] = i;
    float *x = amlfs_zalloc((size_t)batch, img * sizeof(float));
    float *mirror = flip ? amlfs_zalloc((size_t)batch, img * sizeof(float)) : NULL;
    float *e2 = flip ? amlfs_zalloc((size_t)batch, (size_t)d * sizeof(float)) : NULL;
    int32_t *y = amlfs_zalloc((size_t)batch, sizeof(int32_t));
    float *emb = amlfs_zalloc((size_t)s->n, (size_t)d * sizeof(float));
    for (int first = 0; first < s->n; first += batch) {
        int count = s->n - first < batch ? s->n - first : batch;
        float *out = emb + (size_t)first * d;
        amlfs_make_batch(s, order, first, count, AUGMENT_NONE, 0, 0, 0, x, y);
        amlfs_model_embed(m, x, count, out);
        if (!flip)
            continue;
        for (size_t row = 0; row < (size_t)count * s->channels * s->height; row++)
            for (int j = 0; j < s->width; j++)
                mirror[row * s->width + j] = x[row * s->width + (s->width - 1 - j)];
        amlfs_model_embed(m, mirror, count, e2);
        for (size_t i = 0; i < (size_t)count * d; i++)
            out[i] += e2[i];
    }
    free(order);
    free(x);
    free(mirror);
    free(e2);
    free(y);
    return emb;
}

/* /SPLIT/pairs (P,2) rows into the split's n images and /SPLIT/issame (P) 0/1. */
static int64_t read_pairs(const char *path, const char *split, int n, int32_t **pairs,
                          uint8_t **issame)
{
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "dataset", &plain);
    char pp[64], sp[64];
    snprintf(pp, sizeof pp, "/%s/pairs", split);
    snprintf(sp, sizeof sp, "/%s/issame", split);
    hsize_t d[8] = {0}, e[8] = {0};
    if (!amlfs_h5_exists(f, pp) || !amlfs_h5_exists(f, sp))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s and %s: missing, face verification needs the "
                   "split's pairs (amlfs-prep face writes them)", pp, sp);
    if (amlfs_h5_dims(f, pp, d) != 2 || d[1] != 2 || amlfs_h5_dims(f, sp, e) != 1 ||
        e[0] != d[0] || d[0] < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s (P,2) and %s (P): shapes do not match", pp, sp);
    int64_t p = (int64_t)d[0];
    *pairs = amlfs_zalloc((size_t)p, 2 * sizeof(int32_t));
    *issame = amlfs_zalloc((size_t)p, 1);
    amlfs_h5_read(f, pp, H5T_NATIVE_INT32, *pairs);
    amlfs_h5_read(f, sp, H5T_NATIVE_UINT8, *issame);
    H5Fclose(f);
    for (int64_t i = 0; i < 2 * p; i++)
        if ((*pairs)[i] < 0 || (*pairs)[i] >= n)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%lld] = %d, expected a row 0 to %d of /%s/"
                       "images", pp, (long long)(i / 2), (*pairs)[i], n - 1, split);
    return p;
}

/* A features file begun: its attributes, the embeddings and labels (schema features,
 * as amlfs-metric reads them); the caller adds its task's datasets and finishes it. */
static amlfs_h5_out features_begin(const char *out, const char *split, int64_t epoch, int flip,
                                   const float *emb, int n, int d, const int32_t *labels)
{
    amlfs_h5_out o = amlfs_h5_create(out, "features");
    amlfs_attr_set_str(o.file, "/", "split", split);
    amlfs_attr_set_i64(o.file, "/", "epoch", epoch);
    amlfs_attr_set_i64(o.file, "/", "flip", flip);
    hsize_t fd[2] = {(hsize_t)n, (hsize_t)d}, ld[1] = {(hsize_t)n};
    amlfs_h5_write(o.file, "/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, fd, emb);
    amlfs_h5_write(o.file, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ld, labels);
    return o;
}

/* A face split's features file: the embeddings, labels and verification pairs. */
static void write_features(const char *out, const char *split, int64_t epoch, int flip,
                           const float *emb, int n, int d, const int32_t *labels,
                           const int32_t *pairs, const uint8_t *issame, int64_t p)
{
    amlfs_h5_out o = features_begin(out, split, epoch, flip, emb, n, d, labels);
    hsize_t pd[2] = {(hsize_t)p, 2}, sd[1] = {(hsize_t)p};
    amlfs_h5_write(o.file, "/pairs", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, pd, pairs);
    amlfs_h5_write(o.file, "/issame", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, sd, issame);
    amlfs_h5_finish(&o);
}

/* /SPLIT/NAME (n) of a dataset file as int32 (camids, query flags), checked. */
static int32_t *read_column(const char *path, const char *split, const char *name, int n)
{
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "dataset", &plain);
    char dp[64];
    snprintf(dp, sizeof dp, "/%s/%s", split, name);
    hsize_t d[8] = {0};
    if (!amlfs_h5_exists(f, dp))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: missing, re-ID evaluation needs the split's "
                   "camids and query flags (amlfs-prep market1501 writes them)", dp);
    if (amlfs_h5_dims(f, dp, d) != 1 || d[0] != (hsize_t)n)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: expected (%d), one per image of /%s/images", dp,
                   n, split);
    int32_t *v = amlfs_zalloc((size_t)n, sizeof(int32_t));
    amlfs_h5_read(f, dp, H5T_NATIVE_INT32, v);
    H5Fclose(f);
    return v;
}

/* A re-ID split's embeddings with pids, camids and query flags (schema features). */
static void write_reid_features(const char *out, const char *split, int64_t epoch, int flip,
                                const float *emb, int n, int d, const int32_t *pids,
                                const int32_t *camids, const int32_t *query)
{
    amlfs_h5_out o = features_begin(out, split, epoch, flip, emb, n, d, pids);
    hsize_t ld[1] = {(hsize_t)n};
    uint8_t *q = amlfs_zalloc((size_t)n, 1);
    for (int i = 0; i < n; i++)
        q[i] = query[i] != 0;
    amlfs_h5_write(o.file, "/camids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ld, camids);
    amlfs_h5_write(o.file, "/query", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, ld, q);
    amlfs_h5_finish(&o);
    free(q);
}

/* Re-ID on the split: its /query images ranked against the rest (the gallery), torchreid's
 * Market/Duke protocol (tools/lib/reid.h). */
static void reid(amlfs_model *m, const amlfs_split *s, const char *path, const char *split,
                 int batch, int flip, amlfs_reid_distance dist, int rerank, eval_metrics *r,
                 const char *features, int64_t epoch)
{
    int d = amlfs_model_embedding_dim(m);
    int32_t *camids = read_column(path, split, "camids", s->n);
    int32_t *query = read_column(path, split, "query", s->n);
    float *emb = embed_split(m, s, batch, flip);
    int64_t nq = 0;
    for (int i = 0; i < s->n; i++)
        nq += query[i] != 0;
    int64_t ng = s->n - nq;
    if (nq < 1 || ng < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/%s/query: %lld queries and %lld gallery images, "
                   "expected some of each", split, (long long)nq, (long long)ng);
    float *qf = amlfs_zalloc((size_t)nq, (size_t)d * sizeof(float));
    float *gf = amlfs_zalloc((size_t)ng, (size_t)d * sizeof(float));
    int32_t *qp = amlfs_zalloc((size_t)nq, sizeof(int32_t)), *qc = amlfs_zalloc((size_t)nq, 4);
    int32_t *gp = amlfs_zalloc((size_t)ng, sizeof(int32_t)), *gc = amlfs_zalloc((size_t)ng, 4);
    for (int i = 0, a = 0, b = 0; i < s->n; i++) {
        const float *row = emb + (size_t)i * d;
        if (query[i]) {
            memcpy(qf + (size_t)a * d, row, (size_t)d * sizeof(float));
            qp[a] = s->labels[i];
            qc[a++] = camids[i];
        } else {
            memcpy(gf + (size_t)b * d, row, (size_t)d * sizeof(float));
            gp[b] = s->labels[i];
            gc[b++] = camids[i];
        }
    }
    char err[256];
    amlfs_reid_result res;
    if (amlfs_reid_eval(qf, qp, qc, nq, gf, gp, gc, ng, d, dist, rerank, &res, err,
                        sizeof err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/%s: %s", split, err);
    r->map = res.map;
    r->rank1 = res.rank1;
    memcpy(r->cmc, res.cmc, sizeof r->cmc);
    r->queries = res.queries;
    r->skipped = res.skipped;
    if (features)
        write_reid_features(features, split, epoch, flip, emb, s->n, d, s->labels, camids, query);
    free(qf);
    free(gf);
    free(qp);
    free(qc);
    free(gp);
    free(gc);
    free(emb);
    free(camids);
    free(query);
}

/* Verification on the split's pairs, and rank-1 of /probe against /distractors. */
static void face(amlfs_model *m, const amlfs_split *s, const char *path, const char *split,
                 int batch, int flip, int identify, amlfs_read_mode read, eval_metrics *r,
                 const char *features, int64_t epoch)
{
    char err[256];
    int d = amlfs_model_embedding_dim(m);
    int32_t *pairs;
    uint8_t *issame;
    int64_t p = read_pairs(path, split, s->n, &pairs, &issame);
    float *emb = embed_split(m, s, batch, flip);
    amlfs_verify_result v;
    if (amlfs_verify(emb, s->n, d, pairs, issame, p, 10, 1e-3, &v, err, sizeof err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/%s: %s", split, err);
    r->accuracy = v.accuracy;
    r->accuracy_std = v.accuracy_std;
    r->threshold = v.threshold;
    r->tar_at_far = v.tar_at_far;
    r->far = v.far;
    r->pairs = p;
    if (features)
        write_features(features, split, epoch, flip, emb, s->n, d, s->labels, pairs, issame, p);
    free(emb);
    free(pairs);
    free(issame);
    if (!identify)
        return;
    amlfs_split probe, distractors;
    amlfs_split_open(&probe, path, "probe", read);
    amlfs_split_open(&distractors, path, "distractors", read);
    float *pe = embed_split(m, &probe, batch, flip);
    float *de = embed_split(m, &distractors, batch, flip);
    if (amlfs_identify(pe, probe.labels, probe.n, de, distractors.n, d, 1, &r->rank1,
                       &r->trials, err, sizeof err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/probe: %s", err);
    free(pe);
    free(de);
    amlfs_split_free(&probe);
    amlfs_split_free(&distractors);
}

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
                                         {"task", required_argument, 0, 'T'},
                                         {"flip", no_argument, 0, 'F'},
                                         {"identify", no_argument, 0, 'I'},
                                         {"features", required_argument, 0, 'f'},
                                         {"distance", required_argument, 0, 'X'},
                                         {"rerank", no_argument, 0, 'K'},
                                         {0, 0, 0, 0}};
    amlfs_read_mode read = AMLFS_READ_AUTO;
    static const char *const splits[] = {"val", "test", "train", NULL};
    const char *ckpt_path = NULL, *data_path = NULL, *out = NULL, *device = "cpu";
    const char *stats = NULL, *features = NULL;
    int split = -1, task = -1, flip = 0, identify = -1, distance = 0, rerank = 0, c;
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
        case 'T': task = amlfs_arg_choice("--task", optarg, task_names); break;
        case 'F': flip = 1; break;
        case 'I': identify = 1; break;
        case 'f': features = optarg; break;
        case 'X': distance = amlfs_arg_choice("--distance", optarg, distance_names); break;
        case 'K': rerank = 1; break;
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
    if (task < 0)
        task = (int)dataset_task(data_path);
    amlfs_split s;
    amlfs_split_open(&s, data_path, splits[split], read);
    amlfs_check_fit(&st, ckpt_path, &s, data_path);
    if (features && task == TASK_CLASSIFICATION)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--features: embeddings are written for face and "
                   "re-ID evaluation only (--task face|reid)");
    if (task == TASK_FACE && identify < 0) {
        int plain;
        hid_t f = amlfs_h5_open_or_plain(data_path, "dataset", &plain);
        identify = !strcmp(splits[split], "test") && amlfs_h5_exists(f, "/probe/images") &&
                   amlfs_h5_exists(f, "/distractors/images");
        H5Fclose(f);
    }
    int diverged = st.status != AMLFS_STATUS_OK;
    eval_metrics r = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0, NAN, {0}, 0, 0};
    for (int k = 0; k < 50; k++)
        r.cmc[k] = NAN;
    double t0 = amlfs_seconds();
    if (!diverged) {
        amlfs_context *ctx = amlfs_open_device(device, (int)threads);
        char err[256];
        amlfs_model *m = amlfs_model_create(ctx, &st.shape, (uint32_t)st.seed, err, sizeof err);
        if (!m)
            amlfs_fail(AMLFS_EXIT_FAILED, ckpt_path, "%s", err);
        if (task != TASK_CLASSIFICATION && !amlfs_model_head_is_cosine(m))
            amlfs_fail(AMLFS_EXIT_USAGE, ckpt_path, "a %s (linear head): %s evaluation needs "
                       "a cosine-head model (%s)", amlfs_model_names[st.shape.model],
                       task_names[task], task == TASK_FACE ? "sphere20, face-small"
                                                           : "resnet50, reid-small");
        amlfs_checkpoint_load(m, ctx, ckpt_path);
        if (task == TASK_FACE)
            face(m, &s, data_path, splits[split], st.shape.batch, flip, identify > 0, read, &r,
                 features, st.epoch);
        else if (task == TASK_REID)
            reid(m, &s, data_path, splits[split], st.shape.batch, flip,
                 (amlfs_reid_distance)distance, rerank, &r, features, st.epoch);
        else
            classify(m, &s, st.shape.batch, &r);
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
    amlfs_attr_set_f64(o.file, "/", "top1", r.top1);
    amlfs_attr_set_f64(o.file, "/", "top5", r.top5);
    amlfs_attr_set_f64(o.file, "/", "loss", r.loss);
    if (task == TASK_FACE) {
        amlfs_attr_set_str(o.file, "/", "task", task_names[task]);
        amlfs_attr_set_f64(o.file, "/", "accuracy", r.accuracy);
        amlfs_attr_set_f64(o.file, "/", "accuracy_std", r.accuracy_std);
        amlfs_attr_set_f64(o.file, "/", "threshold", r.threshold);
        amlfs_attr_set_f64(o.file, "/", "tar_at_far", r.tar_at_far);
        amlfs_attr_set_f64(o.file, "/", "far", r.far);
        amlfs_attr_set_i64(o.file, "/", "pairs", r.pairs);
        amlfs_attr_set_f64(o.file, "/", "rank1", r.rank1);
        amlfs_attr_set_i64(o.file, "/", "trials", r.trials);
        amlfs_attr_set_i64(o.file, "/", "flip", flip);
    }
    if (task == TASK_REID) {
        amlfs_attr_set_str(o.file, "/", "task", task_names[task]);
        amlfs_attr_set_f64(o.file, "/", "mAP", r.map);
        amlfs_attr_set_f64(o.file, "/", "rank1", r.rank1);
        amlfs_attr_set_i64(o.file, "/", "queries", r.queries);
        amlfs_attr_set_i64(o.file, "/", "skipped", r.skipped);
        amlfs_attr_set_str(o.file, "/", "distance", distance_names[distance]);
        amlfs_attr_set_i64(o.file, "/", "rerank", rerank);
        amlfs_attr_set_i64(o.file, "/", "flip", flip);
        hsize_t cd[1] = {50};
        amlfs_h5_write_f64(o.file, "/cmc", 1, cd, r.cmc);
    }
    amlfs_h5_finish(&o);
    if (stats)
        amlfs_stats_write(stats, s.n, seconds);
    printf("%s\n", out);
    if (task == TASK_REID)
        amlfs_note("%s epoch %lld on %s: mAP %.4f, rank-1 %.4f (%lld queries, %lld without a "
                   "true match); %d images in %.2f s", ckpt_path, (long long)st.epoch,
                   splits[split], r.map, r.rank1, (long long)r.queries, (long long)r.skipped,
                   s.n, seconds);
    else if (task == TASK_FACE)
        amlfs_note("%s epoch %lld on %s: verification %.4f +- %.4f (%lld pairs), TAR %.4f at "
                   "FAR %.2g, rank-1 %.4f; %d images in %.2f s", ckpt_path, (long long)st.epoch,
                   splits[split], r.accuracy, r.accuracy_std, (long long)r.pairs, r.tar_at_far,
                   r.far, r.rank1, s.n, seconds);
    else
        amlfs_note("%s epoch %lld on %s: top-1 %.4f, top-5 %.4f, loss %.4f; %d images in %.2f s",
                   ckpt_path, (long long)st.epoch, splits[split], r.top1, r.top5, r.loss, s.n,
                   seconds);
    amlfs_split_free(&s);
    amlfs_state_free(&st);
    return AMLFS_EXIT_OK;
}
