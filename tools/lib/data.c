/* data.c: dataset splits in memory or streamed from their file, epoch orders, normalised and augmented batches.
 * Depends on: h5io (and h5get), tool, the kernels' Philox (amlfs_rng.h). */
#include "data.h"
#include "amlfs_rng.h"
#include "h5io.h"
#include "plain.h"
#include "tool.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sums of the pixels and of their squares per channel, added image after image, so a
 * file read in blocks gives the same moments as its images read whole. */
typedef struct {
    double s[3], s2[3], count;
} moments;

static void moments_add(moments *m, const uint8_t *images, int n, int channels, size_t plane)
{
    for (int ch = 0; ch < channels; ch++) {
        double s = m->s[ch], s2 = m->s2[ch];
        for (int i = 0; i < n; i++) {
            const uint8_t *p = images + ((size_t)i * channels + ch) * plane;
            for (size_t j = 0; j < plane; j++) {
                s += p[j];
                s2 += (double)p[j] * p[j];
            }
        }
        m->s[ch] = s;
        m->s2[ch] = s2;
    }
    m->count += (double)n * plane;
}

static void moments_finish(const moments *m, int channels, double *mean, double *std)
{
    for (int ch = 0; ch < channels; ch++) {
        double s = m->s[ch], s2 = m->s2[ch], count = m->count;
        mean[ch] = s / count / 255.0;
        std[ch] = sqrt(fmax(s2 / count - (s / count) * (s / count), 0.0)) / 255.0;
    }
}

void amlfs_image_moments(const uint8_t *images, int n, int channels, size_t plane,
                         double *mean, double *std)
{
    moments m = {{0}, {0}, 0};
    moments_add(&m, images, n, channels, plane);
    moments_finish(&m, channels, mean, std);
}

/* Rows [first, first+count) of the images dataset ds (N,C,H,W) or (N,H,W) into out; 0, or
 * -1 when HDF5 fails (a damaged chunk: its checksum). */
static int read_rows(hid_t ds, int64_t first, int64_t count, uint8_t *out)
{
    hid_t space = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t start[4] = {0}, cnt[4];
    H5Sget_simple_extent_dims(space, cnt, NULL);
    start[0] = (hsize_t)first;
    cnt[0] = (hsize_t)count;
    int bad = H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0;
    hid_t mem = H5Screate_simple(rank, cnt, NULL);
    bad = bad || H5Dread(ds, H5T_NATIVE_UINT8, mem, space, H5P_DEFAULT, out) < 0;
    H5Sclose(mem);
    H5Sclose(space);
    return bad ? -1 : 0;
}

/* The moments of the n images of dataset name, read in blocks (never the whole set). */
static void moments_from_file(hid_t f, const char *path, const char *name, int n, int c, int h,
                              int w, double *mean, double *std)
{
    const int block = 4096;
    size_t pixels = (size_t)c * h * w;
    uint8_t *buf = amlfs_zalloc((size_t)block, pixels);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    moments m = {{0}, {0}, 0};
    for (int first = 0; first < n; first += block) {
        int count = n - first < block ? n - first : block;
        if (ds < 0 || read_rows(ds, first, count, buf) != 0)
            amlfs_fail(AMLFS_EXIT_FAILED, path, "%s: cannot read images %d to %d (damaged?)",
                       name, first, first + count - 1);
        moments_add(&m, buf, count, c, (size_t)h * w);
    }
    H5Dclose(ds);
    free(buf);
    moments_finish(&m, c, mean, std);
}

static const char *const split_names[] = {"train", "val", "test", NULL};

/* A plain file's /SPLIT/images: (N,C,H,W) or (N,H,W) uint8, 1 to 3 channels. */
static void plain_images(hid_t f, const char *path, const char *name, int *n, int *c, int *h,
                         int *w)
{
    hsize_t d[8];
    int rank = amlfs_plain_dims(f, path, name, PLAIN_UINT8, 3, 4, "(N,C,H,W) or (N,H,W)", d);
    *n = (int)d[0];
    *c = rank == 4 ? (int)d[1] : 1;
    *h = (int)d[rank - 2];
    *w = (int)d[rank - 1];
    if (*n < 1 || *c < 1 || *c > 3 || *h < 1 || *w < 1) {
        char found[64];
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape %s, expected (N,C,H,W) with N >= 1 and "
                   "1 to 3 channels, or (N,H,W)", name, amlfs_plain_shape(rank, d, found,
                   sizeof found));
    }
}

