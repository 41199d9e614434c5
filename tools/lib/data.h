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

/* How a training epoch orders its images: random, a permutation (amlfs_epoch_order); pk,
 * batches of P identities x K images (amlfs_pk_order). */
typedef enum { AMLFS_SAMPLER_RANDOM = 0, AMLFS_SAMPLER_PK = 1 } amlfs_sampler;

/* The P x K identity sampler of re-ID training (torchreid's RandomIdentitySampler): an
 * epoch's order of image indices in batches of P identities with K images each. All draws
 * are the uniform numbers 0, 1, 2, ... of stream (seed, epoch, sample,
 * AMLFS_STREAM_DATA_ORDER), taken one after the other in the order of the steps below;
 * below(m) is the next uniform U mapped to min(floor(U m), m-1) (amlfs_rng_below).
 *  1. The identities are the distinct labels (>= 0), in increasing order; an identity's
 *     images are its indices into labels, in increasing order.
 *  2. Per identity in that order, its list L: with m >= K images, L = its images; with
 *     m < K, L = K draws with replacement, entry j = images[below(m)] for j = 0..K-1
 *     (np.random.choice(idxs, K, replace=True)). Then L (length l = max(m, K)) is
 *     shuffled by Fisher-Yates: for t = l-1 down to 1, swap L[t] and L[below(t+1)]
 *     (random.shuffle). L is cut into floor(l/K) chunks of K consecutive entries; the
 *     l mod K entries left over are not used this epoch.
 *  3. A = the identities, in increasing order (each has at least one chunk). While A
 *     holds at least P identities: P of them are drawn without replacement by a partial
 *     Fisher-Yates on a copy S of A: for j = 0..P-1, swap S[j] and S[j + below(|A|-j)]
 *     (random.sample(A, P)); for S[0], ..., S[P-1] in that order, the identity's next
 *     chunk (its chunks in order) is appended to the epoch's order, and an identity whose
 *     chunks are used up leaves A (the others keep their order).
 * The epoch has as many batches as the loop ran (each exactly P x K images, never a
 * partial one): at most amlfs_pk_capacity / (P K), fewer when identities with chunks left
 * number under P at the end (their chunks go unused, as in torchreid). */
/* The most entries amlfs_pk_order writes for these labels (torchreid's __len__: the sum
 * over identities of max(m, K) rounded down to a multiple of K), and in *identities the
 * number of distinct labels; -1 for a label < 0 or k < 1. */
int64_t amlfs_pk_capacity(const int32_t *labels, int n, int k, int *identities);
/* Writes the epoch's order (room for amlfs_pk_capacity entries) and returns its length, a
 * multiple of P K: 0 when fewer than P identities; -1 for p < 1, k < 1 or a label < 0. */
int amlfs_pk_order(int *order, const int32_t *labels, int n, int p, int k, uint32_t seed,
                   uint32_t epoch, uint32_t sample);

typedef enum { AUGMENT_NONE = 0, AUGMENT_CROP_FLIP = 1, AUGMENT_FLIP = 2,
               AUGMENT_REID = 3 } amlfs_augment;

/* AUGMENT_REID: the re-ID augmentation of the strong baseline (Luo et al. 2019) as
 * torchreid trains with it: horizontal flip, 10-pixel pad and random crop, random erasing. */
#define AMLFS_REID_PAD 10
#define AMLFS_REID_ERASE_P 0.5     /* the probability an image is erased */
#define AMLFS_REID_ERASE_SL 0.02   /* the erased area, a fraction of H x W: sl .. sh */
#define AMLFS_REID_ERASE_SH 0.4
#define AMLFS_REID_ERASE_R1 0.3    /* the aspect h/w: r1 .. 1/r1 */
#define AMLFS_REID_ERASE_TRIES 100 /* attempts at a rectangle inside the image */
/* Uniform numbers per image: flip, dy, dx, the erasing decision, then 4 per attempt. */
#define AMLFS_REID_DRAWS (4 + 4 * AMLFS_REID_ERASE_TRIES)

/* Batch rows order[first .. first+count) as normalised float32 (count,C,H,W):
 * x = (pixel/255 - mean) / std per channel. With AUGMENT_CROP_FLIP, each image is
 * padded by 4 black pixels (value 0 before normalisation), cropped back to HxW at a random
 * offset and flipped horizontally with probability 1/2, drawn from stream (seed, epoch,
 * sample, AMLFS_STREAM_AUGMENT) at the image's position in the epoch. AUGMENT_FLIP (face
 * training) flips with the same draw and never shifts.
 * AUGMENT_REID draws from the same stream uniform numbers q = AMLFS_REID_DRAWS p + 0 ..
 * 403 for the image at position p of the epoch, U(i) uniform number i and below(i, m) =
 * min(floor(U(i) m), m-1):
 *   flip = U(q) < 1/2 (torchvision's RandomHorizontalFlip);
 *   dy = below(q+1, 21) - 10, dx = below(q+2, 21) - 10 (Pad(10) with black pixels, value 0
 *     before normalisation, then RandomCrop(H, W) at (10+dy, 10+dx)), applied after the
 *     flip: output (i, j) is the flipped image's pixel (i+dy, j+dx), the source column
 *     W-1-(j+dx) when flipped, padding outside;
 *   erased = U(q+3) < 0.5, and then attempts a = 0..99, with t = q + 4 + 4a:
 *     area = (0.02 + (0.4 - 0.02) U(t)) H W, aspect = 0.3 + (1/0.3 - 0.3) U(t+1),
 *     eh = round(sqrt(area aspect)), ew = round(sqrt(area / aspect)) (rounding half to
 *     even, as Python's round), accepted when eh < H and ew < W: top = below(t+2, H-eh+1),
 *     left = below(t+3, W-ew+1), and rows top..top+eh-1, columns left..left+ew-1 of every
 *     channel of the normalised output become 0 (the dataset's mean pixel); no attempt
 *     accepted: nothing erased. The draws of an attempt not reached are not used.
 * This is Zhong et al.'s RandomErasing as torchreid's and the strong baseline's code
 * writes it (probability 0.5, sl 0.02, sh 0.4, r1 0.3, 100 attempts, the aspect uniform
 * in [r1, 1/r1], not log-uniform as torchvision's) except for the fill: theirs writes the
 * constants (0.4914, 0.4822, 0.4465) into the normalised image, this the mean pixel, 0.
 * A streamed split reads the rows from its file (exit 1 naming it when a read fails) and
 * starts reading the next batch, rows order[first+count ..), of the same size, so a loop
 * over consecutive batches of one order waits only for the first. The order has s->n
 * entries (amlfs_make_batch_of: length entries). */
void amlfs_make_batch(const amlfs_split *s, const int *order, int first, int count,
                      amlfs_augment augment, uint32_t seed, uint32_t epoch, uint32_t sample,
                      float *x, int32_t *y);
void amlfs_make_batch_of(const amlfs_split *s, const int *order, int length, int first,
                         int count, amlfs_augment augment, uint32_t seed, uint32_t epoch,
                         uint32_t sample, float *x, int32_t *y);

#endif
