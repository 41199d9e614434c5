/* synth.h: generated image data sets for tests and demos (amlfs-synth): a float RGB
 * canvas, soft shapes drawn on it, and face-like identities: each a smooth random
 * template (an oval with blobs), each image of it the template under a per-image jitter
 * (shift, scale, brightness, background, pixel noise). Everything is drawn from Philox
 * streams (amlfs_rng.h): the same seed gives the same pixels. Person-like identities
 * for re-ID (amlfs-synth market) are drawn with the same calls: a head, torso, arms,
 * legs and shoes of random colours and patterns, seen through per-camera colour looks.
 * Depends on: the kernels' Philox (amlfs_rng.h). */
#ifndef AMLFS_SYNTH_H
#define AMLFS_SYNTH_H

#include "amlfs_rng.h"

#include <stdint.h>

/* Interleaved RGB (h, w) in 0..255 units, float. */
typedef struct {
    int h, w;
    float *rgb;
} amlfs_canvas;

amlfs_canvas amlfs_canvas_new(int h, int w);
void amlfs_canvas_free(amlfs_canvas *c);
/* A vertical gradient from top to bottom colour. */
void amlfs_canvas_gradient(amlfs_canvas *c, const float top[3], const float bottom[3]);
/* Shapes in normalised coordinates (y and x in [0,1] over the canvas), mapped through
 * an affine jitter: a point p of the shape lands at (p - 0.5) * scale + 0.5 + shift. */
typedef struct {
    float dy, dx, scale;
} amlfs_jitter;
/* A filled ellipse, its edge smoothed over `soft` (normalised units), blended with
 * opacity alpha. */
void amlfs_canvas_ellipse(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float ry,
                          float rx, const float rgb[3], float alpha, float soft);
/* A Gaussian blob: colour blended with weight alpha * exp(-d^2 / 2), d the distance in
 * units of (sy, sx). */
void amlfs_canvas_blob(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float sy,
                       float sx, const float rgb[3], float alpha);
/* A filled box [cy - ry, cy + ry] x [cx - rx, cx + rx], its edges smoothed over soft,
 * blended with opacity alpha. */
void amlfs_canvas_box(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float ry,
                      float rx, const float rgb[3], float alpha, float soft);
/* Multiplies by gain, adds N(0, sigma^2) noise per value (normal numbers from cursor),
 * rounds and clamps into out (h*w*3 bytes). */
void amlfs_canvas_to_u8(const amlfs_canvas *c, float gain, float sigma, amlfs_rng_cursor *cur,
                        uint8_t *out);

/* ---- face-like identities -------------------------------------------------------- */

#define AMLFS_FACE_BLOBS 8
typedef struct {
    float skin[3], oval[4]; /* centre y, x, radii y, x */
    float eye_y, eye_sep, eye_rgb[3], mouth_y, mouth_w, mouth_rgb[3];
    float blob[AMLFS_FACE_BLOBS][8]; /* y, x, sy, sx, r, g, b, alpha */
} amlfs_face_template;

/* Identity `id`'s template: stream (seed, 0, id, AMLFS_STREAM_SYNTH). */
void amlfs_face_template_make(uint32_t seed, uint32_t id, amlfs_face_template *t);
/* Image `n` of the identity: stream (seed, n + 1, id, AMLFS_STREAM_SYNTH) draws the
 * jitter (shift up to 4% of the size each way, scale 0.95..1.05, brightness 0.8..1.2,
 * a random background gradient, blob colours +-10, noise sigma 6); rgb: h*w*3 bytes. */
void amlfs_face_render(const amlfs_face_template *t, uint32_t seed, uint32_t id, uint32_t n,
                       int h, int w, uint8_t *rgb);

/* ---- person-like identities (re-ID) ----------------------------------------------- */

#define AMLFS_PERSON_BLOBS 3
typedef struct {
    float skin[3], hair[3], top[3], top2[3], legs[3], shoes[3], bag[3];
    float height, width;  /* body scale 0.88..1.0 and shoulder-width factor 0.8..1.15 */
    int pattern;          /* torso: 0 plain, 1 horizontal stripes, 2 blobs of top2 */
    float period;         /* stripe period (normalised height) */
    int has_bag;          /* 1: a bag on one side (which side: per image, mirrored) */
    float blob[AMLFS_PERSON_BLOBS][3]; /* y, x, sigma of the torso blobs */
} amlfs_person_template;

/* Identity `id`'s template: stream (seed, 0, id, AMLFS_STREAM_SYNTH). */
void amlfs_person_template_make(uint32_t seed, uint32_t id, amlfs_person_template *t);

/* A camera's colour look: out = in * gain + offset per channel, and the base colour of
 * its backgrounds; stream (seed, 0, 0x80000000 + cam, AMLFS_STREAM_SYNTH). */
typedef struct {
    float gain[3], offset[3], background[3];
} amlfs_camera_look;
void amlfs_camera_look_make(uint32_t seed, uint32_t cam, amlfs_camera_look *c);

/* Image `n` of the identity seen through a camera: stream (seed, n + 1, id,
 * AMLFS_STREAM_SYNTH) draws the jitter (shift up to 5% across and 3% down, scale
 * 0.92..1.05, a mirror with p 0.5, the stride of the legs, clothes colours +-8,
 * brightness 0.85..1.15, a background gradient around the camera's colour, noise sigma
 * 5). junk: a bad detection instead (scale 1.6..2.4, shifts up to 30%), as Market's
 * junk images are. rgb: h*w*3 bytes. */
void amlfs_person_render(const amlfs_person_template *t, const amlfs_camera_look *cam,
                         uint32_t seed, uint32_t id, uint32_t n, int junk, int h, int w,
                         uint8_t *rgb);

#endif
