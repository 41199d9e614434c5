/* image.h: image files to RGB pixel planes (face and re-ID data sets, amlfs-prep face),
 * and RGB pixels to JPEG files (amlfs-synth).
 *
 * Reading: the file's format is told from its first bytes (JPEG: FF D8 FF; PNG: its
 * 8-byte signature), not from its name. JPEG through libjpeg(-turbo): greyscale
 * expanded to RGB, YCbCr converted to RGB by the library; CMYK files are refused. Any
 * libjpeg warning (premature end of data, corrupt data) is an error: a truncated or
 * damaged file is never half-read. PNG through libpng: palette and grey expanded to
 * RGB, alpha and tRNS transparency dropped (not composited), as PIL's
 * Image.convert("RGB") does; 16-bit samples cut to their high byte (where PIL clips
 * 16-bit greyscale to 255 instead); libpng warnings are ignored, its errors are errors.
 *
 * Resizing to H x W, each axis on its own (rows first, then columns, in double):
 *   - the same size: the pixels as they are (exact);
 *   - shrinking an axis (out < in): area averaging, output pixel j the mean of the
 *     source interval [j*in/out, (j+1)*in/out), partial pixels weighted by their
 *     overlap (OpenCV's INTER_AREA);
 *   - enlarging an axis (out > in): bilinear with half-pixel centres, source position
 *     x = (j + 0.5) * in / out - 0.5 clamped to [0, in - 1], between floor(x) and
 *     floor(x) + 1 (OpenCV's INTER_LINEAR);
 *   - the result rounded half up, floor(v + 0.5), into 0..255.
 * Output: CHW planes, R then G then B, uint8.
 *
 * Thread-safe: each call has its own decoder state (called from OpenMP loops).
 * Depends on: libjpeg, libpng. */
#ifndef AMLFS_IMAGE_H
#define AMLFS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Decodes path into a new buffer of h*w*3 bytes, RGB interleaved (HWC). Returns the
 * buffer with *h and *w set, or NULL with the reason in err (without the path). */
uint8_t *amlfs_image_decode(const char *path, int *h, int *w, char *err, size_t errlen);

/* Resizes interleaved RGB (ih, iw) into CHW planes (3, oh, ow) by the rule above. */
void amlfs_image_resize_chw(const uint8_t *rgb, int ih, int iw, uint8_t *chw, int oh, int ow);

/* Decode and resize: chw receives 3*oh*ow bytes. 0, or -1 with the reason in err. */
int amlfs_image_load(const char *path, int oh, int ow, uint8_t *chw, char *err, size_t errlen);

/* Whether a file name ends in .jpg, .jpeg or .png (any case): what a folder listing
 * takes as an image. */
int amlfs_image_name(const char *name);

/* Writes interleaved RGB (h, w) as a baseline JPEG of the given quality (1..100), 4:2:0
 * chroma, no metadata: the same pixels give the same bytes. 0, or -1 with err. */
int amlfs_image_write_jpeg(const char *path, const uint8_t *rgb, int h, int w, int quality,
                           char *err, size_t errlen);

#endif
