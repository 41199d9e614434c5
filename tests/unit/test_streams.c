/* test_streams: the data order (amlfs_epoch_order), the P x K identity order
 * (amlfs_pk_order) and the augmentations (amlfs_make_batch with crop-flip, flip and reid)
 * against the draws of the separate Python Philox reference, a literal Fisher-Yates and a
 * literal RandomIdentitySampler (tests/fixtures/streams.h5, written by
 * tests/fixtures/make_stream_fixtures.py), compared exactly: the orders element by
 * element (and the P x K structure of each batch checked here), and every augmented batch
 * value against the crop, flip and erased rectangle of the fixture applied here to the
 * source image. */
#include "check.h"
#include "data.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>
#include <string.h>

static int read_ints(hid_t f, const char *path, int *buf, size_t n)
{
    hsize_t dims[1];
    int rank;
    if (H5LTget_dataset_ndims(f, path, &rank) < 0 || rank != 1 ||
        H5LTget_dataset_info(f, path, dims, NULL, NULL) < 0 || dims[0] != n)
        return -1;
    return H5LTread_dataset_int(f, path, buf);
}

static size_t length(hid_t f, const char *path)
{
    hsize_t dims[1];
    int rank;
    if (!H5LTpath_valid(f, path, 1) || H5LTget_dataset_ndims(f, path, &rank) < 0 || rank != 1 ||
        H5LTget_dataset_info(f, path, dims, NULL, NULL) < 0)
        return 0;
    return (size_t)dims[0];
}

static void check_orders(hid_t f)
{
    int cases = 0;
    for (int c = 0;; c++) {
        char path[64];
        snprintf(path, sizeof path, "order/%d", c);
        size_t n = length(f, path);
        if (!n)
            break;
        cases++;
        unsigned name[3];
        H5LTget_attribute_uint(f, path, "name", name);
        int *want = malloc(n * sizeof(int)), *got = malloc(n * sizeof(int));
        read_ints(f, path, want, n);
        amlfs_epoch_order(got, (int)n, name[0], name[1], name[2]);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (got[i] != want[i] && !bad++)
                first = i;
        CHECK(bad == 0, "order (seed %u, epoch %u, sample %u), n = %zu: %zu positions differ; "
              "position %zu holds %d, want %d", name[0], name[1], name[2], n, bad, first,
              got[first], want[first]);
        printf("  order (seed %u, epoch %u, sample %u), n = %zu: %s\n", name[0], name[1], name[2],
               n, bad ? "differs" : "equal");
        free(want);
        free(got);
    }
    CHECK(cases >= 5, "only %d order cases in the fixture", cases);
}

