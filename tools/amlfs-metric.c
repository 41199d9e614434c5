/* amlfs-metric: face verification and MegaFace identification of embeddings from any
 * framework, on plain HDF5 files or the MegaFace devkit's feature files (issue 16). */
#include "h5io.h"
#include "metric.h"
#include "plain.h"
#include "reid.h"
#include "tool.h"

#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-metric verify --features F.h5 [--pairs P.h5] [--folds 10] [--far 1e-3]\n"
    "                           [--flip] [--out R.h5]\n"
    "       amlfs-metric identify (--probe P.h5 | --megaface-probe LIST)\n"
    "                           [--distractors D.h5 [D2.h5 ...]] [--megaface-features LIST]\n"
    "                           [--rank 1] [--threads N] [--out R.h5]\n"
    "       amlfs-metric reid --query Q.h5 --gallery G.h5 [--distmat D.h5]\n"
    "                           [--distance euclidean|cosine] [--rerank [--save-distmat]]\n"
    "                           [--threads N] [--out R.h5]\n"
    "\n"
    "verify: 10-fold verification accuracy and TAR at FAR as insightface's\n"
    "verification.py computes them: embeddings L2-normalised, squared L2 distance,\n"
    "contiguous folds, per fold the first best of the thresholds 0, 0.01, ..., 3.99 on\n"
    "the other folds and \"same\" when the distance is below it; TAR at the threshold\n"
    "interpolated linearly on the other folds' FAR (thresholds 0, 0.001, ..., 3.999).\n"
    "  --features F   /features (N,D) float32 or float64; with --flip also\n"
    "                 /features_flip (N,D), the flipped images' features, added to\n"
    "                 /features before normalising\n"
    "  --pairs P      the file of /pairs (P,2) (any integer type, rows of /features) and\n"
    "                 /issame (P) (0/1, any integer type or bool); default F itself.\n"
    "                 Without /pairs, rows 2i and 2i+1 are pair i (insightface's .bin\n"
    "                 layout) and /issame holds N/2 values\n"
    "  --folds K      contiguous folds (default 10; 1 tests on the training pairs)\n"
    "  --far X        the FAR target (default 1e-3)\n"
    "\n"
    "identify: MegaFace rank-k identification: for each probe identity of n images,\n"
    "each image in turn joins the distractors as the gallery entry and the other n - 1\n"
    "are probes; a hit when the probe's cosine with its mate is at least its k-th best\n"
    "distractor's. Distractors are streamed in chunks (float32 BLAS, every deciding\n"
    "score recomputed in float64), never held whole.\n"
    "  --probe P      /probe (N,D) float32 or float64 and /probe_ids (N), any integer\n"
    "  --megaface-probe LIST  probes as MegaFace feature files (FaceScrub's layout:\n"
    "                 the identity is the name of each file's folder)\n"
    "  --distractors D [D2 ...]  /distractors (M,D) in one or several files\n"
    "  --megaface-features LIST  distractors as MegaFace devkit feature files: LIST is a\n"
    "                 text file of paths, one a line (relative ones from LIST's folder;\n"
    "                 blank lines and lines from # on passed over); each file an OpenCV\n"
    "                 matrix: int32 rows, cols, row stride in bytes, type (5 float32,\n"
    "                 6 float64), then the (D,1) or (1,D) values\n"
    "  --rank K       the rank (default 1); the output's /cmc holds ranks 1 to K\n"
    "  --threads N    threads for BLAS and the scans (default: all cores)\n"
    "\n"
    "reid: person re-identification mAP and CMC (ranks 1 to 50), the Market-1501 /\n"
    "DukeMTMC-reID protocol as torchreid's eval_market1501: per query the gallery entries\n"
    "of its pid and camera removed, and those of pid -1 (junk); ranked by distance, equal\n"
    "distances in gallery order (stable; torchreid's np.argsort is not); queries without\n"
    "a true match skipped and counted; AP non-interpolated; mAP over the other queries.\n"
    "  --query Q, --gallery G  /pids (N) and /camids (N), any integer type, and\n"
    "                 /features (N,D) float32 or float64 (used as float32)\n"
    "  --distmat D    /distmat (Q,G) float32 or float64 instead of the features; with\n"
    "                 --rerank also /distmat_qq (Q,Q) and /distmat_gg (G,G)\n"
    "  --distance X   euclidean (squared, as torchreid; the default) or cosine (1 - cos),\n"
    "                 float32 OpenBLAS sgemm over chunks of queries\n"
    "  --rerank       k-reciprocal re-ranking (Zhong et al. 2017; k1 20, k2 6, lambda\n"
    "                 0.3) as torchreid's re_ranking; holds a (Q+G)^2 float32 matrix\n"
    "  --save-distmat with --distmat --rerank: the re-ranked distances into R as /distmat\n"
    "\n"
    "  --out R        root attributes accuracy, accuracy_std, threshold, tar_at_far, far\n"
    "                 (verify), rank1, rank_k, trials (identify) or mAP, rank1, queries,\n"
    "                 skipped and /cmc (reid): schema metric, written\n"
    "                 atomically\n"
    "  --help, --version\n"
    "\n"
    "One summary line on stdout. Exit status: 0 done, 1 a write or the work failed,\n"
    "2 bad usage or input (one line on stderr, nothing written).\n";


