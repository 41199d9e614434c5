/* prep_reid.c: amlfs-prep market1501 and dukemtmc (prep_reid.h). Every file name is
 * parsed and checked before anything is decoded; the decoding is prep_images.h's.
 * Depends on: prep_images, h5io, data (shuffle), tool, amlfs_rng.h. */
#include "prep_reid.h"
#include "amlfs_rng.h"
#include "data.h"
#include "h5io.h"
#include "prep_images.h"
#include "tool.h"

#include <ctype.h>
#include <getopt.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-prep market1501|dukemtmc --src DIR --out F.h5 [--size HxW]\n"
    "                  [--val-identities N] [--skip-bad] [--name NAME] [--seed S]\n"
    "                  [--threads N]\n"
    "\n"
    "Writes a re-ID dataset file (schema dataset, /@task reid) from the released folder\n"
    "DIR with bounding_box_train/, query/ and bounding_box_test/ (images .jpg .jpeg .png;\n"
    "other files are ignored). File names: Market-1501 PID_cCAMsSEQ_FRAME_IDX.jpg\n"
    "(0002_c1s1_000451_03.jpg), DukeMTMC-reID PID_cCAM_fFRAME.jpg (0001_c2_f0046182.jpg);\n"
    "PID is digits or -1, CAM from 1; any other name is an error. Person id -1 (junk) is\n"
    "dropped everywhere; id 0 (distractors) is kept in the test gallery only. Camera ids\n"
    "are written from 0 (c1 -> 0).\n"
    "  /train   the training folder's images of the identities not held out, in sorted\n"
    "           file-name order (byte order); /train/labels the pids relabelled 0..K-1 in\n"
    "           sorted pid order, /train/pids the pids, /train/camids; /@classes K;\n"
    "           /@mean and /@std from these images\n"
    "  /val     N training identities held out (drawn from --seed), their images in\n"
    "           file-name order, /val/labels the pids, /val/camids, /val/query: per\n"
    "           identity its cameras in a random order, one random image of each made a\n"
    "           query while every query of the identity keeps a gallery image from\n"
    "           another camera; the rest gallery (an identity seen by one camera: gallery\n"
    "           only)\n"
    "  /test    query/ then bounding_box_test/, each in file-name order: /test/labels\n"
    "           the pids (0 for distractors), /test/camids, /test/query (1 query, 0\n"
    "           gallery)\n"
    "Images are decoded (JPEG with libjpeg, PNG with libpng) and resized to HxW (area\n"
    "when shrinking an axis, bilinear when enlarging: image.h).\n"
    "\n"
    "  --src DIR            the released folder (Market-1501-v15.09.15, DukeMTMC-reID)\n"
    "  --size HxW           256x128 (default), any 8..1024 each\n"
    "  --val-identities N   held-out training identities, at least 1 (default 100)\n"
    "  --skip-bad           an unreadable image is skipped and counted; without it the\n"
    "                       first one is an error\n"
    "  --name NAME          /@name (default market1501 or dukemtmc)\n"
    "  --seed S             0 to 4294967295 (default 1)\n"
    "  --threads N          decoding threads (default: OMP_NUM_THREADS, else all cores)\n"
    "A progress line goes to stderr every 5 s on a big folder, when it is a terminal.\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input (a missing\n"
    "sub-folder, an empty one, a file name outside the layout, an unreadable image, no\n"
    "validation query): one line, nothing written.\n";

/* ---- file names ------------------------------------------------------------------- */

/* 1 to 9 decimal digits at *p, as a number (advancing *p), or -1. */
static long number(const char **p)
{
    const char *s = *p;
    long v = 0;
    int n = 0;
    while (isdigit((unsigned char)*s) && n < 9) {
        v = 10 * v + (*s++ - '0');
        n++;
    }
    if (n == 0 || isdigit((unsigned char)*s))
        return -1;
    *p = s;
    return v;
}

/* At least one digit at *p, skipped (a frame or sequence number of any length). */
static int some_digits(const char **p)
{
    const char *s = *p;
    while (isdigit((unsigned char)*s))
        s++;
    if (s == *p)
        return 0;
    *p = s;
    return 1;
}

static int literal(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n))
        return 0;
    *p += n;
    return 1;
}

/* Market PID_cCAMsSEQ_FRAME_IDX.EXT or Duke PID_cCAM_fFRAME.EXT: 0 with the pid (-1 for
 * junk) and the camera (from 0), or -1 when the name is outside the layout. */