/* A plain file's /SPLIT/labels of n images, any integer type, read as int64 (new buffer),
 * each >= 0. */
static int64_t *plain_labels(hid_t f, const char *path, const char *name, int n,
                             const char *images)
{
    hsize_t d[8];
    char want[160], found[64];
    snprintf(want, sizeof want, "(N) = (%d), one label per image of %s", n, images);
    int rank = amlfs_plain_dims(f, path, name, PLAIN_INTEGER, 1, 1, want, d);
    if (d[0] != (hsize_t)n)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape %s, expected %s", name,
                   amlfs_plain_shape(rank, d, found, sizeof found), want);
    int64_t *v = amlfs_zalloc((size_t)n, sizeof(int64_t));
    amlfs_h5_read(f, name, H5T_NATIVE_INT64, v);
    for (int i = 0; i < n; i++)
        if (v[i] < 0 || v[i] > INT32_MAX) {
            long long bad = (long long)v[i];
            free(v);
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%d] = %lld, expected a class 0 to C-1", name,
                       i, bad);
        }
    return v;
}

/* A dataset file without 'schema' (data.h); the images are read unless s->streamed. */
static void split_read_plain(amlfs_split *s, hid_t f, const char *path, const char *split)
{
    char images[64], labels[64];
    snprintf(images, sizeof images, "/%s/images", split);
    snprintf(labels, sizeof labels, "/%s/labels", split);
    plain_images(f, path, images, &s->n, &s->channels, &s->height, &s->width);
    int64_t *own = plain_labels(f, path, labels, s->n, images);
    /* classes: the attribute, else one more than the largest label of any split */
    int64_t classes;
    if (!amlfs_plain_attr_i64(f, path, "/", "classes", 0, &classes)) {
        for (int i = 0; i < s->n; i++)
            classes = own[i] + 1 > classes ? own[i] + 1 : classes;
        for (const char *const *other = split_names; *other; other++) {
            char oi[64], ol[64];
            snprintf(oi, sizeof oi, "/%s/images", *other);
            snprintf(ol, sizeof ol, "/%s/labels", *other);
            if (!strcmp(*other, split) || !amlfs_h5_exists(f, ol) || !amlfs_h5_exists(f, oi))
                continue;
            int n, c, h, w;
            plain_images(f, path, oi, &n, &c, &h, &w);
            int64_t *v = plain_labels(f, path, ol, n, oi);
            for (int i = 0; i < n; i++)
                classes = v[i] + 1 > classes ? v[i] + 1 : classes;
            free(v);
        }
    }
    if (classes < 2 || classes > INT32_MAX) {
        free(own);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@classes: %lld classes (from the attribute or the "
                   "largest label), expected 2 or more", (long long)classes);
    }
    s->classes = (int)classes;
    s->labels = amlfs_zalloc((size_t)s->n, sizeof(int32_t));
    for (int i = 0; i < s->n; i++)
        s->labels[i] = (int32_t)own[i];
    free(own);
    if (!s->streamed) {
        s->images = amlfs_zalloc((size_t)s->n * s->channels * s->height, (size_t)s->width);
        amlfs_h5_read(f, images, H5T_NATIVE_UINT8, s->images);
    }
    amlfs_plain_attr_str(f, path, "/", "name", NULL, "plain", s->name, sizeof s->name);
    /* mean and std: the attributes, else the training images' (as amlfs-prep computes) */
    int has_mean = amlfs_plain_attr_f64v(f, path, "/", "mean", s->mean, (size_t)s->channels);
    int has_std = amlfs_plain_attr_f64v(f, path, "/", "std", s->std, (size_t)s->channels);
    if (has_mean != has_std)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@%s: missing, expected /@mean and /@std together "
                   "(or neither: the training images' are used)", has_mean ? "std" : "mean");
    if (!has_mean) {
        if (!strcmp(split, "train") && !s->streamed) {
            amlfs_image_moments(s->images, s->n, s->channels, (size_t)s->height * s->width,
                                s->mean, s->std);
        } else if (!strcmp(split, "train")) {
            moments_from_file(f, path, images, s->n, s->channels, s->height, s->width,
                              s->mean, s->std);
        } else {
            if (!amlfs_h5_exists(f, "/train/images"))
                amlfs_fail(AMLFS_EXIT_USAGE, path, "/train/images: missing, needed for the "
                           "normalisation of /%s (or give /@mean and /@std, one per channel)",
                           split);
            int n, c, h, w;
            plain_images(f, path, "/train/images", &n, &c, &h, &w);
            if (c != s->channels || h != s->height || w != s->width)
                amlfs_fail(AMLFS_EXIT_USAGE, path, "/train/images: %d-channel %dx%d, but %s is "
                           "%d-channel %dx%d", c, h, w, images, s->channels, s->height,
                           s->width);
            moments_from_file(f, path, "/train/images", n, c, h, w, s->mean, s->std);
        }
    }
}