/* Buffers live here, reachable until exit, so an exit on bad input leaks nothing. */
static struct {
    double *features, *flip;
    int64_t *pairs64, *issame64;
    int32_t *pairs;
    uint8_t *issame;
    double *probe, *rows;
    int32_t *ids;
    char **files;
    char **names;
} buf;

/* ---- plain HDF5 inputs ----------------------------------------------------------- */

static hid_t open_input(const char *path)
{
    int plain;
    return amlfs_h5_open_or_plain(path, NULL, &plain);
}

/* The (N,D) float matrix name of f as float64, checked finite; dims into dims. */
static double *read_matrix(hid_t f, const char *path, const char *name, const char *shape,
                           hsize_t *dims)
{
    amlfs_plain_dims(f, path, name, PLAIN_FLOAT, 2, 2, shape, dims);
    if (dims[0] < 1 || dims[1] < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape (%llu,%llu), expected %s with at least "
                   "one row and one column", name, (unsigned long long)dims[0],
                   (unsigned long long)dims[1], shape);
    if (dims[1] > (1 << 20))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: %llu columns, expected a feature width of at "
                   "most 1048576", name, (unsigned long long)dims[1]);
    double *x = malloc((size_t)(dims[0] * dims[1]) * sizeof(double));
    if (!x)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: out of memory", name);
    amlfs_h5_read(f, name, H5T_NATIVE_DOUBLE, x);
    for (size_t i = 0; i < dims[0] * dims[1]; i++)
        if (!isfinite(x[i]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%zu][%zu] = %g, expected finite values",
                       name, i / (size_t)dims[1], i % (size_t)dims[1], x[i]);
    return x;
}

/* An integer dataset of rank 1 or 2 (any integer type, or h5py's bool enum) as int64. */
static int64_t *read_ints(hid_t f, const char *path, const char *name, int rank_want,
                          const char *shape, hsize_t *dims)
{
    if (!amlfs_h5_exists(f, name))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: missing, expected a dataset of integers, "
                   "shape %s", name, shape);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: not a dataset, expected integers, shape %s",
                   name, shape);
    hid_t t = H5Dget_type(ds);
    int is_enum = H5Tget_class(t) == H5T_ENUM;
    H5Dclose(ds);
    if (!is_enum) {
        H5Tclose(t);
        amlfs_plain_dims(f, path, name, PLAIN_INTEGER, rank_want, rank_want, shape, dims);
        size_t n = rank_want == 1 ? dims[0] : dims[0] * dims[1];
        int64_t *v = malloc((n ? n : 1) * sizeof(int64_t));
        if (!v)
            amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: out of memory", name);
        if (n)
            amlfs_h5_read(f, name, H5T_NATIVE_INT64, v);
        return v;
    }
    /* h5py writes NumPy's bool as an enum over int8 {FALSE, TRUE}: its raw values */
    hid_t base = H5Tget_super(t);
    size_t size = H5Tget_size(base);
    int is_signed = H5Tget_sign(base) != H5T_SGN_NONE;
    H5Tclose(base);
    ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == rank_want)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (rank != rank_want || size < 1 || size > 8) {
        H5Tclose(t);
        H5Dclose(ds);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: an enum of rank %d, expected integers, "
                   "shape %s", name, rank, shape);
    }
    size_t n = rank_want == 1 ? dims[0] : dims[0] * dims[1];
    unsigned char *raw = malloc((n ? n : 1) * size);
    int64_t *v = malloc((n ? n : 1) * sizeof(int64_t));
    if (!raw || !v)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: out of memory", name);
    hid_t mem = H5Tget_native_type(t, H5T_DIR_ASCEND);
    herr_t rc = n ? H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) : 0;
    H5Tclose(mem);
    H5Tclose(t);
    H5Dclose(ds);
    if (rc < 0) {
        free(raw);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: cannot read the enum values", name);
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *b = raw + i * size;
        if (size == 1)
            v[i] = is_signed ? (int64_t)(int8_t)b[0] : (int64_t)b[0];
        else if (size == 2)
            v[i] = is_signed ? (int64_t) * (const int16_t *)b : (int64_t) * (const uint16_t *)b;
        else if (size == 4)
            v[i] = is_signed ? (int64_t) * (const int32_t *)b : (int64_t) * (const uint32_t *)b;
        else
            v[i] = *(const int64_t *)b;
    }
    free(raw);
    return v;
}