static void check_augment(hid_t f)
{
    int cases = 0;
    const int ch = 3, h = 8, w = 8;
    for (int c = 0;; c++) {
        char path[64], g[64];
        snprintf(g, sizeof g, "augment/%d", c);
        snprintf(path, sizeof path, "%s/dy", g);
        size_t n = length(f, path);
        if (!n)
            break;
        cases++;
        unsigned name[3];
        H5LTget_attribute_uint(f, g, "name", name);
        int *dy = malloc(n * sizeof(int)), *dx = malloc(n * sizeof(int));
        int *flip = malloc(n * sizeof(int)), *order = malloc(n * sizeof(int));
        read_ints(f, path, dy, n);
        snprintf(path, sizeof path, "%s/dx", g);
        read_ints(f, path, dx, n);
        snprintf(path, sizeof path, "%s/flip", g);
        read_ints(f, path, flip, n);
        snprintf(path, sizeof path, "%s/order", g);
        read_ints(f, path, order, n);
        /* images of pixels 1..255 (0 is the padding), labels their index mod 10;
         * mean 0, std 1: x = pixel * (float)(1/255) */
        amlfs_split s;
        memset(&s, 0, sizeof s);
        s.n = (int)n;
        s.channels = ch;
        s.height = h;
        s.width = w;
        s.classes = 10;
        for (int k = 0; k < ch; k++) {
            s.mean[k] = 0.0;
            s.std[k] = 1.0;
        }
        size_t px = (size_t)ch * h * w;
        s.images = malloc(n * px);
        s.labels = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) {
            s.labels[i] = (int32_t)(i % 10);
            for (size_t p = 0; p < px; p++)
                s.images[i * px + p] = (uint8_t)(1 + (i * 131 + p * 37 + (p * p) % 17) % 255);
        }
        const float scale = (float)(1.0 / 255.0);
        int batch = 32;
        float *x = malloc((size_t)batch * px * sizeof(float));
        int32_t *y = malloc((size_t)batch * sizeof(int32_t));
        /* crop-flip, then flip alone: the same flip draws, no offsets */
        for (int mode = 0; mode < 2; mode++) {
        amlfs_augment augment = mode ? AUGMENT_FLIP : AUGMENT_CROP_FLIP;
        const char *aname = mode ? "flip" : "crop-flip";
        int bad = 0, flips = 0, moved = 0;
        for (int first = 0; first < (int)n; first += batch) {
            int count = (int)n - first < batch ? (int)n - first : batch;
            amlfs_make_batch(&s, order, first, count, augment, name[0], name[1],
                             name[2], x, y);
            for (int b = 0; b < count; b++) {
                int p = first + b, img = order[p];
                int oy = mode ? 0 : dy[p], ox = mode ? 0 : dx[p];
                flips += flip[p];
                moved += oy != 0 || ox != 0;
                if (y[b] != s.labels[img] && !bad++)
                    fprintf(stderr, "  position %d: label %d, want %d\n", p, y[b], s.labels[img]);
                for (int k = 0; k < ch; k++)
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++) {
                            /* output (i, j) shows padded source (i + dy, j' + dx), where j'
                             * is j mirrored when flipped */
                            int si = i + oy, sj = (flip[p] ? w - 1 - j : j) + ox;
                            float want = 0.0f;
                            if (si >= 0 && si < h && sj >= 0 && sj < w)
                                want = s.images[(size_t)img * px + ((size_t)k * h + si) * w + sj] *
                                       scale;
                            float got = x[(size_t)b * px + ((size_t)k * h + i) * w + j];
                            if (got != want && !bad++)
                                fprintf(stderr, "  %s position %d (image %d, dy %d, dx %d, flip "
                                        "%d) pixel (%d,%d,%d): %.9g, want %.9g\n", aname, p, img,
                                        oy, ox, flip[p], k, i, j, got, want);
                        }
            }
        }
        CHECK(bad == 0, "%s (seed %u, epoch %u, sample %u): %d values differ", aname, name[0],
              name[1], name[2], bad);
        CHECK(flips > 0 && flips < (int)n && (mode || moved > 0), "augment/%d: the fixture draws "
              "no flip or no offset (%d flips, %d moved of %zu)", c, flips, moved, n);
        CHECK(!mode || moved == 0, "flip moved %d images", moved);
        printf("  %s (seed %u, epoch %u, sample %u): %zu images, %d flipped, %d moved: "
               "%s\n", aname, name[0], name[1], name[2], n, flips, moved, bad ? "differs" : "equal");
        }
        free(x);
        free(y);
        free(s.images);
        free(s.labels);
        free(dy);
        free(dx);
        free(flip);
        free(order);
    }
    CHECK(cases >= 2, "only %d augmentation cases in the fixture", cases);
}

static int read_attr_int(hid_t f, const char *obj, const char *name)
{
    int v = -1;
    H5LTget_attribute_int(f, obj, name, &v);
    return v;
}

/* A 1-D int dataset of any length (0 too): a new buffer (one spare entry), *n its length;
 * NULL when missing. */
static int *read_any(hid_t f, const char *path, size_t *n)
{
    hsize_t dims[1];
    int rank;
    if (!H5LTpath_valid(f, path, 1) || H5LTget_dataset_ndims(f, path, &rank) < 0 || rank != 1 ||
        H5LTget_dataset_info(f, path, dims, NULL, NULL) < 0)
        return NULL;
    *n = (size_t)dims[0];
    int *v = calloc(*n + 1, sizeof(int));
    if (*n && H5LTread_dataset_int(f, path, v) < 0) {
        free(v);
        return NULL;
    }
    return v;
}

