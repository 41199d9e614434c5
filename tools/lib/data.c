/* data.c: dataset splits in memory, epoch orders, normalised and augmented batches.
 * Depends on: h5io (and h5get), tool, the kernels' Philox (amlfs_rng.h). */
#include "data.h"
#include "amlfs_rng.h"
#include "h5io.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void amlfs_split_read(amlfs_split *s, const char *path, const char *split)
{
    memset(s, 0, sizeof *s);
    hid_t f = amlfs_h5_open(path, "dataset");
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
    for (int c = 0; c < s->channels; c++) {
        if (!isfinite(s->mean[c]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@mean[%d] = %g, expected a finite number", c,
                       s->mean[c]);
        if (!(s->std[c] > 0) || !isfinite(s->std[c]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@std[%d] = %g, expected a finite number > 0",
                       c, s->std[c]);
    }
    hsize_t dims[8];
    amlfs_h5_dims(f, labels, dims);
    s->n = (int)dims[0];
    if (s->n < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s is empty", labels);
    s->images = amlfs_zalloc((size_t)s->n * s->channels * s->height, (size_t)s->width);
    s->labels = amlfs_zalloc((size_t)s->n, sizeof(int32_t));
    amlfs_h5_read(f, images, H5T_NATIVE_UINT8, s->images);
    amlfs_h5_read(f, labels, H5T_NATIVE_INT32, s->labels);
    H5Fclose(f);
    for (int i = 0; i < s->n; i++)
        if (s->labels[i] < 0 || s->labels[i] >= s->classes)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%d] = %d, expected 0 to %d", labels, i,
                       s->labels[i], s->classes - 1);
}

void amlfs_split_free(amlfs_split *s)
{
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

void amlfs_make_batch(const amlfs_split *s, const int *order, int first, int count,
                      amlfs_augment augment, uint32_t seed, uint32_t epoch, uint32_t sample,
                      float *x, int32_t *y)
{
    const int c = s->channels, h = s->height, w = s->width, pad = 4;
    amlfs_rng_name r = amlfs_rng(seed, epoch, sample, AMLFS_STREAM_AUGMENT);
    float scale[3], shift[3];
    for (int ch = 0; ch < c; ch++) { /* x = pixel * scale + shift */
        scale[ch] = (float)(1.0 / (255.0 * s->std[ch]));
        shift[ch] = (float)(-s->mean[ch] / s->std[ch]);
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < count; b++) {
        int idx = order[first + b];
        const uint8_t *src = s->images + (size_t)idx * c * h * w;
        float *dst = x + (size_t)b * c * h * w;
        y[b] = s->labels[idx];
        int dy = 0, dx = 0, flip = 0;
        if (augment == AUGMENT_CROP_FLIP) {
            /* three draws per image, at the image's position in the epoch */
            uint64_t k = 3 * (uint64_t)(first + b);
            dy = (int)amlfs_rng_below(r, k, 2 * pad + 1) - pad;
            dx = (int)amlfs_rng_below(r, k + 1, 2 * pad + 1) - pad;
            flip = amlfs_rng_uniform(r, k + 2) < 0.5;
        }
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    int si = i + dy, sj = (flip ? w - 1 - j : j) + dx;
                    float v = shift[ch]; /* padding: black pixels, as torchvision pads */
                    if (si >= 0 && si < h && sj >= 0 && sj < w)
                        v = src[((size_t)ch * h + si) * w + sj] * scale[ch] + shift[ch];
                    dst[((size_t)ch * h + i) * w + j] = v;
                }
    }
}