/* ---- verify ---------------------------------------------------------------------- */

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"features", required_argument, 0, 'f'},
                                         {"pairs", required_argument, 0, 'p'},
                                         {"folds", required_argument, 0, 'k'},
                                         {"far", required_argument, 0, 'a'},
                                         {"flip", no_argument, 0, 'F'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *fpath = NULL, *ppath = NULL, *out = NULL;
    int folds = 10, flip = 0;
    double far_target = 1e-3;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': fpath = optarg; break;
        case 'p': ppath = optarg; break;
        case 'k': folds = (int)amlfs_arg_int("--folds", optarg, 1, 1000000); break;
        case 'a': far_target = amlfs_arg_double("--far", optarg, 1e-300, 1.0); break;
        case 'F': flip = 1; break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!fpath)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "verify: --features is required");

    hid_t f = open_input(fpath);
    hsize_t dims[2], fdims[2];
    buf.features = read_matrix(f, fpath, "/features", "(N,D)", dims);
    int64_t n = (int64_t)dims[0];
    int d = (int)dims[1];
    if (flip) {
        if (!amlfs_h5_exists(f, "/features_flip"))
            amlfs_fail(AMLFS_EXIT_USAGE, fpath, "/features_flip: missing, expected the flipped "
                       "images' features (%lld,%d) with --flip", (long long)n, d);
        char want[64];
        snprintf(want, sizeof want, "(N,D) = (%lld,%d)", (long long)n, d);
        buf.flip = read_matrix(f, fpath, "/features_flip", want, fdims);
        if (fdims[0] != dims[0] || fdims[1] != dims[1])
            amlfs_fail(AMLFS_EXIT_USAGE, fpath, "/features_flip: shape (%llu,%llu), expected "
                       "%s, that of /features", (unsigned long long)fdims[0],
                       (unsigned long long)fdims[1], want);
        for (size_t i = 0; i < (size_t)n * d; i++)
            buf.features[i] += buf.flip[i];
    }
    hid_t pf = f;
    const char *pairs_path = fpath;
    if (ppath) {
        pf = open_input(ppath);
        pairs_path = ppath;
    }
    int64_t p;
    hsize_t pd[2], id[2];
    if (amlfs_h5_exists(pf, "/pairs")) {
        buf.pairs64 = read_ints(pf, pairs_path, "/pairs", 2, "(P,2)", pd);
        if (pd[1] != 2)
            amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/pairs: shape (%llu,%llu), expected (P,2)",
                       (unsigned long long)pd[0], (unsigned long long)pd[1]);
        p = (int64_t)pd[0];
    } else {
        if (n % 2)
            amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/pairs: missing, and /features has an odd "
                       "number of rows (%lld): expected /pairs (P,2), or rows 2i and 2i+1 as "
                       "pair i", (long long)n);
        p = n / 2;
        buf.pairs64 = malloc((size_t)(p ? p : 1) * 2 * sizeof(int64_t));
        if (!buf.pairs64)
            amlfs_fail(AMLFS_EXIT_FAILED, pairs_path, "out of memory");
        for (int64_t i = 0; i < 2 * p; i++)
            buf.pairs64[i] = i;
    }
    char want[96];
    snprintf(want, sizeof want, "(P) = (%lld), one per pair", (long long)p);
    buf.issame64 = read_ints(pf, pairs_path, "/issame", 1, want, id);
    if ((int64_t)id[0] != p)
        amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/issame: shape (%llu), expected %s",
                   (unsigned long long)id[0], want);
    if (p < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/pairs: no pair");
    buf.pairs = malloc((size_t)p * 2 * sizeof(int32_t));
    buf.issame = malloc((size_t)p);
    if (!buf.pairs || !buf.issame)
        amlfs_fail(AMLFS_EXIT_FAILED, pairs_path, "out of memory");
    for (int64_t i = 0; i < p; i++) {
        for (int k = 0; k < 2; k++) {
            int64_t v = buf.pairs64[2 * i + k];
            if (v < 0 || v >= n)
                amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/pairs[%lld][%d] = %lld, expected a "
                           "row of /features of %s, 0 to %lld", (long long)i, k, (long long)v,
                           fpath, (long long)n - 1);
            buf.pairs[2 * i + k] = (int32_t)v;
        }
        if (buf.issame64[i] != 0 && buf.issame64[i] != 1)
            amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "/issame[%lld] = %lld, expected 0 or 1",
                       (long long)i, (long long)buf.issame64[i]);
        buf.issame[i] = (uint8_t)buf.issame64[i];
    }
    if (p < folds)
        amlfs_fail(AMLFS_EXIT_USAGE, pairs_path, "%lld pairs for --folds %d: each fold needs "
                   "a pair", (long long)p, folds);
    if (pf != f)
        H5Fclose(pf);
    H5Fclose(f);

    amlfs_verify_result r;
    char err[256];
    if (amlfs_verify_f64(buf.features, n, d, buf.pairs, buf.issame, p, folds, far_target, &r,
                         err, sizeof err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, fpath, "%s", err);
    if (out) {
        amlfs_h5_out o = amlfs_h5_create(out, "metric");
        amlfs_attr_set_str(o.file, "/", "task", "verify");
        amlfs_attr_set_f64(o.file, "/", "accuracy", r.accuracy);
        amlfs_attr_set_f64(o.file, "/", "accuracy_std", r.accuracy_std);
        amlfs_attr_set_f64(o.file, "/", "threshold", r.threshold);
        amlfs_attr_set_f64(o.file, "/", "tar_at_far", r.tar_at_far);
        amlfs_attr_set_f64(o.file, "/", "tar_std", r.tar_std);
        amlfs_attr_set_f64(o.file, "/", "far", r.far);
        amlfs_attr_set_f64(o.file, "/", "far_target", far_target);
        amlfs_attr_set_f64(o.file, "/", "tar_threshold", r.tar_threshold);
        amlfs_attr_set_i64(o.file, "/", "folds", r.folds);
        amlfs_attr_set_i64(o.file, "/", "pairs", r.pairs);
        amlfs_attr_set_i64(o.file, "/", "flip", flip);
        amlfs_h5_finish(&o);
    }
    printf("verify: accuracy %.5f +- %.5f over %d folds of %lld pairs, threshold %.4f; "
           "TAR %.5f at FAR %.6f (target %g)\n", r.accuracy, r.accuracy_std, r.folds,
           (long long)r.pairs, r.threshold, r.tar_at_far, r.far, far_target);
    return AMLFS_EXIT_OK;
}

