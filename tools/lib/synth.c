/* synth.c: the canvas, shapes and face-like identities of synth.h.
 * Depends on: amlfs_rng.h. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

amlfs_canvas amlfs_canvas_new(int h, int w)
{
    amlfs_canvas c = {h, w, calloc((size_t)h * w * 3, sizeof(float))};
    if (!c.rgb) {
        fprintf(stderr, "amlfs: out of memory for a %dx%d canvas\n", h, w);
        abort();
    }
    return c;
}

void amlfs_canvas_free(amlfs_canvas *c)
{
    free(c->rgb);
    c->rgb = NULL;
}

void amlfs_canvas_gradient(amlfs_canvas *c, const float top[3], const float bottom[3])
{
    for (int y = 0; y < c->h; y++) {
        float t = c->h > 1 ? (float)y / (c->h - 1) : 0.f;
        for (int x = 0; x < c->w; x++)
            for (int k = 0; k < 3; k++)
                c->rgb[((size_t)y * c->w + x) * 3 + k] = top[k] + t * (bottom[k] - top[k]);
    }
}

/* The shape coordinate of pixel (y, x): the jitter inverted. */
static void shape_point(const amlfs_canvas *c, const amlfs_jitter *j, int y, int x, float *py,
                        float *px)
{
    float u = (y + 0.5f) / c->h, v = (x + 0.5f) / c->w;
    *py = (u - 0.5f - j->dy) / j->scale + 0.5f;
    *px = (v - 0.5f - j->dx) / j->scale + 0.5f;
}

/* The pixel rows [*y0, *y1) and columns [*x0, *x1) that the shape box
 * [cy - ry, cy + ry] x [cx - rx, cx + rx] (shape coordinates) can reach, one pixel of
 * margin each way. */
static void shape_box(const amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx,
                      float ry, float rx, int *y0, int *y1, int *x0, int *x1)
{
    float top = ((cy - ry) - 0.5f) * j->scale + 0.5f + j->dy;
    float bot = ((cy + ry) - 0.5f) * j->scale + 0.5f + j->dy;
    float lft = ((cx - rx) - 0.5f) * j->scale + 0.5f + j->dx;
    float rgt = ((cx + rx) - 0.5f) * j->scale + 0.5f + j->dx;
    *y0 = (int)floorf(top * c->h) - 1;
    *y1 = (int)ceilf(bot * c->h) + 1;
    *x0 = (int)floorf(lft * c->w) - 1;
    *x1 = (int)ceilf(rgt * c->w) + 1;
    *y0 = *y0 < 0 ? 0 : *y0;
    *x0 = *x0 < 0 ? 0 : *x0;
    *y1 = *y1 > c->h ? c->h : *y1;
    *x1 = *x1 > c->w ? c->w : *x1;
}

static void blend(amlfs_canvas *c, int y, int x, const float rgb[3], float a)
{
    float *p = c->rgb + ((size_t)y * c->w + x) * 3;
    for (int k = 0; k < 3; k++)
        p[k] += a * (rgb[k] - p[k]);
}

void amlfs_canvas_ellipse(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float ry,
                          float rx, const float rgb[3], float alpha, float soft)
{
    int y0, y1, x0, x1; /* outside the box grown by soft, the cover is 0 */
    float grow = soft / fminf(ry, rx) + 0.01f;
    shape_box(c, j, cy, cx, ry * (1 + grow), rx * (1 + grow), &y0, &y1, &x0, &x1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float py, px;
            shape_point(c, j, y, x, &py, &px);
            float dy = (py - cy) / ry, dx = (px - cx) / rx;
            /* signed distance to the edge, roughly in normalised units */
            float d = (sqrtf(dy * dy + dx * dx) - 1.f) * fminf(ry, rx);
            float cover = d <= -soft ? 1.f : d >= soft ? 0.f : 0.5f - 0.5f * d / soft;
            if (cover > 0)
                blend(c, y, x, rgb, alpha * cover);
        }
}