static void check_pk(hid_t f)
{
    int cases = 0, empty = 0, filled = 0;
    for (int c = 0;; c++) {
        char g[64], path[96];
        snprintf(g, sizeof g, "pk/%d", c);
        if (!H5LTpath_valid(f, g, 1))
            break;
        cases++;
        unsigned name[3];
        H5LTget_attribute_uint(f, g, "name", name);
        int p = read_attr_int(f, g, "p"), k = read_attr_int(f, g, "k");
        size_t n = 0, nwant = 0;
        snprintf(path, sizeof path, "%s/labels", g);
        int *labels = read_any(f, path, &n);
        snprintf(path, sizeof path, "%s/order", g);
        int *want = read_any(f, path, &nwant);
        CHECK(labels && want && p >= 1 && k >= 1, "%s: unreadable", g);
        if (!labels || !want)
            return;
        int32_t *lab = malloc(n * sizeof(int32_t));
        int top = 0;
        for (size_t i = 0; i < n; i++) {
            lab[i] = labels[i];
            top = labels[i] > top ? labels[i] : top;
        }
        /* the capacity as torchreid's __len__, counted here */
        int *count = calloc((size_t)top + 1, sizeof(int));
        for (size_t i = 0; i < n; i++)
            count[labels[i]]++;
        long long cap_here = 0;
        int ids_here = 0;
        for (int v = 0; v <= top; v++)
            if (count[v]) {
                int l = count[v] < k ? k : count[v];
                cap_here += l - l % k;
                ids_here++;
                filled += count[v] < k;
            }
        int ids = 0;
        int64_t cap = amlfs_pk_capacity(lab, (int)n, k, &ids);
        CHECK(cap == cap_here && ids == ids_here, "%s: capacity %lld of %d identities, want %lld "
              "of %d", g, (long long)cap, ids, cap_here, ids_here);
        int *got = malloc(((size_t)cap + 1) * sizeof(int));
        int len = amlfs_pk_order(got, lab, (int)n, p, k, name[0], name[1], name[2]);
        CHECK(len == (int)nwant, "%s: length %d, want %zu", g, len, nwant);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < nwant && len == (int)nwant; i++)
            if (got[i] != want[i] && !bad++)
                first = i;
        CHECK(bad == 0, "%s (seed %u, epoch %u, sample %u): %zu positions differ; position %zu "
              "holds %d, want %d", g, name[0], name[1], name[2], bad, first, got[first],
              want[first]);
        /* the structure: batches of P distinct identities, K images of each; an identity of
         * K or more images never shows one image twice in the epoch */
        int shape_bad = len < 0 || len % (p * k) != 0 || (long long)len > cap;
        int *seen = calloc(n + 1, sizeof(int)), *in_batch = calloc((size_t)top + 1, sizeof(int));
        for (int b = 0; !shape_bad && b < len / (p * k); b++) {
            for (int j = 0; j < p && !shape_bad; j++) {
                int pid = lab[got[(b * p + j) * k]];
                shape_bad |= in_batch[pid] == b + 1; /* an identity twice in the batch */
                in_batch[pid] = b + 1;
                for (int e = 0; e < k; e++) {
                    int img = got[(b * p + j) * k + e];
                    shape_bad |= img < 0 || img >= (int)n || lab[img] != pid;
                    if (!shape_bad && count[pid] >= k)
                        shape_bad |= seen[img]++ > 0;
                }
            }
        }
        CHECK(!shape_bad, "%s: the order is not P x K batches of distinct identities", g);
        empty += len == 0;
        printf("  pk (seed %u, epoch %u, sample %u): %zu images of %d identities, P %d K %d: "
               "%d batches, %s\n", name[0], name[1], name[2], n, ids, p, k, len / (p * k),
               bad || len != (int)nwant ? "differs" : "equal");
        /* bad arguments */
        CHECK(amlfs_pk_order(got, lab, (int)n, 0, k, 1, 1, 0) == -1 &&
              amlfs_pk_order(got, lab, (int)n, p, 0, 1, 1, 0) == -1 &&
              amlfs_pk_capacity(lab, (int)n, 0, NULL) == -1, "%s: p or k < 1 accepted", g);
        free(seen);
        free(in_batch);
        free(count);
        free(got);
        free(lab);
        free(labels);
        free(want);
    }
    CHECK(cases >= 5 && empty >= 1 && filled >= 1, "pk fixture: %d cases, %d empty, %d filled "
          "identities", cases, empty, filled);
    int32_t neg[3] = {0, -1, 1};
    int o[8];
    CHECK(amlfs_pk_order(o, neg, 3, 1, 1, 1, 1, 0) == -1 &&
          amlfs_pk_capacity(neg, 3, 1, NULL) == -1, "a label -1 accepted");
}

