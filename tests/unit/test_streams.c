/* test_streams: the data order (amlfs_epoch_order) and the augmentation
 * (amlfs_make_batch with crop-flip) against the draws of the separate Python Philox
 * reference and a literal Fisher-Yates (tests/fixtures/streams.h5, written by
 * tests/fixtures/make_stream_fixtures.py), compared exactly: the permutations element by
 * element, and every augmented batch value against the crop and flip of the fixture's
 * offsets applied here to the source image. */
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

int main(void)
{
    hid_t f = H5Fopen("tests/fixtures/streams.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "test_streams: cannot open tests/fixtures/streams.h5 (run from the repo root)\n");
        return 1;
    }
    check_orders(f);
    check_augment(f);
    H5Fclose(f);
    return check_done("test_streams");
}
