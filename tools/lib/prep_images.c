/* prep_images.c: folder listings, item lists and the chunked parallel decoding of the
 * image-folder preps (prep_images.h).
 * Depends on: image, h5io, tool. */
#include "prep_images.h"
#include "h5io.h"
#include "image.h"
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CHUNK = 1024, ERRLEN = 512 };

void amlfs_prep_names_add(amlfs_prep_names *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, sizeof(char *) * (size_t)l->cap);
        if (!l->v)
            amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n++])
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
}

void amlfs_prep_names_free(amlfs_prep_names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void amlfs_prep_items_add(amlfs_prep_items *l, const char *path, int32_t label)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = realloc(l->v, sizeof(amlfs_prep_item) * (size_t)l->cap);
        if (!l->v)
            amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    }
    l->v[l->n].path = strdup(path);
    if (!l->v[l->n].path)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
    l->v[l->n++].label = label;
}

void amlfs_prep_items_free(amlfs_prep_items *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *amlfs_prep_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = amlfs_zalloc(n, 1);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void amlfs_prep_list_dir(const char *dir, amlfs_prep_names *dirs, amlfs_prep_names *files)
{
    DIR *d = opendir(dir);
    if (!d)
        amlfs_fail(AMLFS_EXIT_USAGE, dir, "cannot read the folder: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = amlfs_prep_join(dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode) && dirs)
                amlfs_prep_names_add(dirs, e->d_name);
            else if (S_ISREG(st.st_mode) && files && amlfs_image_name(e->d_name))
                amlfs_prep_names_add(files, e->d_name);
        }
        free(p);
    }
    closedir(d);
    if (dirs && dirs->n) /* an empty list has no array to sort (qsort(NULL) is undefined) */
        qsort(dirs->v, (size_t)dirs->n, sizeof(char *), cmp_str);
    if (files && files->n)
        qsort(files->v, (size_t)files->n, sizeof(char *), cmp_str);
}

void amlfs_prep_list_tree(const char *dir, amlfs_prep_items *out)
{
    amlfs_prep_names dirs = {0}, files = {0};
    amlfs_prep_list_dir(dir, &dirs, &files);
    /* files and folders merged in name order: a sorted walk of relative paths */
    int i = 0, j = 0;
    while (i < files.n || j < dirs.n) {
        if (j >= dirs.n || (i < files.n && strcmp(files.v[i], dirs.v[j]) < 0)) {
            char *p = amlfs_prep_join(dir, files.v[i++]);
            amlfs_prep_items_add(out, p, -1);
            free(p);
        } else {
            char *p = amlfs_prep_join(dir, dirs.v[j++]);
            amlfs_prep_list_tree(p, out);
            free(p);
        }
    }
    amlfs_prep_names_free(&dirs);
    amlfs_prep_names_free(&files);
}