/* ---- MegaFace feature files ------------------------------------------------------ */

/* The paths of a list file (relative ones from its folder); count into *n. */
static char **read_list(const char *list, int64_t *n)
{
    FILE *fp = fopen(list, "r");
    if (!fp)
        amlfs_fail(AMLFS_EXIT_USAGE, list, "cannot read: %s", strerror(errno));
    char *copy = strdup(list);
    char *dir = strdup(dirname(copy));
    free(copy);
    int64_t cap = 1024, count = 0;
    char **files = malloc((size_t)cap * sizeof(char *));
    char line[4096];
    long lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fclose(fp);
            amlfs_fail(AMLFS_EXIT_USAGE, list, "line %ld: longer than %zu characters", lineno,
                       sizeof line - 2);
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = 0;
        if (!*s)
            continue;
        if (count == cap) {
            cap *= 2;
            files = realloc(files, (size_t)cap * sizeof(char *));
        }
        if (!files)
            amlfs_fail(AMLFS_EXIT_FAILED, list, "out of memory");
        size_t need = strlen(dir) + strlen(s) + 2;
        files[count] = malloc(need);
        if (s[0] == '/')
            snprintf(files[count], need, "%s", s);
        else
            snprintf(files[count], need, "%s/%s", dir, s);
        count++;
    }
    fclose(fp);
    free(dir);
    if (!count)
        amlfs_fail(AMLFS_EXIT_USAGE, list, "no feature file listed");
    *n = count;
    return files;
}

/* One MegaFace feature file into out (capacity dmax values): its dimension. The
 * devkit's matio writes int32 rows, cols, stride (bytes per row), type, then the data;
 * OpenCV's plain binary dumps leave out the stride; the file's size says which. */
static int read_megaface(const char *path, double *out, int dmax)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
    struct stat st;
    int32_t h[4] = {0, 0, 0, 0};
    size_t got = fread(h, sizeof(int32_t), 4, fp);
    if (fstat(fileno(fp), &st) != 0 || got < 3) {
        fclose(fp);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "truncated: %lld bytes, expected a MegaFace "
                   "feature file (int32 rows, cols, stride, type, then the values)",
                   (long long)st.st_size);
    }
    int64_t rows = h[0], cols = h[1], size = st.st_size;
    int header = 0, type = 0;
    for (int hdr = 16; hdr >= 12 && !header; hdr -= 4) {
        int t = hdr == 16 ? h[3] : h[2];
        int64_t es = t == 5 ? 4 : t == 6 ? 8 : 0;
        if (es && rows >= 1 && cols >= 1 && size == hdr + rows * cols * es &&
            (hdr == 12 || h[2] == cols * es || h[2] == cols * 4)) {
            header = hdr;
            type = t;
        }
    }
    if (!header) {
        fclose(fp);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "not a MegaFace feature file: header rows %d, cols "
                   "%d, stride %d, type %d and %lld bytes; expected int32 rows, cols, stride, "
                   "type 5 (float32) or 6 (float64), then rows * cols values",
                   h[0], h[1], h[2], h[3], (long long)size);
    }
    if (rows != 1 && cols != 1) {
        fclose(fp);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "a %lld x %lld matrix, expected one feature vector "
                   "((D,1) or (1,D))", (long long)rows, (long long)cols);
    }
    int64_t dim = rows * cols;
    if (dim > dmax) {
        fclose(fp);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%lld values, expected at most %d (the features' "
                   "dimension D)", (long long)dim, dmax);
    }
    fseek(fp, header, SEEK_SET);
    size_t ok;
    if (type == 5) {
        float v[64];
        ok = 1;
        for (int64_t i = 0; i < dim && ok; i += 64) {
            size_t m = (size_t)(dim - i < 64 ? dim - i : 64);
            ok = fread(v, sizeof(float), m, fp) == m;
            for (size_t j = 0; j < m && ok; j++)
                out[i + (int64_t)j] = v[j];
        }
    } else {
        ok = fread(out, sizeof(double), (size_t)dim, fp) == (size_t)dim;
    }
    fclose(fp);
    if (!ok)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read its %lld values", (long long)dim);
    for (int64_t i = 0; i < dim; i++)
        if (!isfinite(out[i]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "value %lld = %g, expected finite values",
                       (long long)i, out[i]);
    return (int)dim;
}

#define MEGAFACE_MAX_DIM 65536

/* ---- identify -------------------------------------------------------------------- */

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The (M,D) distractors of an HDF5 file: M (exit 2 when D differs from d). */
static int64_t distractor_rows(const char *path, int d)
{
    hid_t f = open_input(path);
    hsize_t dims[2];
    amlfs_plain_dims(f, path, "/distractors", PLAIN_FLOAT, 2, 2, "(M,D)", dims);
    H5Fclose(f);
    if ((int64_t)dims[1] != d)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/distractors: shape (%llu,%llu): dimension %llu, "
                   "but the probes' is %d", (unsigned long long)dims[0],
                   (unsigned long long)dims[1], (unsigned long long)dims[1], d);
    return (int64_t)dims[0];
}

