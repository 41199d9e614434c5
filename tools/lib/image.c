/* image.c: JPEG and PNG files to RGB, the resize of image.h, JPEG writing.
 * Depends on: libjpeg (jpeglib.h), libpng. */
#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

/* ---- JPEG ------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings (msg_level -1: premature end of data, corrupt entropy data, ...) are errors:
 * the decoder would go on and return made-up pixels. Trace messages are dropped. */
static void jpeg_emit(j_common_ptr cinfo, int msg_level)
{
    if (msg_level < 0)
        jpeg_error_exit(cinfo);
}

static uint8_t *decode_jpeg(FILE *in, int *h, int *w, char *err, size_t errlen)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    /* volatile: assigned after setjmp, read after longjmp */
    uint8_t *volatile rgb = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit;
    jerr.pub.emit_message = jpeg_emit;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jump)) {
        snprintf(err, errlen, "not a readable JPEG: %s", jerr.msg);
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, in);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(err, errlen, "a CMYK JPEG; only greyscale and RGB/YCbCr are read");
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    cinfo.out_color_space = JCS_RGB; /* greyscale expanded by the library */
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(err, errlen, "decodes to %d components, expected 3", cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    rgb = malloc(stride * cinfo.output_height);
    if (!rgb) {
        snprintf(err, errlen, "out of memory for %ux%u pixels", cinfo.output_width,
                 cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *h = (int)cinfo.output_height;
    *w = (int)cinfo.output_width;
    jpeg_destroy_decompress(&cinfo);
    return rgb;
}

/* ---- PNG -------------------------------------------------------------------------- */

typedef struct {
    jmp_buf jump;
    char msg[256];
} png_err;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* ancillary-chunk complaints (iCCP profiles, ...) leave the pixels intact */
}

static uint8_t *decode_png(FILE *in, int *h, int *w, char *err, size_t errlen)
{
    png_err perr;
    perr.msg[0] = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &perr, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        snprintf(err, errlen, "cannot start libpng");
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return NULL;
    }
    if (setjmp(perr.jump)) {
        snprintf(err, errlen, "not a readable PNG: %s", perr.msg);
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        return NULL;
    }
    png_init_io(png, in);
    png_read_info(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (depth == 16)
        png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    if (type & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    size_t stride = png_get_rowbytes(png, info);
    /* a palette's tRNS comes out as alpha (png_set_palette_to_rgb expands it): dropped
     * below, like the alpha channel */
    int channels = stride == (size_t)pw * 4 ? 4 : 3;
    if (stride != (size_t)pw * channels) {
        snprintf(err, errlen, "decodes to %zu bytes a row, expected %u RGB pixels", stride,
                 (unsigned)pw);
        png_destroy_read_struct(&png, &info, NULL);
        return NULL;
    }
    rgb = malloc(stride * ph);
    rows = malloc(sizeof(png_bytep) * ph);
    if (!rgb || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < ph; y++)
        rows[y] = rgb + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    if (channels == 4)
        for (size_t p = 0; p < (size_t)pw * ph; p++)
            for (int c = 0; c < 3; c++)
                rgb[p * 3 + c] = rgb[p * 4 + c];
    *h = (int)ph;
    *w = (int)pw;
    return rgb;
}

uint8_t *amlfs_image_decode(const char *path, int *h, int *w, char *err, size_t errlen)
{
    FILE *in = fopen(path, "rb");
    if (!in) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, in);
    rewind(in);
    uint8_t *rgb = NULL;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff)
        rgb = decode_jpeg(in, h, w, err, errlen);
    else if (got == 8 && !memcmp(magic, png_sig, 8))
        rgb = decode_png(in, h, w, err, errlen);
    else
        snprintf(err, errlen, got == 0 ? "empty file" : "neither a JPEG nor a PNG file");
    fclose(in);
    if (rgb && (*h < 1 || *w < 1)) {
        snprintf(err, errlen, "an image of %dx%d pixels", *h, *w);
        free(rgb);
        return NULL;
    }
    return rgb;
}

/* ---- resizing --------------------------------------------------------------------- */

/* The weights of one axis: output j reads source first[j] .. first[j] + count[j] - 1
 * with weight[j * span + k]. */
typedef struct {
    int span;
    int *first, *count;
    double *weight;
} axis_weights;