void amlfs_canvas_blob(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float sy,
                       float sx, const float rgb[3], float alpha)
{
    int y0, y1, x0, x1; /* d^2 < 25 only inside 5 sigma */
    shape_box(c, j, cy, cx, 5 * sy, 5 * sx, &y0, &y1, &x0, &x1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float py, px;
            shape_point(c, j, y, x, &py, &px);
            float dy = (py - cy) / sy, dx = (px - cx) / sx;
            float d2 = dy * dy + dx * dx;
            if (d2 < 25.f)
                blend(c, y, x, rgb, alpha * expf(-0.5f * d2));
        }
}

void amlfs_canvas_box(amlfs_canvas *c, const amlfs_jitter *j, float cy, float cx, float ry,
                      float rx, const float rgb[3], float alpha, float soft)
{
    int y0, y1, x0, x1; /* outside the box grown by soft, the cover is 0 */
    shape_box(c, j, cy, cx, ry + soft, rx + soft, &y0, &y1, &x0, &x1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float py, px;
            shape_point(c, j, y, x, &py, &px);
            /* per axis: 1 inside by more than soft, 0 outside by more, linear between */
            float ey = (fabsf(py - cy) - ry) / soft, ex = (fabsf(px - cx) - rx) / soft;
            float cyv = ey <= -1 ? 1.f : ey >= 1 ? 0.f : 0.5f - 0.5f * ey;
            float cxv = ex <= -1 ? 1.f : ex >= 1 ? 0.f : 0.5f - 0.5f * ex;
            if (cyv * cxv > 0)
                blend(c, y, x, rgb, alpha * cyv * cxv);
        }
}

void amlfs_canvas_to_u8(const amlfs_canvas *c, float gain, float sigma, amlfs_rng_cursor *cur,
                        uint8_t *out)
{
    size_t n = (size_t)c->h * c->w * 3;
    for (size_t i = 0; i < n; i++) {
        double v = c->rgb[i] * gain + (sigma > 0 ? sigma * amlfs_next_normal(cur) : 0.0);
        v = floor(v + 0.5);
        out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* ---- face-like identities -------------------------------------------------------- */

static float uni(amlfs_rng_cursor *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)amlfs_next_uniform(r);
}

void amlfs_face_template_make(uint32_t seed, uint32_t id, amlfs_face_template *t)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, 0, id, AMLFS_STREAM_SYNTH), 0};
    static const float tones[4][3] = {
        {224, 187, 160}, {198, 150, 118}, {160, 112, 82}, {110, 76, 56}};
    int a = (int)(amlfs_next_uniform(&r) * 4) & 3, b = (a + 1) & 3;
    float m = uni(&r, 0, 1);
    for (int k = 0; k < 3; k++)
        t->skin[k] = tones[a][k] + m * (tones[b][k] - tones[a][k]);
    t->oval[0] = uni(&r, 0.50f, 0.55f);
    t->oval[1] = 0.5f;
    t->oval[2] = uni(&r, 0.36f, 0.43f);
    t->oval[3] = uni(&r, 0.30f, 0.40f);
    t->eye_y = uni(&r, 0.38f, 0.46f);
    t->eye_sep = uni(&r, 0.10f, 0.17f);
    t->mouth_y = uni(&r, 0.66f, 0.74f);
    t->mouth_w = uni(&r, 0.06f, 0.13f);
    for (int k = 0; k < 3; k++) {
        t->eye_rgb[k] = uni(&r, 10, 90);
        t->mouth_rgb[k] = uni(&r, 60, 180);
    }
    for (int i = 0; i < AMLFS_FACE_BLOBS; i++) {
        float *bl = t->blob[i];
        /* inside the oval: a point of the unit disc, scaled */
        float rad = sqrtf(uni(&r, 0, 1)) * 0.85f, ang = uni(&r, 0, 6.2831853f);
        bl[0] = t->oval[0] + rad * t->oval[2] * sinf(ang);
        bl[1] = t->oval[1] + rad * t->oval[3] * cosf(ang);
        bl[2] = uni(&r, 0.03f, 0.10f);
        bl[3] = uni(&r, 0.03f, 0.10f);
        for (int k = 0; k < 3; k++)
            bl[4 + k] = uni(&r, 0, 255);
        bl[7] = uni(&r, 0.4f, 0.8f);
    }
}