static int parse_name(int duke, const char *name, int *pid, int *cam)
{
    const char *p = name;
    long id = -1, c;
    if (!literal(&p, "-1_")) {
        id = number(&p);
        if (id < 0 || !literal(&p, "_"))
            return -1;
    }
    if (!literal(&p, "c") || (c = number(&p)) < 1)
        return -1;
    if (duke) {
        if (!literal(&p, "_f") || !some_digits(&p))
            return -1;
    } else if (!literal(&p, "s") || !some_digits(&p) || !literal(&p, "_") ||
               !some_digits(&p) || !literal(&p, "_") || !some_digits(&p)) {
        return -1;
    }
    if (strcasecmp(p, ".jpg") && strcasecmp(p, ".jpeg") && strcasecmp(p, ".png"))
        return -1;
    *pid = (int)id;
    *cam = (int)c - 1;
    return 0;
}

/* One released sub-folder: its image names in sorted order, each one's pid and camera. */
typedef struct {
    char *dir;
    amlfs_prep_names files;
    int *pid, *cam;
} reid_folder;

static const char *const layouts[2][2] = {
    {"PID_cCAMsSEQ_FRAME_IDX.jpg", "0002_c1s1_000451_03.jpg"},
    {"PID_cCAM_fFRAME.jpg", "0001_c2_f0046182.jpg"}};

