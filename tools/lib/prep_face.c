/* prep_face.c: amlfs-prep face (prep_face.h). The listing and the chunked, parallel
 * decoding are prep_images.h's: the folder is never held in memory.
 * Depends on: prep_images, h5io, data (shuffle), tool, amlfs_rng.h. */
#include "prep_face.h"
#include "amlfs_rng.h"
#include "data.h"
#include "h5io.h"
#include "prep_images.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-prep face --train DIR --lfw-pairs pairs.txt --lfw-dir DIR --out F.h5\n"
    "                  [--size HxW] [--val-identities N] [--val-pairs P] [--probe DIR]\n"
    "                  [--distractors DIR] [--skip-bad] [--name NAME] [--seed S]\n"
    "                  [--threads N]\n"
    "\n"
    "Writes a face dataset file (schema dataset, /@task face):\n"
    "  /train   the training folder's images (one sub-folder per identity, .jpg .jpeg\n"
    "           .png), identities relabelled 0..K-1 in sorted folder-name order (byte\n"
    "           order), their names in /train/identities; /@mean and /@std from these\n"
    "  /val     N identities held out of the training folder (drawn from --seed), labels\n"
    "           0..N-1 in name order, and P pairs (/val/pairs rows into /val/images,\n"
    "           /val/issame): even rows same identity, odd rows different, so contiguous\n"
    "           folds stay balanced; repeats possible\n"
    "  /test    the images an LFW pairs.txt names (DIR/name/name_%04d.jpg), each once,\n"
    "           in (name, number) order, labels the name's index among them;\n"
    "           /test/pairs and /test/issame in the file's order\n"
    "  /probe        --probe DIR: one sub-folder per identity, labels 0..Kp-1\n"
    "  /distractors  --distractors DIR: every image under DIR (any sub-folders), labels -1\n"
    "Images are decoded (JPEG with libjpeg, PNG with libpng; greyscale to RGB) and\n"
    "resized to HxW (area when shrinking an axis, bilinear when enlarging: image.h).\n"
    "pairs.txt: an optional header line ('10 300': folds and pairs per half, or one\n"
    "number), then lines 'name n1 n2' (same) and 'name1 n1 name2 n2' (different).\n"
    "\n"
    "  --size HxW           112x96 (default) or 112x112, any 8..1024 each\n"
    "  --val-identities N   held-out identities, at least 2 (default 10)\n"
    "  --val-pairs P        validation pairs (default 1000)\n"
    "  --skip-bad           an unreadable image is skipped (pairs naming it dropped) and\n"
    "                       counted; without it the first one is an error\n"
    "  --name NAME          /@name (default face)\n"
    "  --seed S             0 to 4294967295 (default 1)\n"
    "  --threads N          decoding threads (default: OMP_NUM_THREADS, else all cores)\n"
    "A progress line goes to stderr every 5 s on a big folder, when it is a terminal.\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input (an unreadable\n"
    "image, an identity with one image among the held-out ones, a malformed pairs.txt\n"
    "line, a pair naming a missing image, an empty folder): one line, nothing written.\n";

/* An identity folder: its sorted sub-folders, each with its sorted images. */
typedef struct {
    amlfs_prep_names ids;
    amlfs_prep_names *images; /* per identity */
} id_folder;

static void list_identities(const char *dir, const char *opt, id_folder *f)
{
    memset(f, 0, sizeof *f);
    amlfs_prep_list_dir(dir, &f->ids, NULL);
    if (f->ids.n == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "%s: an empty folder (expected one sub-folder per "
                   "identity)", opt);
    f->images = amlfs_zalloc((size_t)f->ids.n, sizeof(amlfs_prep_names));
    for (int k = 0; k < f->ids.n; k++) {
        char *p = amlfs_prep_join(dir, f->ids.v[k]);
        amlfs_prep_list_dir(p, NULL, &f->images[k]);
        if (f->images[k].n == 0)
            amlfs_fail(AMLFS_EXIT_USAGE, p, "an empty identity folder (no .jpg, .jpeg or "
                       ".png images)");
        free(p);
    }
}

static void id_folder_free(id_folder *f)
{
    for (int k = 0; k < f->ids.n; k++)
        amlfs_prep_names_free(&f->images[k]);
    free(f->images);
    amlfs_prep_names_free(&f->ids);
}

/* ---- pairs.txt -------------------------------------------------------------------- */