static void stream_h5(amlfs_identify_state *s, const char *path, int d)
{
    hsize_t block = (hsize_t)amlfs_identify_block(s);
    hid_t f = open_input(path);
    hsize_t dims[2];
    amlfs_plain_dims(f, path, "/distractors", PLAIN_FLOAT, 2, 2, "(M,D)", dims);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 12421, (size_t)64 << 20, 1.0); /* whole chunks of any layout */
    hid_t ds = H5Dopen2(f, "/distractors", dapl);
    H5Pclose(dapl);
    hid_t fsp = H5Dget_space(ds);
    for (hsize_t r = 0; r < dims[0]; r += block) {
        hsize_t m = dims[0] - r < block ? dims[0] - r : block;
        hsize_t start[2] = {r, 0}, count[2] = {m, (hsize_t)d};
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t msp = H5Screate_simple(2, count, NULL);
        herr_t rc = H5Dread(ds, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, buf.rows);
        H5Sclose(msp);
        if (rc < 0)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/distractors: cannot read rows %llu to %llu "
                       "(damaged?)", (unsigned long long)r, (unsigned long long)(r + m - 1));
        for (size_t i = 0; i < m * (size_t)d; i++)
            if (!isfinite(buf.rows[i]))
                amlfs_fail(AMLFS_EXIT_USAGE, path, "/distractors[%llu][%zu] = %g, expected "
                           "finite values", (unsigned long long)(r + i / d), i % d, buf.rows[i]);
        amlfs_identify_add(s, buf.rows, (int64_t)m);
        if (amlfs_progress_on())
            fprintf(stderr, "\ramlfs-metric: %s: %llu of %llu distractors", path,
                    (unsigned long long)(r + m), (unsigned long long)dims[0]);
    }
    if (amlfs_progress_on())
        fprintf(stderr, "\n");
    H5Sclose(fsp);
    H5Dclose(ds);
    H5Fclose(f);
}

