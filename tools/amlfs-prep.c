/* amlfs-prep: a dataset file from Fashion-MNIST's gzip idx files or CIFAR-10's binary
 * batches: train / val (carved from the training images, stratified) / test, label
 * noise on the training split only, per-channel mean and std (DESIGN.md 2, 6); or, with
 * `face`, from image folders (prep_face.h); with `market1501` or `dukemtmc`, from the
 * released re-ID folders (prep_reid.h). */
#include "amlfs_rng.h"
#include "data.h"
#include "h5io.h"
#include "prep_face.h"
#include "prep_reid.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const char usage[] =
    "usage: amlfs-prep fashion-mnist|cifar10 --out data.h5 [--src DIR] [--train-size N]\n"
    "                  [--val-size N] [--noise R] [--noise-kind symmetric|pair] [--seed S]\n"
    "       amlfs-prep face --train DIR --lfw-pairs FILE --lfw-dir DIR --out F.h5 ...\n"
    "                  (image folders to a face dataset: amlfs-prep face --help)\n"
    "       amlfs-prep market1501|dukemtmc --src DIR --out F.h5 ...\n"
    "                  (a released re-ID folder: amlfs-prep market1501 --help)\n"
    "\n"
    "Writes the dataset file (schema dataset): /train, /val and /test with images\n"
    "(N,C,H,W) uint8 and labels (N) int32. The validation split is carved from the\n"
    "training images, stratified by class; --train-size keeps a stratified subset of\n"
    "the rest. Label noise applies to the training split only: symmetric replaces a\n"
    "label, with probability R, by a different class drawn uniformly; pair by (y+1)\n"
    "mod C; the clean labels are kept in /train/clean_labels. Splits and noise are\n"
    "drawn from Philox streams of --seed: the same inputs give the same bytes.\n"
    "\n"
    "  --src DIR          fashion-mnist: the four *-ubyte.gz files\n"
    "                     (default /usr/share/datasets/fashion-mnist, from the Debian\n"
    "                     package dataset-fashion-mnist); cifar10: cifar-10-batches-bin\n"
    "  --out FILE         the dataset file (written atomically)\n"
    "  --train-size N     training images kept after the validation split (default all)\n"
    "  --val-size N       validation images (default 5000)\n"
    "  --noise R          label-noise ratio, 0 to 1 (default 0)\n"
    "  --noise-kind K     symmetric | pair (default symmetric)\n"
    "  --seed S           0 to 4294967295 (default 1)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

typedef struct {
    int n, channels, height, width, classes;
    uint8_t *images; /* (N,C,H,W) */
    int32_t *labels; /* (N) */
} image_set;