static void read_folder(const char *src, const char *sub, int duke, const char *dataset,
                        reid_folder *f)
{
    memset(f, 0, sizeof *f);
    f->dir = amlfs_prep_join(src, sub);
    struct stat st;
    if (stat(f->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        amlfs_fail(AMLFS_EXIT_USAGE, f->dir, "missing: --src must be the released %s folder "
                   "(bounding_box_train, query, bounding_box_test)", dataset);
    amlfs_prep_list_dir(f->dir, NULL, &f->files);
    if (f->files.n == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, f->dir, "an empty folder (no .jpg, .jpeg or .png images)");
    f->pid = amlfs_zalloc((size_t)f->files.n, sizeof(int));
    f->cam = amlfs_zalloc((size_t)f->files.n, sizeof(int));
    for (int i = 0; i < f->files.n; i++)
        if (parse_name(duke, f->files.v[i], &f->pid[i], &f->cam[i])) {
            char *p = amlfs_prep_join(f->dir, f->files.v[i]);
            amlfs_fail(AMLFS_EXIT_USAGE, p, "a file name outside the %s layout %s (e.g. %s)",
                       dataset, layouts[duke][0], layouts[duke][1]);
        }
}

static void folder_free(reid_folder *f)
{
    amlfs_prep_names_free(&f->files);
    free(f->dir);
    free(f->pid);
    free(f->cam);
}

/* ---- splits ----------------------------------------------------------------------- */

/* The images to write of one group and their side columns (pid, camera, query flag, and
 * for validation the held-out identity's index). */
typedef struct {
    amlfs_prep_items items;
    int32_t *pid, *cam, *ident;
    uint8_t *query;
    int cap;
} reid_split;

static void split_add(reid_split *s, const reid_folder *f, int i, int32_t label, int ident,
                      int query)
{
    char *p = amlfs_prep_join(f->dir, f->files.v[i]);
    amlfs_prep_items_add(&s->items, p, label);
    free(p);
    int n = s->items.n;
    if (n > s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->pid = realloc(s->pid, sizeof(int32_t) * (size_t)s->cap);
        s->cam = realloc(s->cam, sizeof(int32_t) * (size_t)s->cap);
        s->ident = realloc(s->ident, sizeof(int32_t) * (size_t)s->cap);
        s->query = realloc(s->query, (size_t)s->cap);
        if (!s->pid || !s->cam || !s->ident || !s->query)
            amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    }
    s->pid[n - 1] = f->pid[i];
    s->cam[n - 1] = f->cam[i];
    s->ident[n - 1] = ident;
    s->query[n - 1] = (uint8_t)query;
}

static void split_free(reid_split *s)
{
    amlfs_prep_items_free(&s->items);
    free(s->pid);
    free(s->cam);
    free(s->ident);
    free(s->query);
}

/* Drops the rows that were not written (kept[i] 0) from the side columns, in place;
 * returns the rows left. */
static int split_compact(reid_split *s, const uint8_t *kept)
{
    int m = 0;
    for (int i = 0; i < s->items.n; i++)
        if (kept[i]) {
            s->pid[m] = s->pid[i];
            s->cam[m] = s->cam[i];
            s->ident[m] = s->ident[i];
            s->query[m] = s->query[i];
            m++;
        }
    return m;
}

static void write_column(hid_t f, const char *group, const char *name, int u8,
                         const void *data, int n)
{
    char path[64];
    hsize_t d[1] = {(hsize_t)n};
    snprintf(path, sizeof path, "%s/%s", group, name);
    if (u8)
        amlfs_h5_write(f, path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d, data);
    else
        amlfs_h5_write(f, path, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d, data);
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* The validation queries over n rows (ident: held-out identity 0..nval-1, cam: camera):
 * per identity its cameras in a random order (seed, 1, v), one random image of each
 * (seed, 2, v; uniform number t for the t-th camera) made a query when every query of
 * the identity, this one included, still has a gallery image from another camera.
 * Returns the queries; query[i] is set to 0 or 1. */
static int choose_queries(const int32_t *ident, const int32_t *cam, int n, int nval,
                          uint32_t seed, uint8_t *query)
{
    int *first = amlfs_zalloc((size_t)nval + 1, sizeof(int));
    int *rows = amlfs_zalloc((size_t)n, sizeof(int)), *fill = amlfs_zalloc((size_t)nval,
                                                                              sizeof(int));
    for (int i = 0; i < n; i++)
        first[ident[i] + 1]++;
    for (int v = 0; v < nval; v++)
        first[v + 1] += first[v];
    for (int i = 0; i < n; i++) /* rows of each identity, in row order */
        rows[first[ident[i]] + fill[ident[i]]++] = i;
    int *cams = amlfs_zalloc((size_t)n, sizeof(int)), *gal = amlfs_zalloc((size_t)n, sizeof(int));
    int *order = amlfs_zalloc((size_t)n, sizeof(int)), *isq = amlfs_zalloc((size_t)n, sizeof(int));
    int total = 0;
    for (int i = 0; i < n; i++)
        query[i] = 0;
    for (int v = 0; v < nval; v++) {
        int m = first[v + 1] - first[v], nc = 0;
        const int *r = rows + first[v];
        for (int k = 0; k < m; k++)
            cams[k] = cam[r[k]];
        if (m)
            qsort(cams, (size_t)m, sizeof(int), cmp_int);
        for (int k = 0; k < m; k++)
            if (!nc || cams[k] != cams[nc - 1])
                cams[nc++] = cams[k];
        if (nc < 2)
            continue;
        int g = m; /* gallery images of the identity; gal[c] of camera cams[c] */
        for (int c = 0; c < nc; c++) {
            gal[c] = 0;
            isq[c] = 0;
            order[c] = c;
        }
        for (int k = 0; k < m; k++)
            gal[(int *)bsearch(&cam[r[k]], cams, (size_t)nc, sizeof(int), cmp_int) - cams]++;
        amlfs_shuffle(order, nc, amlfs_rng(seed, 1, (uint32_t)v, AMLFS_STREAM_SPLIT));
        amlfs_rng_name pick = amlfs_rng(seed, 2, (uint32_t)v, AMLFS_STREAM_SPLIT);
        for (int t = 0; t < nc; t++) {
            int c = order[t], ok = g - 1 - (gal[c] - 1) > 0;
            for (int q = 0; q < nc && ok; q++)
                if (isq[q] && g - 1 - gal[q] <= 0)
                    ok = 0;
            if (!ok)
                continue;
            int j = (int)amlfs_rng_below(pick, (uint64_t)t, (uint32_t)gal[c]);
            for (int k = 0; k < m; k++) /* the j-th image of camera cams[c] */
                if (cam[r[k]] == cams[c] && j-- == 0) {
                    query[r[k]] = 1;
                    break;
                }
            isq[c] = 1;
            gal[c]--;
            g--;
            total++;
        }
    }
    free(first);
    free(rows);
    free(fill);
    free(cams);
    free(gal);
    free(order);
    free(isq);
    return total;
}

int amlfs_prep_reid(int argc, char **argv)
{
    amlfs_help_version(argc, argv, usage);
    static const char *const datasets[] = {"market1501", "dukemtmc", NULL};
    static const char *const titles[] = {"Market-1501", "DukeMTMC-reID"};
    int duke = amlfs_arg_choice("data set", argv[0], datasets);
    static const struct option opts[] = {{"src", required_argument, 0, 's'},
                                         {"size", required_argument, 0, 'z'},
                                         {"val-identities", required_argument, 0, 'v'},
                                         {"skip-bad", no_argument, 0, 'k'},
                                         {"name", required_argument, 0, 'n'},
                                         {"out", required_argument, 0, 'o'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"threads", required_argument, 0, 'T'},
                                         {0, 0, 0, 0}};
    const char *src = NULL, *out = NULL, *name = datasets[duke];
    int height = 256, width = 128, nval = 100, c;
    long long seed = 1;
    amlfs_prep_decode o = {0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': src = optarg; break;
        case 'z': amlfs_prep_parse_size(optarg, "256x128", &height, &width); break;
        case 'v': nval = (int)amlfs_arg_int("--val-identities", optarg, 1, 1 << 24); break;
        case 'k': o.skip_bad = 1; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'S': seed = amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        case 'T': omp_set_num_threads((int)amlfs_arg_int("--threads", optarg, 1, 4096)); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see "
                       "amlfs-prep %s --help)", argv[optind - 1], datasets[duke]);
        }
    }
    if (optind != argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!src || !out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "%s needs --src DIR and --out FILE", datasets[duke]);
    o.height = height;
    o.width = width;

    /* every name parsed and checked before anything is decoded */
    reid_folder ftrain, fquery, fgallery;
    read_folder(src, "bounding_box_train", duke, titles[duke], &ftrain);
    read_folder(src, "query", duke, titles[duke], &fquery);
    read_folder(src, "bounding_box_test", duke, titles[duke], &fgallery);

    /* the training identities (pid >= 1), sorted; N of them held out */
    int *ids = amlfs_zalloc((size_t)ftrain.files.n, sizeof(int)), nids = 0;
    for (int i = 0; i < ftrain.files.n; i++)
        if (ftrain.pid[i] >= 1)
            ids[nids++] = ftrain.pid[i];
    if (nids)
        qsort(ids, (size_t)nids, sizeof(int), cmp_int);
    int u = 0;
    for (int i = 0; i < nids; i++)
        if (!u || ids[i] != ids[u - 1])
            ids[u++] = ids[i];
    nids = u;
    if (nids <= nval)
        amlfs_fail(AMLFS_EXIT_USAGE, ftrain.dir, "%d identities; --val-identities %d leaves "
                   "none to train on", nids, nval);
    int *order = amlfs_zalloc((size_t)nids, sizeof(int));
    for (int k = 0; k < nids; k++)
        order[k] = k;
    amlfs_shuffle(order, nids, amlfs_rng((uint32_t)seed, 0, 0, AMLFS_STREAM_SPLIT));
    qsort(order, (size_t)nval, sizeof(int), cmp_int);
    qsort(order + nval, (size_t)(nids - nval), sizeof(int), cmp_int);
    int *label_of = amlfs_zalloc((size_t)nids, sizeof(int)), ntrain_ids = nids - nval;
    int *val_of = amlfs_zalloc((size_t)nids, sizeof(int));
    for (int k = 0; k < nids; k++)
        label_of[k] = val_of[k] = -1;
    for (int v = 0; v < nval; v++)
        val_of[order[v]] = v;
    for (int k = 0; k < ntrain_ids; k++)
        label_of[order[nval + k]] = k;

    reid_split train = {0}, val = {0}, test = {0};
    long junk = 0, zeros = 0;
    for (int i = 0; i < ftrain.files.n; i++) {
        int pid = ftrain.pid[i];
        if (pid < 1) { /* junk, and distractors, which are no identity to learn */
            junk += pid < 0;
            zeros += pid == 0;
            continue;
        }
        int k = (int)((int *)bsearch(&pid, ids, (size_t)nids, sizeof(int), cmp_int) - ids);
        if (label_of[k] >= 0)
            split_add(&train, &ftrain, i, label_of[k], -1, 0);
        else
            split_add(&val, &ftrain, i, pid, val_of[k], 0);
    }
    for (int i = 0; i < fquery.files.n; i++) {
        if (fquery.pid[i] < 1) { /* a distractor query has no true match */
            junk += fquery.pid[i] < 0;
            zeros += fquery.pid[i] == 0;
            continue;
        }
        split_add(&test, &fquery, i, fquery.pid[i], -1, 1);
    }
    int nqueries = test.items.n;
    for (int i = 0; i < fgallery.files.n; i++) {
        if (fgallery.pid[i] < 0) {
            junk++;
            continue;
        }
        split_add(&test, &fgallery, i, fgallery.pid[i], -1, 0);
    }
    if (nqueries == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, fquery.dir, "no query image of a person id >= 1");
    if (test.items.n == nqueries)
        amlfs_fail(AMLFS_EXIT_USAGE, fgallery.dir, "no gallery image (every one is junk, -1)");
    {   /* whether the held-out identities can make a query at all, before decoding */
        uint8_t *q = amlfs_zalloc((size_t)val.items.n, 1);
        if (choose_queries(val.ident, val.cam, val.items.n, nval, (uint32_t)seed, q) == 0)
            amlfs_fail(AMLFS_EXIT_USAGE, ftrain.dir, "no held-out identity is seen by two "
                       "cameras: no validation query (another --seed, more --val-identities)");
        free(q);
    }

    amlfs_h5_out h = amlfs_h5_create(out, "dataset");
    amlfs_prep_root_attrs(h.file, name, "reid", ntrain_ids, height, width, seed);

    uint64_t sums[6] = {0};
    uint8_t *kept = amlfs_zalloc((size_t)train.items.n, 1);
    int ntrain = amlfs_prep_write_images(h.file, "/train", &train.items, &o, kept, sums);
    if (ntrain == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, ftrain.dir, "no readable training image");
    split_compact(&train, kept);
    write_column(h.file, "/train", "camids", 0, train.cam, ntrain);
    write_column(h.file, "/train", "pids", 0, train.pid, ntrain);
    double mean[3], sd[3];
    amlfs_prep_moments(sums, ntrain, height, width, mean, sd);
    amlfs_attr_set_f64v(h.file, "/", "mean", mean, 3);
    amlfs_attr_set_f64v(h.file, "/", "std", sd, 3);
    free(kept);

    kept = amlfs_zalloc((size_t)val.items.n, 1);
    int nvimg = amlfs_prep_write_images(h.file, "/val", &val.items, &o, kept, NULL);
    split_compact(&val, kept);
    int nvq = choose_queries(val.ident, val.cam, nvimg, nval, (uint32_t)seed, val.query);
    if (nvq == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, ftrain.dir, "after skipping unreadable images no "
                   "held-out identity is seen by two cameras: no validation query");
    write_column(h.file, "/val", "camids", 0, val.cam, nvimg);
    write_column(h.file, "/val", "query", 1, val.query, nvimg);
    free(kept);

    kept = amlfs_zalloc((size_t)test.items.n, 1);
    int ntimg = amlfs_prep_write_images(h.file, "/test", &test.items, &o, kept, NULL);
    split_compact(&test, kept);
    int ntq = 0, ndist = 0;
    for (int i = 0; i < ntimg; i++) {
        ntq += test.query[i];
        ndist += test.pid[i] == 0;
    }
    if (ntq == 0 || ntq == ntimg)
        amlfs_fail(AMLFS_EXIT_USAGE, src, "after skipping unreadable images the test set has "
                   "no %s", ntq ? "gallery image" : "query");
    write_column(h.file, "/test", "camids", 0, test.cam, ntimg);
    write_column(h.file, "/test", "query", 1, test.query, ntimg);
    free(kept);

    amlfs_h5_finish(&h);
    printf("%s\n", out);
    amlfs_note("%s: %d train images of %d identities, %d val images of %d identities (%d "
               "queries), %d test images (%d queries, %d gallery of which %d distractors); "
               "dropped %ld junk (-1) and %ld id-0 images outside the gallery",
               datasets[duke], ntrain, ntrain_ids, nvimg, nval, nvq, ntimg, ntq, ntimg - ntq,
               ndist, junk, zeros);
    if (o.skipped)
        amlfs_note("skipped %ld unreadable images (--skip-bad); the first: %s", o.skipped,
                   o.first_bad);

    split_free(&train);
    split_free(&val);
    split_free(&test);
    free(ids);
    free(order);
    free(label_of);
    free(val_of);
    folder_free(&ftrain);
    folder_free(&fquery);
    folder_free(&fgallery);
    return AMLFS_EXIT_OK;
}