static int cmd_identify(int argc, char **argv)
{
    static const struct option opts[] = {{"probe", required_argument, 0, 'p'},
                                         {"megaface-probe", required_argument, 0, 'P'},
                                         {"distractors", required_argument, 0, 'd'},
                                         {"megaface-features", required_argument, 0, 'm'},
                                         {"rank", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *probe_path = NULL, *mf_probe = NULL, *mf_list = NULL, *out = NULL;
    int rank = 1, threads = 0;
    const char **dfiles = calloc((size_t)argc + 1, sizeof(char *));
    int nd_files = 0, c;
    opterr = 0;
    optind = 1;
    /* "-" first: positional arguments come back as option 1 (more distractor files) */
    while ((c = getopt_long(argc, argv, "-", opts, NULL)) != -1) {
        switch (c) {
        case 'p': probe_path = optarg; break;
        case 'P': mf_probe = optarg; break;
        case 'd': dfiles[nd_files++] = optarg; break;
        case 1:
            if (!nd_files)
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s' (distractor files "
                           "follow --distractors)", optarg);
            dfiles[nd_files++] = optarg;
            break;
        case 'm': mf_list = optarg; break;
        case 'r': rank = (int)amlfs_arg_int("--rank", optarg, 1, AMLFS_IDENTIFY_MAX_RANK); break;
        case 't': threads = (int)amlfs_arg_int("--threads", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (!probe_path == !mf_probe)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "identify: exactly one of --probe and "
                   "--megaface-probe is required");
    if (!nd_files && !mf_list)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "identify: --distractors or --megaface-features "
                   "is required");
    if (threads) {
        openblas_set_num_threads(threads);
        omp_set_num_threads(threads);
    }

    /* the probes and their identities (relabelled 0..K-1 by value) */
    int64_t np;
    int d;
    int64_t *ids64;
    const char *pwhere = probe_path ? probe_path : mf_probe;
    if (probe_path) {
        hid_t f = open_input(probe_path);
        hsize_t dims[2], idims[2];
        buf.probe = read_matrix(f, probe_path, "/probe", "(N,D)", dims);
        np = (int64_t)dims[0];
        d = (int)dims[1];
        char want[64];
        snprintf(want, sizeof want, "(N) = (%lld), one per row of /probe", (long long)np);
        ids64 = read_ints(f, probe_path, "/probe_ids", 1, want, idims);
        if ((int64_t)idims[0] != np)
            amlfs_fail(AMLFS_EXIT_USAGE, probe_path, "/probe_ids: shape (%llu), expected %s",
                       (unsigned long long)idims[0], want);
        H5Fclose(f);
    } else {
        buf.names = read_list(mf_probe, &np);
        double *v = malloc(MEGAFACE_MAX_DIM * sizeof(double));
        d = read_megaface(buf.names[0], v, MEGAFACE_MAX_DIM);
        buf.probe = malloc((size_t)np * d * sizeof(double));
        ids64 = malloc((size_t)np * sizeof(int64_t));
        char **folders = malloc((size_t)np * sizeof(char *));
        if (!buf.probe || !ids64 || !folders || !v)
            amlfs_fail(AMLFS_EXIT_FAILED, mf_probe, "out of memory");
        for (int64_t i = 0; i < np; i++) {
            int di = read_megaface(buf.names[i], v, MEGAFACE_MAX_DIM);
            if (di != d)
                amlfs_fail(AMLFS_EXIT_USAGE, buf.names[i], "%d values, but the first probe "
                           "(%s) has %d", di, buf.names[0], d);
            memcpy(buf.probe + (size_t)i * d, v, (size_t)d * sizeof(double));
            char *copy = strdup(buf.names[i]);
            folders[i] = strdup(basename(dirname(copy)));
            free(copy);
            ids64[i] = i;
            for (int64_t j = 0; j < i; j++)
                if (!strcmp(folders[j], folders[i])) {
                    ids64[i] = ids64[j];
                    break;
                }
        }
        for (int64_t i = 0; i < np; i++)
            free(folders[i]);
        free(folders);
        free(v);
    }
    int64_t *sorted = malloc((size_t)np * sizeof(int64_t));
    buf.ids = malloc((size_t)np * sizeof(int32_t));
    if (!sorted || !buf.ids)
        amlfs_fail(AMLFS_EXIT_FAILED, pwhere, "out of memory");
    memcpy(sorted, ids64, (size_t)np * sizeof(int64_t));
    qsort(sorted, (size_t)np, sizeof(int64_t), compare_i64);
    int64_t identities = 0;
    for (int64_t i = 0; i < np; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            sorted[identities++] = sorted[i];
    for (int64_t i = 0; i < np; i++) {
        int64_t *hit = bsearch(&ids64[i], sorted, (size_t)identities, sizeof(int64_t),
                               compare_i64);
        buf.ids[i] = (int32_t)(hit - sorted);
    }
    free(sorted);
    free(ids64);

    /* every distractor file's shape first, so a bad one fails before the long work */
    int64_t total = 0;
    for (int i = 0; i < nd_files; i++)
        total += distractor_rows(dfiles[i], d);
    int64_t n_mf = 0;
    if (mf_list) {
        buf.files = read_list(mf_list, &n_mf);
        total += n_mf;
    }

    char err[256];
    amlfs_identify_state *s = amlfs_identify_begin(buf.probe, buf.ids, np, d, rank, err,
                                                   sizeof err);
    if (!s)
        amlfs_fail(AMLFS_EXIT_USAGE, pwhere, "%s", err);
    int64_t block = amlfs_identify_block(s);
    buf.rows = malloc((size_t)block * d * sizeof(double));
    if (!buf.rows)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory for %lld distractor rows",
                   (long long)block);
    for (int i = 0; i < nd_files; i++)
        stream_h5(s, dfiles[i], d);
    if (mf_list) {
        int64_t filled = 0;
        double *v = malloc(MEGAFACE_MAX_DIM * sizeof(double));
        if (!v)
            amlfs_fail(AMLFS_EXIT_FAILED, mf_list, "out of memory");
        for (int64_t i = 0; i < n_mf; i++) {
            int di = read_megaface(buf.files[i], v, MEGAFACE_MAX_DIM);
            if (di != d)
                amlfs_fail(AMLFS_EXIT_USAGE, buf.files[i], "%d values, but the probes' "
                           "dimension is %d", di, d);
            memcpy(buf.rows + (size_t)filled * d, v, (size_t)d * sizeof(double));
            if (++filled == block || i == n_mf - 1) {
                amlfs_identify_add(s, buf.rows, filled);
                filled = 0;
            }
        }
        free(v);
    }
    double *cmc = malloc((size_t)rank * sizeof(double));
    int64_t trials = 0;
    if (!cmc)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    if (amlfs_identify_end(s, cmc, &trials, err, sizeof err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, pwhere, "%s", err);
    if (out) {
        amlfs_h5_out o = amlfs_h5_create(out, "metric");
        amlfs_attr_set_str(o.file, "/", "task", "identify");
        amlfs_attr_set_i64(o.file, "/", "rank", rank);
        amlfs_attr_set_f64(o.file, "/", "rank1", cmc[0]);
        amlfs_attr_set_f64(o.file, "/", "rank_k", cmc[rank - 1]);
        amlfs_attr_set_i64(o.file, "/", "trials", trials);
        amlfs_attr_set_i64(o.file, "/", "probes", np);
        amlfs_attr_set_i64(o.file, "/", "identities", identities);
        amlfs_attr_set_i64(o.file, "/", "distractors", total);
        hsize_t dr[1] = {(hsize_t)rank};
        amlfs_h5_write_f64(o.file, "/cmc", 1, dr, cmc);
        amlfs_h5_finish(&o);
    }
    if (rank == 1)
        printf("identify: rank-1 %.5f over %lld trials (%lld probes of %lld identities, %lld "
               "distractors)\n", cmc[0], (long long)trials, (long long)np,
               (long long)identities, (long long)total);
    else
        printf("identify: rank-%d %.5f, rank-1 %.5f over %lld trials (%lld probes of %lld "
               "identities, %lld distractors)\n", rank, cmc[rank - 1], cmc[0],
               (long long)trials, (long long)np, (long long)identities, (long long)total);
    free(cmc);
    free(dfiles);
    return AMLFS_EXIT_OK;
}

/* ---- reid ------------------------------------------------------------------------ */

/* The (N,D) float matrix name of f as float32, checked finite. */
static float *read_features(hid_t f, const char *path, const char *name, hsize_t *dims)
{
    amlfs_plain_dims(f, path, name, PLAIN_FLOAT, 2, 2, "(N,D)", dims);
    if (dims[0] < 1 || dims[1] < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape (%llu,%llu), expected (N,D) with at "
                   "least one row and one column", name, (unsigned long long)dims[0],
                   (unsigned long long)dims[1]);
    if (dims[1] > (1 << 20))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: %llu columns, expected a feature width of at "
                   "most 1048576", name, (unsigned long long)dims[1]);
    float *x = malloc((size_t)(dims[0] * dims[1]) * sizeof(float));
    if (!x)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: out of memory", name);
    amlfs_h5_read(f, name, H5T_NATIVE_FLOAT, x);
    for (size_t i = 0; i < dims[0] * dims[1]; i++)
        if (!isfinite(x[i]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%zu][%zu] = %g, expected finite values "
                       "(float32)", name, i / (size_t)dims[1], i % (size_t)dims[1], x[i]);
    return x;
}

/* /pids and /camids of a query or gallery file: n entries each, as int32. */
static void read_ids(hid_t f, const char *path, int32_t **pids, int32_t **cams, int64_t *n)
{
    hsize_t dp[2], dc[2];
    int64_t *p = read_ints(f, path, "/pids", 1, "(N)", dp);
    int64_t *c = read_ints(f, path, "/camids", 1, "(N)", dc);
    if (dp[0] != dc[0])
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/camids: %llu entries, but /pids has %llu",
                   (unsigned long long)dc[0], (unsigned long long)dp[0]);
    if (dp[0] < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/pids: no entry");
    *n = (int64_t)dp[0];
    *pids = malloc((size_t)*n * sizeof(int32_t));
    *cams = malloc((size_t)*n * sizeof(int32_t));
    if (!*pids || !*cams)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "out of memory");
    for (int64_t i = 0; i < *n; i++) {
        if (p[i] < INT32_MIN || p[i] > INT32_MAX)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/pids[%lld] = %lld, expected a 32-bit integer",
                       (long long)i, (long long)p[i]);
        if (c[i] < INT32_MIN || c[i] > INT32_MAX)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/camids[%lld] = %lld, expected a 32-bit "
                       "integer", (long long)i, (long long)c[i]);
        (*pids)[i] = (int32_t)p[i];
        (*cams)[i] = (int32_t)c[i];
    }
    free(p);
    free(c);
}