static void free_set(image_set *s)
{
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

/* ---- Fashion-MNIST: big-endian idx files, gzip-compressed ------------------------- */

static uint8_t *read_gz(const char *path, size_t *size)
{
    if (access(path, F_OK) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path,
                   "no such file (apt-get install dataset-fashion-mnist, or give --src DIR)");
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = amlfs_zalloc(cap, 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            uint8_t *grown = realloc(buf, cap);
            if (!grown)
                amlfs_fail(AMLFS_EXIT_FAILED, path, "out of memory");
            buf = grown;
        }
        int got = gzread(gz, buf + len, (unsigned)(cap - len));
        if (got < 0) {
            int err;
            char msg[256];
            snprintf(msg, sizeof msg, "%s", gzerror(gz, &err));
            free(buf);
            gzclose(gz);
            amlfs_fail(AMLFS_EXIT_USAGE, path, "not a valid gzip file: %s", msg);
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    gzclose(gz);
    *size = len;
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An idx file of unsigned bytes with `rank` dimensions; returns the data and dims. */
static uint8_t *read_idx(const char *path, int rank, uint32_t *dims)
{
    size_t size;
    uint8_t *buf = read_gz(path, &size);
    if (size < 4 + 4 * (size_t)rank || buf[0] || buf[1] || buf[2] != 0x08 || buf[3] != rank) {
        free(buf);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "not an idx file of %d-dimensional unsigned bytes",
                   rank);
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = be32(buf + 4 + 4 * i);
        count *= dims[i];
    }
    if (size != 4 + 4 * (size_t)rank + count) {
        free(buf);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "holds %zu bytes of data, its header says %zu",
                   size - 4 - 4 * (size_t)rank, count);
    }
    memmove(buf, buf + 4 + 4 * rank, count);
    return buf;
}

static void load_fashion(const char *dir, const char *prefix, image_set *s)
{
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    uint32_t idims[3], ldims[1];
    uint8_t *images = read_idx(ipath, 3, idims);
    uint8_t *labels = read_idx(lpath, 1, ldims);
    if (idims[0] != ldims[0])
        amlfs_fail(AMLFS_EXIT_USAGE, lpath, "%u labels for %u images in %s", ldims[0],
                   idims[0], ipath);
    s->n = (int)idims[0];
    s->channels = 1;
    s->height = (int)idims[1];
    s->width = (int)idims[2];
    s->classes = 10;
    s->images = images;
    s->labels = amlfs_zalloc((size_t)s->n, sizeof(int32_t));
    for (int i = 0; i < s->n; i++) {
        if (labels[i] >= 10)
            amlfs_fail(AMLFS_EXIT_USAGE, lpath, "label %d of image %d, expected 0 to 9",
                       labels[i], i);
        s->labels[i] = labels[i];
    }
    free(labels);
}

/* ---- CIFAR-10: records of 1 label byte and 3x32x32 pixel bytes (CHW) -------------- */

static void load_cifar(const char *dir, const char *const *files, int nfiles, image_set *s)
{
    enum { RECORD = 1 + 3 * 32 * 32, PER_FILE = 10000 };
    s->channels = 3;
    s->height = s->width = 32;
    s->classes = 10;
    s->n = 0;
    s->images = amlfs_zalloc((size_t)nfiles * PER_FILE, 3 * 32 * 32);
    s->labels = amlfs_zalloc((size_t)nfiles * PER_FILE, sizeof(int32_t));
    uint8_t rec[RECORD];
    for (int f = 0; f < nfiles; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        FILE *in = fopen(path, "rb");
        if (!in)
            amlfs_fail(AMLFS_EXIT_USAGE, path,
                       "cannot open: %s (give --src DIR, the cifar-10-batches-bin folder)",
                       strerror(errno));
        size_t got;
        int records = 0;
        while ((got = fread(rec, 1, RECORD, in)) == RECORD && records < PER_FILE) {
            if (rec[0] >= 10)
                amlfs_fail(AMLFS_EXIT_USAGE, path, "record %d has label %d, expected 0 to 9",
                           records, rec[0]);
            s->labels[s->n] = rec[0];
            memcpy(s->images + (size_t)s->n * 3072, rec + 1, 3072);
            s->n++;
            records++;
        }
        int trailing = got != 0 || fgetc(in) != EOF;
        fclose(in);
        if (trailing || records == 0)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "not a CIFAR-10 binary batch (%d whole records "
                       "of %d bytes, then %s)", records, RECORD,
                       trailing ? "a partial or extra record" : "nothing");
    }
}

/* ---- splits and noise ------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Chooses `want` of the n images in pool (indices into labels), stratified: class c gets
 * its share want * n_c / n, rounded by largest remainder (ties to the lower class).
 * Chosen indices go to `chosen` (sorted), the rest to `rest` (sorted). `draw` names the
 * Philox sample used for this choice, so two choices never share draws. */
static void stratified(const int *pool, int n, const int32_t *labels, int classes, int want,
                       uint32_t seed, uint32_t draw, int *chosen, int *rest)
{
    int *count = amlfs_zalloc((size_t)classes, sizeof(int));
    int *quota = amlfs_zalloc((size_t)classes, sizeof(int));
    double *frac = amlfs_zalloc((size_t)classes, sizeof(double));
    for (int i = 0; i < n; i++)
        count[labels[pool[i]]]++;
    int given = 0;
    for (int c = 0; c < classes; c++) {
        double exact = (double)want * count[c] / n;
        quota[c] = (int)floor(exact);
        frac[c] = exact - quota[c];
        given += quota[c];
    }
    while (given < want) { /* largest remainders first */
        int best = -1;
        for (int c = 0; c < classes; c++)
            if (quota[c] < count[c] && (best < 0 || frac[c] > frac[best]))
                best = c;
        quota[best]++;
        frac[best] = -1;
        given++;
    }
    int nc = 0, nr = 0;
    int *members = amlfs_zalloc((size_t)n, sizeof(int));
    for (int c = 0; c < classes; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (labels[pool[i]] == c)
                members[m++] = pool[i];
        amlfs_shuffle(members, m,
                      amlfs_rng(seed, 0, draw * 1000u + (uint32_t)c, AMLFS_STREAM_SPLIT));
        for (int i = 0; i < m; i++) {
            if (i < quota[c])
                chosen[nc++] = members[i];
            else
                rest[nr++] = members[i];
        }
    }
    qsort(chosen, (size_t)nc, sizeof(int), cmp_int);
    qsort(rest, (size_t)nr, sizeof(int), cmp_int);
    free(members);
    free(count);
    free(quota);
    free(frac);
}

