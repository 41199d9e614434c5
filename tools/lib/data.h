/* data.h: a dataset split in memory and the batches a training epoch or an evaluation
 * draws from it: the epoch's order and augmentation come from the Philox streams of
 * (seed, epoch, sample), so every sample of an epoch sees its own, reproducible data. */
#ifndef AMLFS_DATA_H
#define AMLFS_DATA_H

#include "amlfs_rng.h"

#include <stddef.h>
#include <stdint.h>

/* How a split's images are held: `memory` reads them all at open; `stream` leaves them
 * in the file and reads each batch's images when amlfs_make_batch asks for them, a
 * reader thread fetching the next batch's while the current one trains; `auto` streams
 * when the images outgrow AMLFS_READ_AUTO_BYTES or a quarter of the machine's memory.
 * The batches are the same either way, byte for byte. */
typedef enum { AMLFS_READ_AUTO = 0, AMLFS_READ_MEMORY = 1, AMLFS_READ_STREAM = 2 } amlfs_read_mode;
extern const char *const amlfs_read_names[]; /* "auto", "memory", "stream" */
#define AMLFS_READ_AUTO_BYTES ((size_t)4 << 30)

struct amlfs_prefetch;

typedef struct {
    int n, channels, height, width, classes;
    uint8_t *images; /* (N,C,H,W), 0..255; NULL when streamed */
    int32_t *labels; /* (N) */
    double mean[3], std[3]; /* per channel, [0,1] pixel units (the training split's) */
    char name[32];
    char task[32];   /* /@task: classification, face, reid (empty: classification) */
    int streamed;    /* 1: the images stay in the file (amlfs_split_open) */
    int64_t file, images_ds;         /* streamed: the open file and /SPLIT/images */
    struct amlfs_prefetch *prefetch; /* streamed: the batch reader */
    char path[4096];                 /* streamed: the file, for messages */
    char images_name[64];            /* streamed: /SPLIT/images */
} amlfs_split;

/* Reads /SPLIT of a dataset file (validated; exit 2 naming the file on any problem).
 * A file without the root attribute 'schema' (written by hand, plain.h) needs only
 * /SPLIT/images (N,C,H,W) or (N,H,W) uint8 (1 to 3 channels) and /SPLIT/labels (N) of
 * any integer type; the optional root attributes classes (default: one more than the
 * largest label in /train, /val and /test), mean and std (one per channel, [0,1] pixel
 * units; default: those of /train/images) and name are used when present. */
void amlfs_split_read(amlfs_split *s, const char *path, const char *split);
/* The same, with the images held as mode says (a streamed split keeps its file open
 * until amlfs_split_free). */
void amlfs_split_open(amlfs_split *s, const char *path, const char *split,
                      amlfs_read_mode mode);

/* Per-channel mean and standard deviation (population) of n images (N,C,plane) in [0,1]
 * pixel units: what amlfs-prep records for the training split. */
void amlfs_image_moments(const uint8_t *images, int n, int channels, size_t plane,
                         double *mean, double *std);
/* Frees the split; a streamed one stops its reader and closes its file. */
void amlfs_split_free(amlfs_split *s);

/* Shuffles idx[0..n) in place with uniform draws 0..n-2 of stream r (Fisher-Yates). */
void amlfs_shuffle(int *idx, int n, amlfs_rng_name r);

/* The epoch's order: a permutation of 0..n-1 from stream (seed, epoch, sample,
 * AMLFS_STREAM_DATA_ORDER). */
void amlfs_epoch_order(int *order, int n, uint32_t seed, uint32_t epoch, uint32_t sample);

typedef enum { AUGMENT_NONE = 0, AUGMENT_CROP_FLIP = 1, AUGMENT_FLIP = 2 } amlfs_augment;

/* Batch rows order[first .. first+count) as normalised float32 (count,C,H,W):
 * x = (pixel/255 - mean) / std per channel. With AUGMENT_CROP_FLIP, each image is
 * padded by 4 black pixels (value 0 before normalisation), cropped back to HxW at a random
 * offset and flipped horizontally with probability 1/2, drawn from stream (seed, epoch,
 * sample, AMLFS_STREAM_AUGMENT) at the image's position in the epoch. AUGMENT_FLIP (face
 * training) flips with the same draw and never shifts.
 * A streamed split reads the rows from its file (exit 1 naming it when a read fails) and
 * starts reading the next batch, rows order[first+count ..), of the same size, so a loop
 * over consecutive batches of one order waits only for the first. */
void amlfs_make_batch(const amlfs_split *s, const int *order, int first, int count,
                      amlfs_augment augment, uint32_t seed, uint32_t epoch, uint32_t sample,
                      float *x, int32_t *y);

#endif