int amlfs_prep_write_images(hid_t f, const char *group, const amlfs_prep_items *items,
                            amlfs_prep_decode *o, uint8_t *kept, uint64_t *sums)
{
    char path[64];
    size_t pixels = (size_t)3 * o->height * o->width, plane = pixels / 3;
    hsize_t row[3] = {3, (hsize_t)o->height, (hsize_t)o->width};
    H5Gclose(amlfs_h5_group(f, group)); /* untracked times: the same bytes every run */
    snprintf(path, sizeof path, "%s/images", group);
    amlfs_h5_stream s = amlfs_h5_stream_create(f, path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, row);
    uint8_t *buf = amlfs_zalloc(CHUNK, pixels);
    char *errs = amlfs_zalloc(CHUNK, ERRLEN);
    uint64_t *isums = amlfs_zalloc(CHUNK, 6 * sizeof(uint64_t));
    int32_t *labels = amlfs_zalloc((size_t)items->n, sizeof(int32_t));
    int written = 0;
    double t0 = amlfs_seconds(), last = t0;
    for (int start = 0; start < items->n; start += CHUNK) {
        int count = items->n - start < CHUNK ? items->n - start : CHUNK;
#pragma omp parallel for schedule(dynamic, 4)
        for (int i = 0; i < count; i++) {
            uint8_t *img = buf + (size_t)i * pixels;
            char *err = errs + (size_t)i * ERRLEN;
            err[0] = 0;
            if (amlfs_image_load(items->v[start + i].path, o->height, o->width, img, err,
                                 ERRLEN) != 0) {
                if (!err[0])
                    snprintf(err, ERRLEN, "unreadable");
                continue;
            }
            if (sums)
                for (int c = 0; c < 3; c++) {
                    uint64_t a = 0, b = 0;
                    for (size_t j = 0; j < plane; j++) {
                        uint64_t v = img[c * plane + j];
                        a += v;
                        b += v * v;
                    }
                    isums[6 * i + c] = a;
                    isums[6 * i + 3 + c] = b;
                }
        }
        int out = 0;
        for (int i = 0; i < count; i++) {
            const amlfs_prep_item *it = &items->v[start + i];
            const char *err = errs + (size_t)i * ERRLEN;
            kept[start + i] = !err[0];
            if (err[0]) {
                if (!o->skip_bad)
                    amlfs_fail(AMLFS_EXIT_USAGE, it->path, "%s (--skip-bad skips such images)",
                               err);
                if (!o->skipped++)
                    snprintf(o->first_bad, sizeof o->first_bad, "%s: %s", it->path, err);
                continue;
            }
            if (out != i)
                memcpy(buf + (size_t)out * pixels, buf + (size_t)i * pixels, pixels);
            if (sums)
                for (int k = 0; k < 6; k++)
                    sums[k] += isums[6 * i + k];
            labels[written + out] = it->label;
            out++;
        }
        amlfs_h5_stream_append(&s, (hsize_t)out, buf);
        written += out;
        double now = amlfs_seconds();
        if (amlfs_progress_on() && now - last >= 5.0) { /* DESIGN.md 2: on a terminal */
            int done = start + count;
            amlfs_note("%s: %d of %d images (%.1f%%), %.0f images/s", group, done, items->n,
                       100.0 * done / items->n, done / (now - t0));
            last = now;
        }
    }
    amlfs_h5_stream_close(&s);
    hsize_t dl[1] = {(hsize_t)written};
    snprintf(path, sizeof path, "%s/labels", group);
    amlfs_h5_write(f, path, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dl, labels);
    free(labels);
    free(isums);
    free(errs);
    free(buf);
    return written;
}

void amlfs_prep_parse_size(const char *s, const char *example, int *h, int *w)
{
    char *x = strchr(s, 'x');
    if (!x)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--size: '%s' is not HxW (%s)", s, example);
    char hs[32];
    snprintf(hs, sizeof hs, "%.*s", (int)(x - s), s);
    *h = (int)amlfs_arg_int("--size (height)", hs, 8, 1024);
    *w = (int)amlfs_arg_int("--size (width)", x + 1, 8, 1024);
}

void amlfs_prep_root_attrs(hid_t f, const char *name, const char *task, int64_t classes,
                           int height, int width, int64_t seed)
{
    amlfs_attr_set_str(f, "/", "name", name);
    amlfs_attr_set_str(f, "/", "task", task);
    amlfs_attr_set_i64(f, "/", "classes", classes);
    amlfs_attr_set_i64(f, "/", "channels", 3);
    amlfs_attr_set_i64(f, "/", "height", height);
    amlfs_attr_set_i64(f, "/", "width", width);
    amlfs_attr_set_f64(f, "/", "noise_ratio", 0.0);
    amlfs_attr_set_str(f, "/", "noise_kind", "none");
    amlfs_attr_set_i64(f, "/", "seed", seed);
}

void amlfs_prep_moments(const uint64_t sums[6], long long n, int h, int w, double mean[3],
                        double sd[3])
{
    double count = (double)n * h * w;
    for (int ch = 0; ch < 3; ch++) {
        double m = (double)sums[ch] / count;
        mean[ch] = m / 255.0;
        sd[ch] = sqrt(fmax((double)sums[3 + ch] / count - m * m, 0.0)) / 255.0;
    }
}