/* The (rows, cols) float matrix name of D.h5 (float32 or float64), checked finite. */
static void *read_square(hid_t f, const char *path, const char *name, int64_t rows,
                         int64_t cols, int as_double, const char *what)
{
    hsize_t dims[2];
    char want[96];
    snprintf(want, sizeof want, "(%lld,%lld), %s", (long long)rows, (long long)cols, what);
    amlfs_plain_dims(f, path, name, PLAIN_FLOAT, 2, 2, want, dims);
    if ((int64_t)dims[0] != rows || (int64_t)dims[1] != cols)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape (%llu,%llu), expected %s", name,
                   (unsigned long long)dims[0], (unsigned long long)dims[1], want);
    size_t n = (size_t)rows * (size_t)cols;
    void *x = malloc(n * (as_double ? sizeof(double) : sizeof(float)));
    if (!x)
        amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: out of memory", name);
    amlfs_h5_read(f, name, as_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, x);
    for (size_t i = 0; i < n; i++) {
        double v = as_double ? ((double *)x)[i] : ((float *)x)[i];
        if (!isfinite(v))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%zu][%zu] = %g, expected finite "
                       "distances", name, i / (size_t)cols, i % (size_t)cols, v);
    }
    return x;
}

static int cmd_reid(int argc, char **argv)
{
    static const struct option opts[] = {{"query", required_argument, 0, 'q'},
                                         {"gallery", required_argument, 0, 'g'},
                                         {"distmat", required_argument, 0, 'D'},
                                         {"distance", required_argument, 0, 'd'},
                                         {"rerank", no_argument, 0, 'R'},
                                         {"save-distmat", no_argument, 0, 'S'},
                                         {"threads", required_argument, 0, 't'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *qpath = NULL, *gpath = NULL, *dpath = NULL, *dname = NULL, *out = NULL;
    int rerank = 0, save = 0, threads = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q': qpath = optarg; break;
        case 'g': gpath = optarg; break;
        case 'D': dpath = optarg; break;
        case 'd': dname = optarg; break;
        case 'R': rerank = 1; break;
        case 'S': save = 1; break;
        case 't': threads = (int)amlfs_arg_int("--threads", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!qpath || !gpath)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "reid: --query and --gallery are required");
    amlfs_reid_distance dist = AMLFS_REID_EUCLIDEAN;
    if (dname) {
        if (dpath)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "reid: --distance applies to features, not to "
                       "--distmat");
        if (!strcmp(dname, "euclidean"))
            dist = AMLFS_REID_EUCLIDEAN;
        else if (!strcmp(dname, "cosine"))
            dist = AMLFS_REID_COSINE;
        else
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--distance '%s', expected euclidean or cosine",
                       dname);
    }
    if (save && !(dpath && rerank))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "reid: --save-distmat needs --distmat and --rerank");
    if (save && !out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "reid: --save-distmat needs --out");
    if (threads) {
        openblas_set_num_threads(threads);
        omp_set_num_threads(threads);
    }
    int32_t *qp, *qc, *gp, *gc;
    int64_t nq, ng;
    hid_t qf = open_input(qpath), gf = open_input(gpath);
    read_ids(qf, qpath, &qp, &qc, &nq);
    read_ids(gf, gpath, &gp, &gc, &ng);
    amlfs_reid_result r;
    char err[256];
    float *rer = NULL;
    int rc;
    const char *where = dpath ? dpath : qpath;
    if (!dpath) {
        hsize_t qd[2], gd[2];
        float *qx = read_features(qf, qpath, "/features", qd);
        if ((int64_t)qd[0] != nq)
            amlfs_fail(AMLFS_EXIT_USAGE, qpath, "/features: %llu rows, but /pids has %lld "
                       "entries", (unsigned long long)qd[0], (long long)nq);
        float *gx = read_features(gf, gpath, "/features", gd);
        if ((int64_t)gd[0] != ng)
            amlfs_fail(AMLFS_EXIT_USAGE, gpath, "/features: %llu rows, but /pids has %lld "
                       "entries", (unsigned long long)gd[0], (long long)ng);
        if (gd[1] != qd[1])
            amlfs_fail(AMLFS_EXIT_USAGE, gpath, "/features: dimension %llu, but the queries' "
                       "(%s) is %llu", (unsigned long long)gd[1], qpath,
                       (unsigned long long)qd[1]);
        rc = amlfs_reid_eval(qx, qp, qc, nq, gx, gp, gc, ng, (int)qd[1], dist, rerank, &r,
                             err, sizeof err);
        free(qx);
        free(gx);
    } else {
        hid_t df = open_input(dpath);
        double *dm;
        if (!rerank) {
            dm = read_square(df, dpath, "/distmat", nq, ng, 1, "(queries, gallery)");
        } else {
            float *qg = read_square(df, dpath, "/distmat", nq, ng, 0, "(queries, gallery)");
            float *qq = read_square(df, dpath, "/distmat_qq", nq, nq, 0,
                                    "(queries, queries), needed by --rerank");
            float *gg = read_square(df, dpath, "/distmat_gg", ng, ng, 0,
                                    "(gallery, gallery), needed by --rerank");
            rer = malloc((size_t)nq * ng * sizeof(float));
            if (!rer)
                amlfs_fail(AMLFS_EXIT_FAILED, dpath, "out of memory");
            if (amlfs_reid_rerank(qg, qq, gg, nq, ng, 20, 6, 0.3, rer, err, sizeof err))
                amlfs_fail(AMLFS_EXIT_USAGE, dpath, "%s", err);
            free(qq);
            free(gg);
            dm = (double *)realloc(qg, (size_t)nq * ng * sizeof(double));
            if (!dm)
                amlfs_fail(AMLFS_EXIT_FAILED, dpath, "out of memory");
            for (size_t i = 0; i < (size_t)nq * ng; i++)
                dm[i] = rer[i];
        }
        H5Fclose(df);
        rc = amlfs_reid_eval_distmat(dm, qp, qc, nq, gp, gc, ng, &r, err, sizeof err);
        free(dm);
    }
    H5Fclose(qf);
    H5Fclose(gf);
    if (rc)
        amlfs_fail(AMLFS_EXIT_USAGE, where, "%s", err);
    const char *dist_name = dpath ? "given" : dist == AMLFS_REID_COSINE ? "cosine" : "euclidean";
    if (out) {
        amlfs_h5_out o = amlfs_h5_create(out, "metric");
        amlfs_attr_set_str(o.file, "/", "task", "reid");
        amlfs_attr_set_str(o.file, "/", "distance", dist_name);
        amlfs_attr_set_i64(o.file, "/", "rerank", rerank);
        amlfs_attr_set_i64(o.file, "/", "rank", AMLFS_REID_MAX_RANK);
        amlfs_attr_set_f64(o.file, "/", "mAP", r.map);
        amlfs_attr_set_f64(o.file, "/", "rank1", r.rank1);
        amlfs_attr_set_i64(o.file, "/", "queries", r.queries);
        amlfs_attr_set_i64(o.file, "/", "skipped", r.skipped);
        amlfs_attr_set_i64(o.file, "/", "gallery", ng);
        hsize_t dr[1] = {AMLFS_REID_MAX_RANK};
        amlfs_h5_write_f64(o.file, "/cmc", 1, dr, r.cmc);
        if (save) {
            hsize_t dd[2] = {(hsize_t)nq, (hsize_t)ng};
            amlfs_h5_write(o.file, "/distmat", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dd, rer);
        }
        amlfs_h5_finish(&o);
    }
    free(rer);
    printf("reid: mAP %.5f, rank-1 %.5f, rank-5 %.5f, rank-10 %.5f over %lld queries "
           "(%lld skipped without a true match), %lld gallery, %s distance%s\n", r.map,
           r.rank1, r.cmc[4], r.cmc[9], (long long)r.queries, (long long)r.skipped,
           (long long)ng, dist_name, rerank ? ", re-ranked (k1 20, k2 6, lambda 0.3)" : "");
    free(qp);
    free(qc);
    free(gp);
    free(gc);
    return AMLFS_EXIT_OK;
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-metric");
    amlfs_help_version(argc, argv, usage);
    if (argc < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "expected a command, verify, identify or reid (see --help)");
    if (!strcmp(argv[1], "verify"))
        return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(argv[1], "identify"))
        return cmd_identify(argc - 1, argv + 1);
    if (!strcmp(argv[1], "reid"))
        return cmd_reid(argc - 1, argv + 1);
    amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown command '%s', expected verify, identify or reid",
               argv[1]);
}