/* A dataset file of amlfs-prep (validated against its schema). */
static void split_read_schema(amlfs_split *s, hid_t f, const char *path, const char *split)
{
    char images[64], labels[64];
    snprintf(images, sizeof images, "/%s/images", split);
    snprintf(labels, sizeof labels, "/%s/labels", split);
    s->classes = (int)amlfs_attr_i64(f, "/", "classes");
    s->channels = (int)amlfs_attr_i64(f, "/", "channels");
    s->height = (int)amlfs_attr_i64(f, "/", "height");
    s->width = (int)amlfs_attr_i64(f, "/", "width");
    amlfs_attr_str(f, "/", "name", s->name, sizeof s->name);
    if (s->channels < 1 || s->channels > 3 || s->height < 1 || s->width < 1 || s->classes < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "unsupported images: %d channels of %dx%d, %d classes",
                   s->channels, s->height, s->width, s->classes);
    hid_t a = H5Aopen_by_name(f, "/", "mean", H5P_DEFAULT, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, s->mean);
    H5Aclose(a);
    a = H5Aopen_by_name(f, "/", "std", H5P_DEFAULT, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, s->std);
    H5Aclose(a);
    hsize_t dims[8];
    amlfs_h5_dims(f, labels, dims);
    s->n = (int)dims[0];
    if (s->n < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s is empty", labels);
    s->labels = amlfs_zalloc((size_t)s->n, sizeof(int32_t));
    amlfs_h5_read(f, labels, H5T_NATIVE_INT32, s->labels);
    if (!s->streamed) {
        s->images = amlfs_zalloc((size_t)s->n * s->channels * s->height, (size_t)s->width);
        amlfs_h5_read(f, images, H5T_NATIVE_UINT8, s->images);
    }
}

/* ---- streamed splits: the batch reader ---------------------------------------------- */

/* One batch's rows, read by a thread of its own while the previous batch trains. */
struct amlfs_prefetch {
    pthread_t thread;
    int running;         /* a read is in flight (join before touching its fields) */
    const int *order;    /* the request: rows order[first .. first+count) */
    int first, count;
    int failed;          /* the read failed */
    uint8_t *buf[2];     /* the batch's images in batch order, two in turn */
    size_t cap[2];       /* bytes allocated */
    int next;            /* the buffer the in-flight (or next) read fills */
    int *sorted;         /* scratch: the request's rows in ascending order, with slots */
    uint8_t *run;        /* scratch: one run of consecutive rows */
    size_t run_cap;
    hid_t ds;
    size_t pixels;       /* bytes per image */
};

static int cmp_row(const void *a, const void *b)
{
    const int *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Reads the request into buf[next], ascending runs of consecutive rows one read each (a
 * chunk is read once per run), placed at their positions in the batch. */
static void *prefetch_read(void *arg)
{
    struct amlfs_prefetch *p = arg;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* HDF5's error printing is per thread */
    int count = p->count;
    uint8_t *dst = p->buf[p->next];
    for (int b = 0; b < count; b++) {
        p->sorted[2 * b] = p->order[p->first + b];
        p->sorted[2 * b + 1] = b;
    }
    qsort(p->sorted, (size_t)count, 2 * sizeof(int), cmp_row);
    p->failed = 0;
    for (int b = 0; b < count && !p->failed;) {
        int e = b + 1;
        while (e < count && p->sorted[2 * e] == p->sorted[2 * (e - 1)] + 1)
            e++;
        size_t bytes = (size_t)(e - b) * p->pixels;
        if (bytes > p->run_cap) {
            free(p->run);
            p->run = malloc(bytes);
            p->run_cap = p->run ? bytes : 0;
        }
        if (!p->run || read_rows(p->ds, p->sorted[2 * b], e - b, p->run) != 0) {
            p->failed = 1;
            break;
        }
        for (int k = b; k < e; k++)
            memcpy(dst + (size_t)p->sorted[2 * k + 1] * p->pixels,
                   p->run + (size_t)(k - b) * p->pixels, p->pixels);
        b = e;
    }
    return NULL;
}

static void prefetch_start(const amlfs_split *s, const int *order, int first, int count)
{
    struct amlfs_prefetch *p = s->prefetch;
    size_t bytes = (size_t)count * p->pixels;
    if (bytes > p->cap[p->next]) {
        free(p->buf[p->next]);
        p->buf[p->next] = amlfs_zalloc((size_t)count, p->pixels);
        p->cap[p->next] = bytes;
        free(p->sorted);
        p->sorted = amlfs_zalloc((size_t)count, 2 * sizeof(int));
    }
    p->order = order;
    p->first = first;
    p->count = count;
    if (pthread_create(&p->thread, NULL, prefetch_read, p) == 0)
        p->running = 1;
    else
        prefetch_read(p); /* no thread to spare: read now */
}

static void prefetch_wait(struct amlfs_prefetch *p)
{
    if (p->running)
        pthread_join(p->thread, NULL);
    p->running = 0;
}

/* The images of rows order[first .. first+count) in batch order (the prefetched ones
 * when they were asked for), and the next batch's read started (order has length
 * entries). */
static const uint8_t *stream_rows(const amlfs_split *s, const int *order, int length, int first,
                                  int count)
{
    struct amlfs_prefetch *p = s->prefetch;
    int ready = p->running && p->order == order && p->first == first && p->count == count;
    prefetch_wait(p);
    if (!ready)
        prefetch_start(s, order, first, count), prefetch_wait(p);
    if (p->failed)
        amlfs_fail(AMLFS_EXIT_FAILED, s->path, "%s: cannot read the rows of batch images %d "
                   "to %d (damaged or truncated?)", s->images_name, first, first + count - 1);
    int mine = p->next;
    p->next = 1 - mine;
    int next = first + count;
    if (next < length)
        prefetch_start(s, order, next, length - next < count ? length - next : count);
    return p->buf[mine];
}

const char *const amlfs_read_names[] = {"auto", "memory", "stream", NULL};

/* Whether mode streams the images of n x pixels bytes on this machine. */
static int streams(amlfs_read_mode mode, int64_t n, size_t pixels)
{
    if (mode != AMLFS_READ_AUTO)
        return mode == AMLFS_READ_STREAM;
    double bytes = (double)n * (double)pixels;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double quarter = pages > 0 && page > 0 ? (double)pages * page / 4 : 0;
    return bytes > (double)AMLFS_READ_AUTO_BYTES || (quarter > 0 && bytes > quarter);
}

void amlfs_split_open(amlfs_split *s, const char *path, const char *split, amlfs_read_mode mode)
{
    memset(s, 0, sizeof *s);
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "dataset", &plain);
    char images[64], labels[64];
    snprintf(images, sizeof images, "/%s/images", split);
    snprintf(labels, sizeof labels, "/%s/labels", split);
    if (mode != AMLFS_READ_MEMORY && amlfs_h5_exists(f, images)) {
        hsize_t d[8];
        hid_t ds = H5Dopen2(f, images, H5P_DEFAULT);
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
        int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, d, NULL) : -1;
        size_t pixels = 1;
        for (int i = 1; i < rank; i++)
            pixels *= d[i];
        s->streamed = rank >= 3 && streams(mode, (int64_t)d[0], pixels);
        if (sp >= 0)
            H5Sclose(sp);
        if (ds >= 0)
            H5Dclose(ds);
    }
    if (plain)
        split_read_plain(s, f, path, split);
    else
        split_read_schema(s, f, path, split);
    amlfs_plain_attr_str(f, path, "/", "task", NULL, "", s->task, sizeof s->task);
    if (s->streamed) {
        s->file = f;
        s->images_ds = H5Dopen2(f, images, H5P_DEFAULT);
        snprintf(s->path, sizeof s->path, "%s", path);
        snprintf(s->images_name, sizeof s->images_name, "%s", images);
        s->prefetch = amlfs_zalloc(1, sizeof *s->prefetch);
        s->prefetch->ds = s->images_ds;
        s->prefetch->pixels = (size_t)s->channels * s->height * s->width;
    } else {
        H5Fclose(f);
    }
    for (int c = 0; c < s->channels; c++) {
        if (!isfinite(s->mean[c]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@mean[%d] = %g, expected a finite number", c,
                       s->mean[c]);
        if (!(s->std[c] > 0) || !isfinite(s->std[c]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@std[%d] = %g, expected a finite number > 0",
                       c, s->std[c]);
    }
    /* the identities of a face or re-ID dataset's held-out splits are not the training
     * classes: any id, -1 where unknown (LFW's test images, distractors) */
    int classes_only = !s->task[0] || !strcmp(s->task, "classification") ||
                       !strcmp(split, "train");
    for (int i = 0; i < s->n; i++)
        if (classes_only ? s->labels[i] < 0 || s->labels[i] >= s->classes : s->labels[i] < -1)
            amlfs_fail(AMLFS_EXIT_USAGE, path, classes_only ? "%s[%d] = %d, expected 0 to %d"
                       : "%s[%d] = %d, expected an identity >= 0, or -1", labels, i,
                       s->labels[i], s->classes - 1);
}

void amlfs_split_read(amlfs_split *s, const char *path, const char *split)
{
    amlfs_split_open(s, path, split, AMLFS_READ_MEMORY);
}

void amlfs_split_free(amlfs_split *s)
{
    if (s->prefetch) {
        prefetch_wait(s->prefetch);
        free(s->prefetch->buf[0]);
        free(s->prefetch->buf[1]);
        free(s->prefetch->sorted);
        free(s->prefetch->run);
        free(s->prefetch);
    }
    if (s->streamed) {
        H5Dclose(s->images_ds);
        H5Fclose(s->file);
    }
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void amlfs_shuffle(int *idx, int n, amlfs_rng_name r)
{
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates, draw k for position n-1-k */
        int j = (int)amlfs_rng_below(r, (uint64_t)(n - 1 - i), (uint32_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

void amlfs_epoch_order(int *order, int n, uint32_t seed, uint32_t epoch, uint32_t sample)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    amlfs_shuffle(order, n, amlfs_rng(seed, epoch, sample, AMLFS_STREAM_DATA_ORDER));
}

/* ---- the P x K identity sampler (data.h) ------------------------------------------- */

/* Distinct labels: counts per label value (new buffer of *values = largest + 1). */
static int *label_counts(const int32_t *labels, int n, int *values)
{
    int32_t top = -1;
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0)
            return NULL;
        top = labels[i] > top ? labels[i] : top;
    }
    *values = (int)top + 1;
    int *count = amlfs_zalloc((size_t)*values + 1, sizeof(int));
    for (int i = 0; i < n; i++)
        count[labels[i]]++;
    return count;
}

int64_t amlfs_pk_capacity(const int32_t *labels, int n, int k, int *identities)
{
    int values;
    int *count = k >= 1 ? label_counts(labels, n, &values) : NULL;
    if (!count)
        return -1;
    int64_t total = 0;
    int ids = 0;
    for (int v = 0; v < values; v++)
        if (count[v]) {
            int64_t l = count[v] < k ? k : count[v];
            total += l - l % k;
            ids++;
        }
    free(count);
    if (identities)
        *identities = ids;
    return total;
}

int amlfs_pk_order(int *order, const int32_t *labels, int n, int p, int k, uint32_t seed,
                   uint32_t epoch, uint32_t sample)
{
    int values, ids = 0;
    int *count = p >= 1 && k >= 1 ? label_counts(labels, n, &values) : NULL;
    if (!count)
        return -1;
    amlfs_rng_name r = amlfs_rng(seed, epoch, sample, AMLFS_STREAM_DATA_ORDER);
    uint64_t u = 0; /* the next uniform number of the stream */
    /* step 1: each label's images, ascending (a counting sort) */
    int *start = amlfs_zalloc((size_t)values + 1, sizeof(int));
    for (int v = 0; v < values; v++) {
        start[v + 1] = start[v] + count[v];
        ids += count[v] > 0;
    }
    int *images = amlfs_zalloc((size_t)n + 1, sizeof(int)), *fill = amlfs_zalloc((size_t)values + 1, sizeof(int));
    for (int i = 0; i < n; i++)
        images[start[labels[i]] + fill[labels[i]]++] = i;
    /* step 2: per identity its list, shuffled, kept as whole chunks */
    int *first = amlfs_zalloc((size_t)ids + 1, sizeof(int)); /* identity j's chunks in lists */
    int *chunks = amlfs_zalloc((size_t)ids + 1, sizeof(int)), *used = amlfs_zalloc((size_t)ids + 1, sizeof(int));
    int64_t cap = amlfs_pk_capacity(labels, n, k, NULL);
    int *lists = amlfs_zalloc((size_t)cap + 1, sizeof(int));
    int *list = amlfs_zalloc((size_t)(n > k ? n : k), sizeof(int));
    int64_t at = 0;
    for (int v = 0, j = 0; v < values; v++) {
        int m = count[v];
        if (!m)
            continue;
        const int *mine = images + start[v];
        int l = m < k ? k : m;
        for (int e = 0; e < l; e++)
            list[e] = m < k ? mine[amlfs_rng_below(r, u++, (uint32_t)m)] : mine[e];
        for (int t = l - 1; t > 0; t--) {
            int s = (int)amlfs_rng_below(r, u++, (uint32_t)(t + 1)), tmp = list[t];
            list[t] = list[s];
            list[s] = tmp;
        }
        first[j] = (int)at;
        chunks[j] = l / k;
        memcpy(lists + at, list, sizeof(int) * (size_t)(l - l % k));
        at += l - l % k;
        j++;
    }
    /* step 3: batches of P identities drawn from those with chunks left */
    int *avail = amlfs_zalloc((size_t)ids + 1, sizeof(int)), *swap = amlfs_zalloc((size_t)p, sizeof(int));
    int navail = ids, length = 0;
    for (int j = 0; j < ids; j++)
        avail[j] = j;
    while (navail >= p) {
        /* the partial Fisher-Yates on A in place, undone afterwards: A keeps its order */
        for (int j = 0; j < p; j++) {
            int s = j + (int)amlfs_rng_below(r, u++, (uint32_t)(navail - j)), tmp = avail[j];
            swap[j] = s;
            avail[j] = avail[s];
            avail[s] = tmp;
        }
        int gone = 0;
        for (int j = 0; j < p; j++) {
            int w = avail[j];
            memcpy(order + length, lists + first[w] + (size_t)used[w] * k, sizeof(int) * (size_t)k);
            length += k;
            gone += ++used[w] == chunks[w];
        }
        for (int j = p - 1; j >= 0; j--) {
            int tmp = avail[j];
            avail[j] = avail[swap[j]];
            avail[swap[j]] = tmp;
        }
        if (gone) {
            int kept = 0;
            for (int j = 0; j < navail; j++)
                if (used[avail[j]] < chunks[avail[j]])
                    avail[kept++] = avail[j];
            navail = kept;
        }
    }
    free(count);
    free(start);
    free(images);
    free(fill);
    free(first);
    free(chunks);
    free(used);
    free(lists);
    free(list);
    free(avail);
    free(swap);
    return length;
}

/* ---- batches ------------------------------------------------------------------------ */

/* The re-ID augmentation's draws for the image at position pos (data.h): flip, the crop's
 * offsets, and the erased rectangle (eh = 0 when none). */
static void reid_draws(amlfs_rng_name r, uint64_t pos, int h, int w, int *flip, int *dy,
                       int *dx, int *top, int *left, int *eh, int *ew)
{
    const int pad = AMLFS_REID_PAD;
    uint64_t q = (uint64_t)AMLFS_REID_DRAWS * pos;
    *flip = amlfs_rng_uniform(r, q) < 0.5;
    *dy = (int)amlfs_rng_below(r, q + 1, 2 * pad + 1) - pad;
    *dx = (int)amlfs_rng_below(r, q + 2, 2 * pad + 1) - pad;
    *top = *left = *eh = *ew = 0;
    if (!(amlfs_rng_uniform(r, q + 3) < AMLFS_REID_ERASE_P))
        return;
    const double sl = AMLFS_REID_ERASE_SL, sh = AMLFS_REID_ERASE_SH, r1 = AMLFS_REID_ERASE_R1;
    for (int a = 0; a < AMLFS_REID_ERASE_TRIES; a++) {
        uint64_t t = q + 4 + 4 * (uint64_t)a;
        double area = (sl + (sh - sl) * amlfs_rng_uniform(r, t)) * ((double)h * (double)w);
        double aspect = r1 + (1.0 / r1 - r1) * amlfs_rng_uniform(r, t + 1);
        int hh = (int)rint(sqrt(area * aspect)), ww = (int)rint(sqrt(area / aspect));
        if (hh < h && ww < w) {
            *top = (int)amlfs_rng_below(r, t + 2, (uint32_t)(h - hh + 1));
            *left = (int)amlfs_rng_below(r, t + 3, (uint32_t)(w - ww + 1));
            *eh = hh;
            *ew = ww;
            return;
        }
    }
}

void amlfs_make_batch(const amlfs_split *s, const int *order, int first, int count,
                      amlfs_augment augment, uint32_t seed, uint32_t epoch, uint32_t sample,
                      float *x, int32_t *y)
{
    amlfs_make_batch_of(s, order, s->n, first, count, augment, seed, epoch, sample, x, y);
}

void amlfs_make_batch_of(const amlfs_split *s, const int *order, int length, int first,
                         int count, amlfs_augment augment, uint32_t seed, uint32_t epoch,
                         uint32_t sample, float *x, int32_t *y)
{
    const int c = s->channels, h = s->height, w = s->width, pad = 4;
    amlfs_rng_name r = amlfs_rng(seed, epoch, sample, AMLFS_STREAM_AUGMENT);
    const uint8_t *rows = s->streamed ? stream_rows(s, order, length, first, count) : NULL;
    float scale[3], shift[3];
    for (int ch = 0; ch < c; ch++) { /* x = pixel * scale + shift */
        scale[ch] = (float)(1.0 / (255.0 * s->std[ch]));
        shift[ch] = (float)(-s->mean[ch] / s->std[ch]);
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < count; b++) {
        int idx = order[first + b];
        const uint8_t *src = rows ? rows + (size_t)b * c * h * w
                                  : s->images + (size_t)idx * c * h * w;
        float *dst = x + (size_t)b * c * h * w;
        y[b] = s->labels[idx];
        int dy = 0, dx = 0, flip = 0, top = 0, left = 0, eh = 0, ew = 0;
        int flip_first = 0; /* reid: flip, then pad and crop; crop-flip: the other way */
        if (augment == AUGMENT_FLIP) /* the crop-flip's flip draw, without the crop */
            flip = amlfs_rng_uniform(r, 3 * (uint64_t)(first + b) + 2) < 0.5;
        if (augment == AUGMENT_CROP_FLIP) {
            /* three draws per image, at the image's position in the epoch */
            uint64_t k = 3 * (uint64_t)(first + b);
            dy = (int)amlfs_rng_below(r, k, 2 * pad + 1) - pad;
            dx = (int)amlfs_rng_below(r, k + 1, 2 * pad + 1) - pad;
            flip = amlfs_rng_uniform(r, k + 2) < 0.5;
        }
        if (augment == AUGMENT_REID) {
            reid_draws(r, (uint64_t)(first + b), h, w, &flip, &dy, &dx, &top, &left, &eh, &ew);
            flip_first = 1;
        }
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    int si = i + dy, sj = (flip ? w - 1 - j : j) + dx;
                    if (flip_first)
                        sj = flip ? w - 1 - (j + dx) : j + dx;
                    float v = shift[ch]; /* padding: black pixels, as torchvision pads */
                    if (si >= 0 && si < h && sj >= 0 && sj < w)
                        v = src[((size_t)ch * h + si) * w + sj] * scale[ch] + shift[ch];
                    if (i >= top && i < top + eh && j >= left && j < left + ew)
                        v = 0.0f; /* erased: the mean pixel */
                    dst[((size_t)ch * h + i) * w + j] = v;
                }
    }
}