typedef struct {
    char *name[2];
    int num[2];
    int same;
    int line;
} lfw_pair;

static int parse_count(const char *s, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < 1 || x > 1000000000)
        return -1;
    *v = (int)x;
    return 0;
}

/* Both formats: an optional header ("F N": F folds of N same then N different pairs, or
 * "N": N same then N different), then one pair a line; blank lines are skipped. */
static lfw_pair *read_pairs(const char *path, int *npairs)
{
    FILE *in = fopen(path, "r");
    if (!in)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot open: %s", strerror(errno));
    lfw_pair *v = NULL;
    int n = 0, cap = 0, lineno = 0, first = 1;
    long long expect = -1;
    char buf[4096];
    while (fgets(buf, sizeof buf, in)) {
        lineno++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n')
            amlfs_fail(AMLFS_EXIT_USAGE, path, "line %d: longer than %zu characters", lineno,
                       sizeof buf - 2);
        char *tok[6];
        int nt = 0;
        for (char *t = strtok(buf, " \t\r\n"); t; t = strtok(NULL, " \t\r\n"))
            if (nt < 6)
                tok[nt++] = t;
            else
                nt = 7;
        if (nt == 0)
            continue;
        int a, b;
        if (first && (nt == 1 || nt == 2) && !parse_count(tok[0], &a) &&
            (nt == 1 || !parse_count(tok[1], &b))) {
            expect = nt == 1 ? 2LL * a : 2LL * a * b;
            first = 0;
            continue;
        }
        first = 0;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            v = realloc(v, sizeof *v * (size_t)cap);
            if (!v)
                amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
        }
        lfw_pair *p = &v[n];
        p->line = lineno;
        int ok = 0;
        if (nt == 3) {
            ok = !parse_count(tok[1], &p->num[0]) && !parse_count(tok[2], &p->num[1]);
            p->name[0] = p->name[1] = tok[0];
            p->same = 1;
        } else if (nt == 4) {
            ok = !parse_count(tok[1], &p->num[0]) && !parse_count(tok[3], &p->num[1]);
            p->name[0] = tok[0];
            p->name[1] = tok[2];
            p->same = 0;
        }
        if (!ok || strchr(p->name[0], '/') || strchr(p->name[1], '/'))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "line %d: malformed pair (expected 'name n1 "
                       "n2' or 'name1 n1 name2 n2' with image numbers >= 1)", lineno);
        p->name[0] = strdup(p->name[0]);
        p->name[1] = strdup(p->name[1]);
        if (!p->name[0] || !p->name[1])
            amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
        n++;
    }
    int bad = ferror(in);
    fclose(in);
    if (bad)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
    if (n == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "no pairs");
    if (expect >= 0 && expect != n)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "its header promises %lld pairs, %d follow", expect,
                   n);
    *npairs = n;
    return v;
}

typedef struct {
    const char *name;
    int num;
} lfw_key;

static int cmp_key(const void *a, const void *b)
{
    const lfw_key *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->num > y->num) - (x->num < y->num);
}

/* The test images of the pairs (each once, sorted by name and number), their labels
 * (the name's index among the names), and each pair's two rows into them. */
static void pairs_to_items(const lfw_pair *p, int np, const char *dir, amlfs_prep_items *out,
                           int32_t *rows)
{
    lfw_key *keys = amlfs_zalloc((size_t)np * 2, sizeof *keys);
    for (int i = 0; i < np; i++)
        for (int s = 0; s < 2; s++)
            keys[2 * i + s] = (lfw_key){p[i].name[s], p[i].num[s]};
    qsort(keys, (size_t)np * 2, sizeof *keys, cmp_key);
    int nu = 0, label = -1;
    for (int i = 0; i < 2 * np; i++) {
        if (nu && !cmp_key(&keys[i], &keys[nu - 1]))
            continue;
        if (!nu || strcmp(keys[i].name, keys[nu - 1].name))
            label++;
        keys[nu++] = keys[i];
        size_t len = strlen(dir) + 2 * strlen(keys[i].name) + 32;
        char *path = amlfs_zalloc(len, 1);
        snprintf(path, len, "%s/%s/%s_%04d.jpg", dir, keys[i].name, keys[i].name, keys[i].num);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "a pair names this image, which is missing");
        amlfs_prep_items_add(out, path, label);
        free(path);
    }
    for (int i = 0; i < np; i++)
        for (int s = 0; s < 2; s++) {
            lfw_key k = {p[i].name[s], p[i].num[s]};
            lfw_key *hit = bsearch(&k, keys, (size_t)nu, sizeof *keys, cmp_key);
            rows[2 * i + s] = (int32_t)(hit - keys);
        }
    free(keys);
}