static int axis_make(axis_weights *a, int in, int out)
{
    double scale = (double)in / out;
    a->span = out < in ? (int)ceil(scale) + 2 : 2;
    a->first = calloc((size_t)out, sizeof(int));
    a->count = calloc((size_t)out, sizeof(int));
    a->weight = calloc((size_t)out * a->span, sizeof(double));
    if (!a->first || !a->count || !a->weight)
        return -1;
    for (int j = 0; j < out; j++) {
        double *wt = a->weight + (size_t)j * a->span;
        if (in == out) {
            a->first[j] = j;
            a->count[j] = 1;
            wt[0] = 1.0;
        } else if (out < in) { /* area: overlap of [i, i+1) with [j*s, (j+1)*s) */
            double lo = j * scale, hi = (j + 1) * scale;
            int i0 = (int)floor(lo), i1 = (int)ceil(hi);
            if (i1 > in)
                i1 = in;
            a->first[j] = i0;
            a->count[j] = i1 - i0;
            for (int i = i0; i < i1; i++) {
                double ov = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                wt[i - i0] = ov > 0 ? ov / scale : 0.0;
            }
        } else { /* bilinear, half-pixel centres */
            double x = (j + 0.5) * scale - 0.5;
            if (x < 0)
                x = 0;
            if (x > in - 1)
                x = in - 1;
            int i0 = (int)floor(x);
            double f = x - i0;
            a->first[j] = i0;
            if (i0 + 1 < in) {
                a->count[j] = 2;
                wt[0] = 1.0 - f;
                wt[1] = f;
            } else {
                a->count[j] = 1;
                wt[0] = 1.0;
            }
        }
    }
    return 0;
}

static void axis_free(axis_weights *a)
{
    free(a->first);
    free(a->count);
    free(a->weight);
}

void amlfs_image_resize_chw(const uint8_t *rgb, int ih, int iw, uint8_t *chw, int oh, int ow)
{
    size_t plane = (size_t)oh * ow;
    if (ih == oh && iw == ow) {
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + p] = rgb[p * 3 + c];
        return;
    }
    axis_weights ax, ay;
    double *tmp = malloc(sizeof(double) * (size_t)ih * ow * 3);
    if (axis_make(&ax, iw, ow) || axis_make(&ay, ih, oh) || !tmp) {
        fprintf(stderr, "amlfs: out of memory resizing an image\n");
        abort();
    }
    for (int y = 0; y < ih; y++) /* columns: (ih, iw) -> (ih, ow) */
        for (int j = 0; j < ow; j++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                const double *wt = ax.weight + (size_t)j * ax.span;
                for (int k = 0; k < ax.count[j]; k++)
                    s += wt[k] * rgb[((size_t)y * iw + ax.first[j] + k) * 3 + c];
                tmp[((size_t)y * ow + j) * 3 + c] = s;
            }
    for (int i = 0; i < oh; i++) /* rows: (ih, ow) -> (oh, ow) */
        for (int j = 0; j < ow; j++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                const double *wt = ay.weight + (size_t)i * ay.span;
                for (int k = 0; k < ay.count[i]; k++)
                    s += wt[k] * tmp[((size_t)(ay.first[i] + k) * ow + j) * 3 + c];
                double v = floor(s + 0.5);
                chw[c * plane + (size_t)i * ow + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
}

int amlfs_image_load(const char *path, int oh, int ow, uint8_t *chw, char *err, size_t errlen)
{
    int h, w;
    uint8_t *rgb = amlfs_image_decode(path, &h, &w, err, errlen);
    if (!rgb)
        return -1;
    amlfs_image_resize_chw(rgb, h, w, chw, oh, ow);
    free(rgb);
    return 0;
}

int amlfs_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    char ext[8];
    size_t n = strlen(dot + 1);
    if (n >= sizeof ext)
        return 0;
    for (size_t i = 0; i <= n; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

/* ---- JPEG writing ----------------------------------------------------------------- */

int amlfs_image_write_jpeg(const char *path, const uint8_t *rgb, int h, int w, int quality,
                           char *err, size_t errlen)
{
    FILE *out = fopen(path, "wb");
    if (!out) {
        snprintf(err, errlen, "cannot create: %s", strerror(errno));
        return -1;
    }
    struct jpeg_compress_struct cinfo;
    jpeg_err jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit;
    jerr.pub.emit_message = jpeg_emit;
    if (setjmp(jerr.jump)) {
        snprintf(err, errlen, "cannot write JPEG: %s", jerr.msg);
        jpeg_destroy_compress(&cinfo);
        fclose(out);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, out);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.write_JFIF_header = TRUE;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * w * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad) {
        snprintf(err, errlen, "cannot write: %s", strerror(errno));
        return -1;
    }
    return 0;
}