void amlfs_face_render(const amlfs_face_template *t, uint32_t seed, uint32_t id, uint32_t n,
                       int h, int w, uint8_t *rgb)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, n + 1, id, AMLFS_STREAM_SYNTH), 0};
    amlfs_jitter j = {uni(&r, -0.04f, 0.04f), uni(&r, -0.04f, 0.04f), uni(&r, 0.95f, 1.05f)};
    float gain = uni(&r, 0.8f, 1.2f), top[3], bottom[3];
    for (int k = 0; k < 3; k++) {
        top[k] = uni(&r, 20, 235);
        bottom[k] = uni(&r, 20, 235);
    }
    amlfs_canvas c = amlfs_canvas_new(h, w);
    amlfs_canvas_gradient(&c, top, bottom);
    amlfs_canvas_ellipse(&c, &j, t->oval[0], t->oval[1], t->oval[2], t->oval[3], t->skin, 1.f,
                         0.02f);
    for (int i = 0; i < AMLFS_FACE_BLOBS; i++) {
        const float *bl = t->blob[i];
        float col[3];
        for (int k = 0; k < 3; k++)
            col[k] = bl[4 + k] + uni(&r, -10, 10);
        amlfs_canvas_blob(&c, &j, bl[0], bl[1], bl[2], bl[3], col, bl[7]);
    }
    for (int s = -1; s <= 1; s += 2)
        amlfs_canvas_ellipse(&c, &j, t->eye_y, 0.5f + s * t->eye_sep, 0.025f, 0.045f, t->eye_rgb,
                             0.95f, 0.01f);
    amlfs_canvas_ellipse(&c, &j, t->mouth_y, 0.5f, 0.022f, t->mouth_w, t->mouth_rgb, 0.9f, 0.01f);
    amlfs_canvas_to_u8(&c, gain, 6.f, &r, rgb);
    amlfs_canvas_free(&c);
}

/* ---- person-like identities (re-ID) ----------------------------------------------- */

static void colour(amlfs_rng_cursor *r, float lo, float hi, float out[3])
{
    for (int k = 0; k < 3; k++)
        out[k] = uni(r, lo, hi);
}

void amlfs_person_template_make(uint32_t seed, uint32_t id, amlfs_person_template *t)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, 0, id, AMLFS_STREAM_SYNTH), 0};
    static const float tones[4][3] = {
        {224, 187, 160}, {198, 150, 118}, {160, 112, 82}, {110, 76, 56}};
    int a = (int)(amlfs_next_uniform(&r) * 4) & 3, b = (a + 1) & 3;
    float m = uni(&r, 0, 1);
    for (int k = 0; k < 3; k++)
        t->skin[k] = tones[a][k] + m * (tones[b][k] - tones[a][k]);
    colour(&r, 10, 120, t->hair);
    colour(&r, 0, 255, t->top);
    colour(&r, 0, 255, t->top2);
    colour(&r, 0, 230, t->legs);
    colour(&r, 0, 160, t->shoes);
    colour(&r, 0, 255, t->bag);
    t->height = uni(&r, 0.88f, 1.0f);
    t->width = uni(&r, 0.8f, 1.15f);
    t->pattern = (int)(amlfs_next_uniform(&r) * 3) % 3;
    t->period = uni(&r, 0.05f, 0.10f);
    t->has_bag = amlfs_next_uniform(&r) < 0.4;
    for (int i = 0; i < AMLFS_PERSON_BLOBS; i++) {
        t->blob[i][0] = uni(&r, 0.22f, 0.48f);
        t->blob[i][1] = uni(&r, 0.35f, 0.65f);
        t->blob[i][2] = uni(&r, 0.025f, 0.05f);
    }
}

void amlfs_camera_look_make(uint32_t seed, uint32_t cam, amlfs_camera_look *c)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, 0, 0x80000000u + cam, AMLFS_STREAM_SYNTH), 0};
    for (int k = 0; k < 3; k++) {
        c->gain[k] = uni(&r, 0.75f, 1.25f);
        c->offset[k] = uni(&r, -20, 20);
    }
    colour(&r, 40, 200, c->background);
}