static void write_pairs(hid_t f, const char *group, const int32_t *pairs, const uint8_t *issame,
                        int n)
{
    char path[64];
    hsize_t dp[2] = {(hsize_t)n, 2}, di[1] = {(hsize_t)n};
    snprintf(path, sizeof path, "%s/pairs", group);
    amlfs_h5_write(f, path, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dp, pairs);
    snprintf(path, sizeof path, "%s/issame", group);
    amlfs_h5_write(f, path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, di, issame);
}

/* /train/identities: fixed-length null-terminated strings (what the schema's string is). */
static void write_names(hid_t f, const char *path, const amlfs_prep_names *names, const int *which,
                        int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        if (strlen(names->v[which[i]]) + 1 > len)
            len = strlen(names->v[which[i]]) + 1;
    char *buf = amlfs_zalloc((size_t)n, len);
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * len, names->v[which[i]], strlen(names->v[which[i]]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hsize_t d[1] = {(hsize_t)n};
    amlfs_h5_write(f, path, t, t, 1, d, buf);
    H5Tclose(t);
    free(buf);
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

int amlfs_prep_face(int argc, char **argv)
{
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"train", required_argument, 0, 't'},
                                         {"size", required_argument, 0, 'z'},
                                         {"val-identities", required_argument, 0, 'v'},
                                         {"val-pairs", required_argument, 0, 'p'},
                                         {"lfw-pairs", required_argument, 0, 'l'},
                                         {"lfw-dir", required_argument, 0, 'L'},
                                         {"probe", required_argument, 0, 'P'},
                                         {"distractors", required_argument, 0, 'D'},
                                         {"skip-bad", no_argument, 0, 'k'},
                                         {"name", required_argument, 0, 'n'},
                                         {"out", required_argument, 0, 'o'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"threads", required_argument, 0, 'T'},
                                         {0, 0, 0, 0}};
    const char *train_dir = NULL, *lfw_pairs = NULL, *lfw_dir = NULL, *probe_dir = NULL;
    const char *dist_dir = NULL, *out = NULL, *name = "face";
    int height = 112, width = 96, nval = 10, npairs = 1000, c;
    long long seed = 1;
    amlfs_prep_decode o = {0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': train_dir = optarg; break;
        case 'z': amlfs_prep_parse_size(optarg, "112x96", &height, &width); break;
        case 'v': nval = (int)amlfs_arg_int("--val-identities", optarg, 2, 1 << 24); break;
        case 'p': npairs = (int)amlfs_arg_int("--val-pairs", optarg, 1, 1 << 28); break;
        case 'l': lfw_pairs = optarg; break;
        case 'L': lfw_dir = optarg; break;
        case 'P': probe_dir = optarg; break;
        case 'D': dist_dir = optarg; break;
        case 'k': o.skip_bad = 1; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'S': seed = amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        case 'T': omp_set_num_threads((int)amlfs_arg_int("--threads", optarg, 1, 4096)); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see "
                       "amlfs-prep face --help)", argv[optind - 1]);
        }
    }
    if (optind != argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!train_dir || !out || !lfw_pairs || !lfw_dir)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "face needs --train DIR, --lfw-pairs FILE, "
                   "--lfw-dir DIR and --out FILE");
    o.height = height;
    o.width = width;

    /* every input listed and checked before anything is decoded */
    id_folder tf;
    list_identities(train_dir, "--train", &tf);
    if (tf.ids.n <= nval)
        amlfs_fail(AMLFS_EXIT_USAGE, train_dir, "%d identities; --val-identities %d leaves none "
                   "to train on", tf.ids.n, nval);
    int *order = amlfs_zalloc((size_t)tf.ids.n, sizeof(int));
    for (int k = 0; k < tf.ids.n; k++)
        order[k] = k;
    amlfs_shuffle(order, tf.ids.n, amlfs_rng((uint32_t)seed, 0, 0, AMLFS_STREAM_FACE_PAIRS));
    int *val_ids = order, *train_ids = order + nval, ntrain_ids = tf.ids.n - nval;
    qsort(val_ids, (size_t)nval, sizeof(int), cmp_int);
    qsort(train_ids, (size_t)ntrain_ids, sizeof(int), cmp_int);
    for (int v = 0; v < nval; v++)
        if (tf.images[val_ids[v]].n < 2) {
            char *p = amlfs_prep_join(train_dir, tf.ids.v[val_ids[v]]);
            amlfs_fail(AMLFS_EXIT_USAGE, p, "held out for validation with 1 image; the "
                       "validation pairs need 2 per identity (another --seed, or more images)");
        }
    amlfs_prep_items train = {0}, val = {0}, test = {0}, probe = {0}, dist = {0};
    for (int k = 0; k < ntrain_ids; k++)
        for (int i = 0; i < tf.images[train_ids[k]].n; i++) {
            char *d = amlfs_prep_join(train_dir, tf.ids.v[train_ids[k]]);
            char *p = amlfs_prep_join(d, tf.images[train_ids[k]].v[i]);
            amlfs_prep_items_add(&train, p, k);
            free(p);
            free(d);
        }
    for (int v = 0; v < nval; v++)
        for (int i = 0; i < tf.images[val_ids[v]].n; i++) {
            char *d = amlfs_prep_join(train_dir, tf.ids.v[val_ids[v]]);
            char *p = amlfs_prep_join(d, tf.images[val_ids[v]].v[i]);
            amlfs_prep_items_add(&val, p, v);
            free(p);
            free(d);
        }
    int ntp;
    lfw_pair *tp = read_pairs(lfw_pairs, &ntp);
    int32_t *test_rows = amlfs_zalloc((size_t)ntp * 2, sizeof(int32_t));
    pairs_to_items(tp, ntp, lfw_dir, &test, test_rows);
    if (probe_dir) {
        id_folder pf;
        list_identities(probe_dir, "--probe", &pf);
        for (int k = 0; k < pf.ids.n; k++)
            for (int i = 0; i < pf.images[k].n; i++) {
                char *d = amlfs_prep_join(probe_dir, pf.ids.v[k]);
                char *p = amlfs_prep_join(d, pf.images[k].v[i]);
                amlfs_prep_items_add(&probe, p, k);
                free(p);
                free(d);
            }
        id_folder_free(&pf);
    }
    if (dist_dir) {
        amlfs_prep_list_tree(dist_dir, &dist);
        if (dist.n == 0)
            amlfs_fail(AMLFS_EXIT_USAGE, dist_dir, "--distractors: an empty folder (no .jpg, "
                       ".jpeg or .png images under it)");
    }

    amlfs_h5_out h = amlfs_h5_create(out, "dataset");
    amlfs_prep_root_attrs(h.file, name, "face", ntrain_ids, height, width, seed);

    uint64_t sums[6] = {0};
    uint8_t *kept = amlfs_zalloc((size_t)train.n, 1);
    int ntrain = amlfs_prep_write_images(h.file, "/train", &train, &o, kept, sums);
    if (ntrain == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, train_dir, "no readable training image");
    double mean[3], sd[3];
    amlfs_prep_moments(sums, ntrain, height, width, mean, sd);
    amlfs_attr_set_f64v(h.file, "/", "mean", mean, 3);
    amlfs_attr_set_f64v(h.file, "/", "std", sd, 3);
    write_names(h.file, "/train/identities", &tf.ids, train_ids, ntrain_ids);
    free(kept);

    /* validation: the kept images of each held-out identity, then the pairs */
    kept = amlfs_zalloc((size_t)val.n, 1);
    int nvimg = amlfs_prep_write_images(h.file, "/val", &val, &o, kept, NULL);
    int *vfirst = amlfs_zalloc((size_t)nval, sizeof(int)), *vcount = amlfs_zalloc((size_t)nval,
                                                                                   sizeof(int));
    for (int i = 0, row = 0; i < val.n; i++)
        if (kept[i]) {
            int v = val.v[i].label;
            if (!vcount[v]++)
                vfirst[v] = row;
            row++;
        }
    int *two = amlfs_zalloc((size_t)nval, sizeof(int)), *one = amlfs_zalloc((size_t)nval,
                                                                             sizeof(int));
    int ntwo = 0, none = 0;
    for (int v = 0; v < nval; v++) {
        if (vcount[v] >= 2)
            two[ntwo++] = v;
        if (vcount[v] >= 1)
            one[none++] = v;
    }
    if (ntwo == 0 || none < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, train_dir, "after skipping unreadable images the held-out "
                   "identities cannot make same and different pairs");
    int32_t *vp = amlfs_zalloc((size_t)npairs * 2, sizeof(int32_t));
    uint8_t *vs = amlfs_zalloc((size_t)npairs, 1);
    amlfs_rng_name r = amlfs_rng((uint32_t)seed, 0, 1, AMLFS_STREAM_FACE_PAIRS);
    for (int k = 0; k < npairs; k++) {
        uint64_t u = 4 * (uint64_t)k;
        if (k % 2 == 0) { /* same: an identity with two images, two different images */
            int v = two[amlfs_rng_below(r, u, (uint32_t)ntwo)];
            int a = (int)amlfs_rng_below(r, u + 1, (uint32_t)vcount[v]);
            int b = (int)amlfs_rng_below(r, u + 2, (uint32_t)vcount[v] - 1);
            b += b >= a;
            vp[2 * k] = vfirst[v] + a;
            vp[2 * k + 1] = vfirst[v] + b;
            vs[k] = 1;
        } else { /* different: two identities, one image of each */
            int ia = (int)amlfs_rng_below(r, u, (uint32_t)none);
            int ib = (int)amlfs_rng_below(r, u + 1, (uint32_t)none - 1);
            ib += ib >= ia;
            int va = one[ia], vb = one[ib];
            vp[2 * k] = vfirst[va] + (int)amlfs_rng_below(r, u + 2, (uint32_t)vcount[va]);
            vp[2 * k + 1] = vfirst[vb] + (int)amlfs_rng_below(r, u + 3, (uint32_t)vcount[vb]);
            vs[k] = 0;
        }
    }
    write_pairs(h.file, "/val", vp, vs, npairs);
    free(kept);

    /* test: pairs naming a skipped image are dropped */
    kept = amlfs_zalloc((size_t)test.n, 1);
    int ntimg = amlfs_prep_write_images(h.file, "/test", &test, &o, kept, NULL);
    int *newrow = amlfs_zalloc((size_t)test.n, sizeof(int));
    for (int i = 0, row = 0; i < test.n; i++)
        newrow[i] = kept[i] ? row++ : -1;
    int32_t *tpairs = amlfs_zalloc((size_t)ntp * 2, sizeof(int32_t));
    uint8_t *tsame = amlfs_zalloc((size_t)ntp, 1);
    int ntkept = 0;
    for (int i = 0; i < ntp; i++) {
        int a = newrow[test_rows[2 * i]], b = newrow[test_rows[2 * i + 1]];
        if (a < 0 || b < 0)
            continue;
        tpairs[2 * ntkept] = a;
        tpairs[2 * ntkept + 1] = b;
        tsame[ntkept++] = (uint8_t)tp[i].same;
    }
    write_pairs(h.file, "/test", tpairs, tsame, ntkept);
    free(kept);
    int npimg = 0, ndimg = 0;
    if (probe_dir) {
        kept = amlfs_zalloc((size_t)probe.n, 1);
        npimg = amlfs_prep_write_images(h.file, "/probe", &probe, &o, kept, NULL);
        free(kept);
    }
    if (dist_dir) {
        kept = amlfs_zalloc((size_t)dist.n, 1);
        ndimg = amlfs_prep_write_images(h.file, "/distractors", &dist, &o, kept, NULL);
        free(kept);
    }
    amlfs_h5_finish(&h);
    printf("%s\n", out);
    amlfs_note("face: %d train images of %d identities, %d val images of %d identities with "
               "%d pairs, %d test images with %d pairs, %d probe, %d distractor images",
               ntrain, ntrain_ids, nvimg, nval, npairs, ntimg, ntkept, npimg, ndimg);
    if (o.skipped)
        amlfs_note("skipped %ld unreadable images (--skip-bad), %d test pairs dropped; the "
                   "first: %s", o.skipped, ntp - ntkept, o.first_bad);

    for (int i = 0; i < ntp; i++) {
        free(tp[i].name[0]);
        free(tp[i].name[1]);
    }
    free(tp);
    free(test_rows);
    free(newrow);
    free(tpairs);
    free(tsame);
    free(vp);
    free(vs);
    free(vfirst);
    free(vcount);
    free(two);
    free(one);
    free(order);
    amlfs_prep_items_free(&train);
    amlfs_prep_items_free(&val);
    amlfs_prep_items_free(&test);
    amlfs_prep_items_free(&probe);
    amlfs_prep_items_free(&dist);
    id_folder_free(&tf);
    return AMLFS_EXIT_OK;
}