/* Replaces labels with probability ratio; returns how many changed. */
static int apply_noise(int32_t *labels, int n, int classes, double ratio, int pair,
                       uint32_t seed)
{
    amlfs_rng_name r = amlfs_rng(seed, 0, 0, AMLFS_STREAM_NOISE);
    int changed = 0;
    for (int i = 0; i < n; i++) {
        if (amlfs_rng_uniform(r, 2 * (uint64_t)i) >= ratio)
            continue;
        int y = labels[i];
        if (pair) {
            labels[i] = (y + 1) % classes;
        } else { /* uniformly among the other classes */
            int k = (int)amlfs_rng_below(r, 2 * (uint64_t)i + 1, (uint32_t)(classes - 1));
            labels[i] = k >= y ? k + 1 : k;
        }
        changed++;
    }
    return changed;
}

static void write_split(hid_t f, const char *group, const image_set *s, const int *idx, int n,
                        const int32_t *labels_override)
{
    size_t pixels = (size_t)s->channels * s->height * s->width;
    uint8_t *images = amlfs_zalloc((size_t)n, pixels);
    int32_t *labels = amlfs_zalloc((size_t)n, sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        memcpy(images + (size_t)i * pixels, s->images + (size_t)idx[i] * pixels, pixels);
        labels[i] = labels_override ? labels_override[i] : s->labels[idx[i]];
    }
    char path[64];
    hsize_t di[4] = {(hsize_t)n, (hsize_t)s->channels, (hsize_t)s->height, (hsize_t)s->width};
    hsize_t dl[1] = {(hsize_t)n};
    hid_t g = amlfs_h5_group(f, group);
    H5Gclose(g);
    snprintf(path, sizeof path, "%s/images", group);
    amlfs_h5_write(f, path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, di, images);
    snprintf(path, sizeof path, "%s/labels", group);
    amlfs_h5_write(f, path, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dl, labels);
    free(images);
    free(labels);
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-prep");
    if (argc >= 2 && !strcmp(argv[1], "face"))
        return amlfs_prep_face(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "market1501") || !strcmp(argv[1], "dukemtmc")))
        return amlfs_prep_reid(argc - 1, argv + 1);
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"src", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"train-size", required_argument, 0, 't'},
                                         {"val-size", required_argument, 0, 'v'},
                                         {"noise", required_argument, 0, 'n'},
                                         {"noise-kind", required_argument, 0, 'k'},
                                         {"seed", required_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    static const char *const names[] = {"fashion-mnist", "cifar10", NULL};
    static const char *const kinds[] = {"symmetric", "pair", NULL};
    const char *src = NULL, *out = NULL;
    long long train_size = -1, val_size = 5000, seed = 1;
    double noise = 0.0;
    int kind = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': src = optarg; break;
        case 'o': out = optarg; break;
        case 't': train_size = amlfs_arg_int("--train-size", optarg, 1, 1 << 30); break;
        case 'v': val_size = amlfs_arg_int("--val-size", optarg, 1, 1 << 30); break;
        case 'n': noise = amlfs_arg_double("--noise", optarg, 0.0, 1.0); break;
        case 'k': kind = amlfs_arg_choice("--noise-kind", optarg, kinds); break;
        case 'S': seed = amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give one data set name: fashion-mnist or cifar10");
    int which = amlfs_arg_choice("data set", argv[optind], names);
    if (!out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--out is required");
    if (!src && which == 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "cifar10 needs --src DIR (cifar-10-batches-bin)");
    if (!src)
        src = "/usr/share/datasets/fashion-mnist";

    image_set train = {0}, test = {0};
    if (which == 0) {
        load_fashion(src, "train", &train);
        load_fashion(src, "t10k", &test);
    } else {
        static const char *const batches[] = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"};
        static const char *const test_batch[] = {"test_batch.bin"};
        load_cifar(src, batches, 5, &train);
        load_cifar(src, test_batch, 1, &test);
    }
    if (val_size >= train.n)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--val-size %lld leaves no training images of %d",
                   val_size, train.n);
    int remaining = train.n - (int)val_size;
    if (train_size < 0)
        train_size = remaining;
    if (train_size > remaining)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--train-size %lld: only %d training images remain after --val-size %lld",
                   train_size, remaining, val_size);

    int *all = amlfs_zalloc((size_t)train.n, sizeof(int));
    int *val = amlfs_zalloc((size_t)val_size, sizeof(int));
    int *rest = amlfs_zalloc((size_t)remaining, sizeof(int));
    int *kept = amlfs_zalloc((size_t)train_size, sizeof(int));
    int *unused = amlfs_zalloc((size_t)(remaining - train_size), sizeof(int));
    for (int i = 0; i < train.n; i++)
        all[i] = i;
    stratified(all, train.n, train.labels, train.classes, (int)val_size, (uint32_t)seed, 0, val,
               rest);
    stratified(rest, remaining, train.labels, train.classes, (int)train_size, (uint32_t)seed, 1,
               kept, unused);

    int32_t *clean = amlfs_zalloc((size_t)train_size, sizeof(int32_t));
    int32_t *noisy = amlfs_zalloc((size_t)train_size, sizeof(int32_t));
    for (int i = 0; i < train_size; i++)
        clean[i] = noisy[i] = train.labels[kept[i]];
    int changed = noise > 0 ? apply_noise(noisy, (int)train_size, train.classes, noise, kind == 1,
                                          (uint32_t)seed)
                            : 0;

    /* per-channel mean and std of the kept training images, [0,1] pixel units */
    double mean[3] = {0}, sd[3] = {0};
    size_t plane = (size_t)train.height * train.width;
    for (int ch = 0; ch < train.channels; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < train_size; i++) {
            const uint8_t *p = train.images + ((size_t)kept[i] * train.channels + ch) * plane;
            for (size_t j = 0; j < plane; j++) {
                s += p[j];
                s2 += (double)p[j] * p[j];
            }
        }
        double count = (double)train_size * plane;
        mean[ch] = s / count / 255.0;
        sd[ch] = sqrt(fmax(s2 / count - (s / count) * (s / count), 0.0)) / 255.0;
    }

    amlfs_h5_out o = amlfs_h5_create(out, "dataset");
    amlfs_attr_set_str(o.file, "/", "name", names[which]);
    amlfs_attr_set_i64(o.file, "/", "classes", train.classes);
    amlfs_attr_set_i64(o.file, "/", "channels", train.channels);
    amlfs_attr_set_i64(o.file, "/", "height", train.height);
    amlfs_attr_set_i64(o.file, "/", "width", train.width);
    amlfs_attr_set_f64v(o.file, "/", "mean", mean, (size_t)train.channels);
    amlfs_attr_set_f64v(o.file, "/", "std", sd, (size_t)train.channels);
    amlfs_attr_set_f64(o.file, "/", "noise_ratio", noise);
    amlfs_attr_set_str(o.file, "/", "noise_kind", noise > 0 ? kinds[kind] : "none");
    amlfs_attr_set_i64(o.file, "/", "seed", seed);
    write_split(o.file, "/train", &train, kept, (int)train_size, noisy);
    if (noise > 0) {
        hsize_t dl[1] = {(hsize_t)train_size};
        amlfs_h5_write(o.file, "/train/clean_labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dl,
                       clean);
    }
    write_split(o.file, "/val", &train, val, (int)val_size, NULL);
    int *test_idx = amlfs_zalloc((size_t)test.n, sizeof(int));
    for (int i = 0; i < test.n; i++)
        test_idx[i] = i;
    write_split(o.file, "/test", &test, test_idx, test.n, NULL);
    amlfs_h5_finish(&o);
    printf("%s\n", out);
    amlfs_note("%s: %lld train (%d labels changed by noise), %lld val, %d test images",
               names[which], train_size, changed, val_size, test.n);
    free(test_idx);
    free(clean);
    free(noisy);
    free(all);
    free(val);
    free(rest);
    free(kept);
    free(unused);
    free_set(&train);
    free_set(&test);
    return AMLFS_EXIT_OK;
}