static void check_reid(hid_t f)
{
    int cases = 0;
    const int ch = 3;
    for (int c = 0;; c++) {
        char g[64], path[96];
        snprintf(g, sizeof g, "reid/%d", c);
        if (!H5LTpath_valid(f, g, 1))
            break;
        cases++;
        unsigned name[3];
        H5LTget_attribute_uint(f, g, "name", name);
        int h = read_attr_int(f, g, "height"), w = read_attr_int(f, g, "width");
        size_t n = 0, len = 0, m;
        snprintf(path, sizeof path, "%s/labels", g);
        int *labels = read_any(f, path, &n);
        snprintf(path, sizeof path, "%s/order", g);
        int *order = read_any(f, path, &len);
        const char *keys[7] = {"flip", "dy", "dx", "top", "left", "eh", "ew"};
        int *d[7];
        for (int j = 0; j < 7; j++) {
            snprintf(path, sizeof path, "%s/%s", g, keys[j]);
            d[j] = read_any(f, path, &m);
            CHECK(d[j] && m == len, "%s/%s: unreadable or not one per position", g, keys[j]);
            if (!d[j] || m != len)
                return;
        }
        /* images of pixels 1..255; mean 0.5, std 0.25: the padding is -2 and the erased
         * value 0, both apart from every pixel's value */
        amlfs_split s;
        memset(&s, 0, sizeof s);
        s.n = (int)n;
        s.channels = ch;
        s.height = h;
        s.width = w;
        s.classes = 100;
        for (int k = 0; k < ch; k++) {
            s.mean[k] = 0.5;
            s.std[k] = 0.25;
        }
        size_t px = (size_t)ch * h * w;
        s.images = malloc(n * px);
        s.labels = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) {
            s.labels[i] = labels[i];
            for (size_t q = 0; q < px; q++)
                s.images[i * px + q] = (uint8_t)(1 + (i * 131 + q * 37 + (q * q) % 17) % 255);
        }
        const float scale = (float)(1.0 / (255.0 * 0.25)), shift = (float)(-0.5 / 0.25);
        int batch = 8; /* P 2 x K 4, the fixture's order */
        float *x = malloc((size_t)batch * px * sizeof(float));
        int32_t *y = malloc((size_t)batch * sizeof(int32_t));
        int bad = 0, flips = 0, moved = 0, erased = 0, padded = 0, repeats = 0;
        int *seen = calloc(n + 1, sizeof(int));
        for (int first = 0; first < (int)len; first += batch) {
            int count = (int)len - first < batch ? (int)len - first : batch;
            amlfs_make_batch_of(&s, order, (int)len, first, count, AUGMENT_REID, name[0],
                                name[1], name[2], x, y);
            for (int b = 0; b < count; b++) {
                int p = first + b, img = order[p];
                int flip = d[0][p], dy = d[1][p], dx = d[2][p], top = d[3][p], left = d[4][p];
                int eh = d[5][p], ew = d[6][p];
                flips += flip;
                moved += dy != 0 || dx != 0;
                erased += eh > 0;
                repeats += seen[img]++ > 0;
                if (y[b] != s.labels[img] && !bad++)
                    fprintf(stderr, "  position %d: label %d, want %d\n", p, y[b], s.labels[img]);
                for (int k = 0; k < ch; k++)
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++) {
                            /* flipped first (column j of the flipped image is source column
                             * w-1-j), then padded by 10 and cropped at (10+dy, 10+dx): output
                             * (i, j) is the flipped image's (i+dy, j+dx); then erased */
                            int si = i + dy, fj = j + dx, sj = flip ? w - 1 - fj : fj;
                            float want = shift;
                            if (si >= 0 && si < h && fj >= 0 && fj < w)
                                want = (float)s.images[(size_t)img * px + ((size_t)k * h + si) *
                                                      w + sj] * scale + shift;
                            else
                                padded += k == 0;
                            if (i >= top && i < top + eh && j >= left && j < left + ew)
                                want = 0.0f;
                            float got = x[(size_t)b * px + ((size_t)k * h + i) * w + j];
                            if (got != want && !bad++)
                                fprintf(stderr, "  reid position %d (image %d, dy %d, dx %d, flip "
                                        "%d, erased %dx%d at %d,%d) pixel (%d,%d,%d): %.9g, want "
                                        "%.9g\n", p, img, dy, dx, flip, eh, ew, top, left, k, i,
                                        j, got, want);
                        }
            }
        }
        CHECK(bad == 0, "reid (seed %u, epoch %u, sample %u): %d values differ", name[0], name[1],
              name[2], bad);
        CHECK(flips > 0 && flips < (int)len && moved > 0 && erased > 0 && erased < (int)len &&
              padded > 0 && repeats > 0, "%s: the fixture lacks a case (%d flips, %d moved, %d "
              "erased, %d padded pixels, %d repeated images of %zu)", g, flips, moved, erased,
              padded, repeats, len);
        printf("  reid (seed %u, epoch %u, sample %u): %zu positions of %dx%d, %d flipped, %d "
               "moved, %d erased, %d repeated: %s\n", name[0], name[1], name[2], len, h, w,
               flips, moved, erased, repeats, bad ? "differs" : "equal");
        free(seen);
        free(x);
        free(y);
        free(s.images);
        free(s.labels);
        for (int j = 0; j < 7; j++)
            free(d[j]);
        free(labels);
        free(order);
    }
    CHECK(cases >= 2, "only %d reid cases in the fixture", cases);
}

int main(void)
{
    hid_t f = H5Fopen("tests/fixtures/streams.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "test_streams: cannot open tests/fixtures/streams.h5 (run from the repo root)\n");
        return 1;
    }
    check_orders(f);
    check_augment(f);
    check_pk(f);
    check_reid(f);
    H5Fclose(f);
    return check_done("test_streams");
}
