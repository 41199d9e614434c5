/* prep_images.h: what the image-folder preps share (amlfs-prep face, market1501,
 * dukemtmc): sorted folder listings, lists of images to decode, --size, and the
 * chunked, parallel decoding of such a list into a group's /images and /labels, with
 * the pixel moments of the training split. The folder is never held in memory: images
 * are decoded CHUNK at a time (OpenMP) and appended to a chunked dataset.
 * Depends on: image, h5io, tool. */
#ifndef AMLFS_PREP_IMAGES_H
#define AMLFS_PREP_IMAGES_H

#include <hdf5.h>
#include <stdint.h>

/* A growing list of strings (each owned). */
typedef struct {
    char **v;
    int n, cap;
} amlfs_prep_names;

void amlfs_prep_names_add(amlfs_prep_names *l, const char *s);
void amlfs_prep_names_free(amlfs_prep_names *l);

/* An image to decode and the label it is written with. */
typedef struct {
    char *path;
    int32_t label;
} amlfs_prep_item;

typedef struct {
    amlfs_prep_item *v;
    int n, cap;
} amlfs_prep_items;

void amlfs_prep_items_add(amlfs_prep_items *l, const char *path, int32_t label);
void amlfs_prep_items_free(amlfs_prep_items *l);

/* "dir/name", newly allocated. */
char *amlfs_prep_join(const char *dir, const char *name);

/* The entries of dir (hidden ones skipped), each list sorted in byte order: sub-folders
 * into dirs, image files (amlfs_image_name) into files; either may be NULL. Exit 2 when
 * dir is not a readable folder. */
void amlfs_prep_list_dir(const char *dir, amlfs_prep_names *dirs, amlfs_prep_names *files);

/* Every image under dir, recursively, in sorted path order, with label -1. */
void amlfs_prep_list_tree(const char *dir, amlfs_prep_items *out);

/* --size HxW, each 8..1024; example is the default shown when the text is not HxW. */
void amlfs_prep_parse_size(const char *text, const char *example, int *h, int *w);

typedef struct {
    int height, width, skip_bad;
    long skipped;             /* images skipped so far (skip_bad), over every group */
    char first_bad[1024];     /* "path: reason" of the first one */
} amlfs_prep_decode;

/* Decodes items in chunks, in parallel, resized to height x width, and appends them to
 * GROUP/images (N,3,H,W) uint8 and their labels to GROUP/labels (N) int32 (the group is
 * created). kept[i] (items->n bytes) says whether item i was written: without skip_bad
 * the first unreadable image is exit 2 naming it. sums, when not NULL, accumulates the
 * per-channel sums of the written pixel values (sums[0..2]) and of their squares
 * (sums[3..5]). A progress line goes to stderr every 5 s when it is a terminal. Returns
 * the images written. */
int amlfs_prep_write_images(hid_t f, const char *group, const amlfs_prep_items *items,
                            amlfs_prep_decode *o, uint8_t *kept, uint64_t *sums);

/* The root attributes every image dataset file carries before its splits: name, task,
 * classes, 3 channels of height x width, no label noise, the seed. */
void amlfs_prep_root_attrs(hid_t f, const char *name, const char *task, int64_t classes,
                           int height, int width, int64_t seed);

/* The per-channel mean and (population) standard deviation, in [0,1] pixel units, of n
 * images of h x w pixels from the sums of amlfs_prep_write_images. */
void amlfs_prep_moments(const uint64_t sums[6], long long n, int h, int w, double mean[3],
                        double sd[3]);

#endif