void amlfs_person_render(const amlfs_person_template *t, const amlfs_camera_look *cam,
                         uint32_t seed, uint32_t id, uint32_t n, int junk, int h, int w,
                         uint8_t *rgb)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, n + 1, id, AMLFS_STREAM_SYNTH), 0};
    amlfs_jitter j = {uni(&r, -0.03f, 0.03f), uni(&r, -0.05f, 0.05f), uni(&r, 0.92f, 1.05f)};
    if (junk) {
        j.dy = uni(&r, -0.3f, 0.3f);
        j.dx = uni(&r, -0.3f, 0.3f);
        j.scale = uni(&r, 1.6f, 2.4f);
    }
    j.scale *= t->height;
    float side = amlfs_next_uniform(&r) < 0.5 ? -1.f : 1.f, stride = uni(&r, 0, 0.5f);
    float gain = uni(&r, 0.85f, 1.15f), top[3], bottom[3], shirt[3], shirt2[3], legs[3];
    for (int k = 0; k < 3; k++) {
        top[k] = cam->background[k] + uni(&r, -30, 30);
        bottom[k] = 0.7f * cam->background[k] + uni(&r, -30, 30);
        shirt[k] = t->top[k] + uni(&r, -8, 8);
        shirt2[k] = t->top2[k] + uni(&r, -8, 8);
        legs[k] = t->legs[k] + uni(&r, -8, 8);
    }
    amlfs_canvas c = amlfs_canvas_new(h, w);
    amlfs_canvas_gradient(&c, top, bottom);
    float sw = 0.22f * t->width; /* half the shoulder width, in units of the image width */
    for (int s = -1; s <= 1; s += 2) { /* legs, then shoes */
        float lx = 0.5f + s * 0.085f * (1 + stride);
        amlfs_canvas_box(&c, &j, 0.71f, lx, 0.20f, 0.07f, legs, 1.f, 0.01f);
        amlfs_canvas_ellipse(&c, &j, 0.925f, lx + s * 0.02f, 0.025f, 0.08f, t->shoes, 1.f,
                             0.008f);
    }
    for (int s = -1; s <= 1; s += 2) /* arms: sleeves a little darker than the shirt */
    {
        float sleeve[3] = {0.8f * shirt[0], 0.8f * shirt[1], 0.8f * shirt[2]};
        amlfs_canvas_box(&c, &j, 0.37f, 0.5f + s * (sw + 0.05f), 0.15f, 0.05f, sleeve, 1.f,
                         0.01f);
        amlfs_canvas_ellipse(&c, &j, 0.535f, 0.5f + s * (sw + 0.05f), 0.02f, 0.05f, t->skin,
                             1.f, 0.008f);
    }
    amlfs_canvas_box(&c, &j, 0.36f, 0.5f, 0.17f, sw, shirt, 1.f, 0.012f);
    if (t->pattern == 1)
        for (float y = 0.21f; y < 0.52f; y += t->period)
            amlfs_canvas_box(&c, &j, y, 0.5f, t->period / 4, sw, shirt2, 0.95f, 0.006f);
    else if (t->pattern == 2)
        for (int i = 0; i < AMLFS_PERSON_BLOBS; i++) /* mirrored with the image */
            amlfs_canvas_blob(&c, &j, t->blob[i][0], 0.5f + side * (t->blob[i][1] - 0.5f),
                              t->blob[i][2], 2 * t->blob[i][2], shirt2, 0.9f);
    amlfs_canvas_ellipse(&c, &j, 0.125f, 0.5f, 0.065f, 0.13f, t->skin, 1.f, 0.01f);
    amlfs_canvas_ellipse(&c, &j, 0.085f, 0.5f, 0.04f, 0.135f, t->hair, 1.f, 0.01f);
    if (t->has_bag)
        amlfs_canvas_box(&c, &j, 0.5f, 0.5f + side * (sw + 0.1f), 0.08f, 0.08f, t->bag, 1.f,
                         0.01f);
    size_t np = (size_t)h * w;
    for (size_t p = 0; p < np; p++) /* the camera's colour look */
        for (int k = 0; k < 3; k++)
            c.rgb[p * 3 + k] = c.rgb[p * 3 + k] * cam->gain[k] + cam->offset[k];
    amlfs_canvas_to_u8(&c, gain, 5.f, &r, rgb);
    amlfs_canvas_free(&c);
}
