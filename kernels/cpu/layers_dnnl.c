/* layers_dnnl.c: the CPU backend (amlfs_layers.h, part 4): its device state and memory,
 * and convolution, batch norm, pooling and linear with oneDNN 2.x's C API (Debian's
 * libdnnl 2.6; the 3.x API differs). The element-wise entries are in layers_omp.c.
 *
 * Each plan creates its primitives once, with memory objects for the caller's tensors
 * (activations in the shape's layout: plain NCHW or native nChw16c / nChw8c; weights
 * OIHW / OI and vectors X, plain) whose data pointers are bound per call. Batch norm,
 * pooling and linear take the caller's layouts, so their tensors are used in place.
 * Convolution takes native activations in place too; for plain ones and for its weights
 * it lets oneDNN choose (format_tag_any: blocked layouts, nChw16c / OIhw16i16o, for its
 * direct kernels, several times faster than im2col + gemm on plain NCHW) and reorders
 * the caller's tensors into and out of buffers of its plan. A model that keeps its
 * activations native therefore converts only its small weights.
 *
 * oneDNN's backward-weights primitives assign their gradients; the interface
 * accumulates (+=), so each plan computes into its own scratch and adds, serially (the
 * parameter tensors are small), which keeps results reproducible.
 *
 * Threads: Debian's libdnnl is built with the OpenMP runtime (libgomp), so oneDNN runs
 * on omp_get_max_threads() threads of the calling thread; the context sets it once.
 * A failed primitive execution (not expected once its plan was created) is a bug or an
 * exhausted machine: the message goes to stderr and the process aborts.
 */
#include "amlfs_layers.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
} cpu_dev;

/* ---- Device state and memory ------------------------------------------------------ */

static void *cpu_context_create(amlfs_device device, int threads, char *err, size_t errlen)
{
    if (device.index != 0) {
        snprintf(err, errlen, "cpu:%d: the CPU device has index 0 only", device.index);
        return NULL;
    }
    cpu_dev *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (threads > 0) omp_set_num_threads(threads);
    dnnl_status_t st = dnnl_engine_create(&d->engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        snprintf(err, errlen, "oneDNN: cannot create the CPU engine and stream: %s",
                 dnnl_status2str(st));
        if (d->engine) dnnl_engine_destroy(d->engine);
        free(d);
        return NULL;
    }
    return d;
}

static void cpu_context_destroy(void *dev)
{
    cpu_dev *d = dev;
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->engine);
    free(d);
}

static void cpu_describe(void *dev, char *buf, size_t len)
{
    (void)dev;
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, len, "cpu: oneDNN %d.%d.%d, ISA %s, %d threads", v->major, v->minor, v->patch,
             dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), omp_get_max_threads());
}

static void *cpu_alloc(void *dev, size_t bytes)
{
    (void)dev;
    size_t rounded = (bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}

static void cpu_free(void *dev, void *ptr)
{
    (void)dev;
    free(ptr);
}

static void cpu_copy(void *dev, void *dst, const void *src, size_t bytes)
{
    (void)dev;
    memcpy(dst, src, bytes);
}

static void cpu_memzero(void *dev, void *ptr, size_t bytes)
{
    (void)dev;
    memset(ptr, 0, bytes);
}

static void cpu_wait(void *dev) { (void)dev; }

/* ---- oneDNN helpers --------------------------------------------------------------- */

/* On failure of a creation step: the message and a jump to the plan's cleanup. */
#define TRY(call, what)                                                                  \
    do {                                                                                 \
        dnnl_status_t st_ = (call);                                                      \
        if (st_ != dnnl_success) {                                                       \
            snprintf(err, errlen, "oneDNN: %s: %s", (what), dnnl_status2str(st_));        \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)

static dnnl_status_t md_plain(dnnl_memory_desc_t *md, int ndims, dnnl_dim_t d0, dnnl_dim_t d1,
                              dnnl_dim_t d2, dnnl_dim_t d3)
{
    dnnl_dims_t dims = {d0, d1, d2, d3};
    static const dnnl_format_tag_t tags[5] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                              dnnl_abcd};
    return dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tags[ndims]);
}

/* The native layout's channel block: 16 where oneDNN runs AVX-512 kernels, else 8
 * (its AVX2 and SSE4.1 kernels' block). Fixed at the first call: oneDNN's effective ISA
 * is (ONEDNN_MAX_CPU_ISA can lower it, before the first primitive). */
int amlfs_cpu_block(void)
{
    static int block;
    if (!block) {
        unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
        block = (isa & 0x7u) == 0x7u && (isa & 0x28u) ? 16 : 8; /* avx2 + an avx512 bit */
    }
    return block;
}

/* An (N,C,H,W) activation's descriptor in a layout (amlfs_layers.h): plain abcd, or
 * aBcd16b / aBcd8b (nChw16c / nChw8c). */
static dnnl_status_t md_act(dnnl_memory_desc_t *md, amlfs_layout layout, dnnl_dim_t n,
                            dnnl_dim_t c, dnnl_dim_t h, dnnl_dim_t w)
{
    if (layout == AMLFS_LAYOUT_PLAIN) return md_plain(md, 4, n, c, h, w);
    dnnl_dims_t dims = {n, c, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32,
                                        amlfs_cpu_block() == 16 ? dnnl_aBcd16b : dnnl_aBcd8b);
}

/* A primitive and, when pd_out is not NULL, its descriptor (kept as a hint for the
 * backward ones). */
static dnnl_status_t make_primitive(dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd_out,
                                    const void *op_desc, cpu_dev *d,
                                    const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, op_desc, NULL, d->engine, hint);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_create(prim, pd);
    if (st != dnnl_success || !pd_out)
        dnnl_primitive_desc_destroy(pd);
    else
        *pd_out = pd;
    return st;
}

/* A memory object of md with no data yet; bind() points it at the caller's tensor. */
static dnnl_status_t make_memory(dnnl_memory_t *mem, const dnnl_memory_desc_t *md, cpu_dev *d)
{
    return dnnl_memory_create(mem, md, d->engine, DNNL_MEMORY_NONE);
}

static void bind(dnnl_memory_t mem, const void *ptr)
{
    /* oneDNN takes void *; it writes only the outputs of a primitive */
    dnnl_status_t st = dnnl_memory_set_data_handle(mem, (void *)ptr);
    if (st != dnnl_success) {
        fprintf(stderr, "amlfs: oneDNN: cannot bind a tensor: %s\n", dnnl_status2str(st));
        abort();
    }
}

static void execute(cpu_dev *d, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                    const char *what)
{
    dnnl_status_t st = dnnl_primitive_execute(prim, d->stream, nargs, args);
    if (st == dnnl_success) st = dnnl_stream_wait(d->stream);
    if (st != dnnl_success) {
        fprintf(stderr, "amlfs: oneDNN %s failed: %s\n", what, dnnl_status2str(st));
        abort();
    }
}

static void destroy_primitives(dnnl_primitive_t *prims, int n)
{
    for (int i = 0; i < n; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
}

static void destroy_memories(dnnl_memory_t *mems, int n)
{
    for (int i = 0; i < n; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
}

/* dst += src, n floats; serial so the order never changes. */
static void accumulate(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static float *scratch_floats(size_t n) { return cpu_alloc(NULL, n * sizeof(float)); }

/* ---- Convolution ------------------------------------------------------------------ */

/* The primitives are created with format_tag_any for src, weights and dst (diff_src,
 * diff_weights, diff_dst), so oneDNN picks its direct kernels and their blocked layouts
 * (nChw16c, OIhw16i16o, ...) instead of im2col + gemm on plain NCHW. The caller's
 * tensors stay plain: each argument whose chosen layout differs from plain is reordered
 * into (or out of) a buffer the plan owns, with reorders made once, in the plan. Where
 * the chosen layout is plain the caller's tensor is used in place, as before. Nothing is
 * kept between calls: the backward reorders its inputs again. */

/* memory objects for the caller's plain tensors, one per argument role */
enum { CV_SRC, CV_WEI, CV_BIAS, CV_DST, CV_DSRC, CV_DWEI, CV_DBIAS, CV_DDST, CV_NMEM };
enum { CV_FWD, CV_BWD_DATA, CV_BWD_WEIGHTS, CV_NPRIM };
/* the arguments that may want a layout of their own: (primitive, role) */
enum { SL_F_SRC, SL_F_WEI, SL_F_DST, SL_D_DDST, SL_D_WEI, SL_D_DSRC, SL_W_DDST, SL_W_SRC,
       SL_W_DWEI, SL_N };

static const struct {
    int prim;          /* CV_FWD, ... */
    int mem;           /* the plain memory, CV_SRC, ... */
    dnnl_query_t query; /* its md in the primitive's descriptor */
    int out;           /* 1: the primitive writes it (reorder after), 0: reads (before) */
} conv_slots[SL_N] = {
    [SL_F_SRC] = {CV_FWD, CV_SRC, dnnl_query_src_md, 0},
    [SL_F_WEI] = {CV_FWD, CV_WEI, dnnl_query_weights_md, 0},
    [SL_F_DST] = {CV_FWD, CV_DST, dnnl_query_dst_md, 1},
    [SL_D_DDST] = {CV_BWD_DATA, CV_DDST, dnnl_query_diff_dst_md, 0},
    [SL_D_WEI] = {CV_BWD_DATA, CV_WEI, dnnl_query_weights_md, 0},
    [SL_D_DSRC] = {CV_BWD_DATA, CV_DSRC, dnnl_query_diff_src_md, 1},
    /* diff_dst before src, so that it finds the backward-data one to share */
    [SL_W_DDST] = {CV_BWD_WEIGHTS, CV_DDST, dnnl_query_diff_dst_md, 0},
    [SL_W_SRC] = {CV_BWD_WEIGHTS, CV_SRC, dnnl_query_src_md, 0},
    [SL_W_DWEI] = {CV_BWD_WEIGHTS, CV_DWEI, dnnl_query_diff_weights_md, 1},
};

typedef struct {
    cpu_dev *dev;
    amlfs_conv_shape s;
    dnnl_primitive_t prim[CV_NPRIM];
    dnnl_memory_t mem[CV_NMEM];      /* plain, bound to the caller's tensors per call */
    dnnl_primitive_t reorder[SL_N];  /* NULL where the primitive takes the plain layout */
    dnnl_memory_t inner[SL_N];       /* the blocked buffer of a slot (one of buf[]) */
    dnnl_memory_t buf[SL_N];         /* the buffers, owned; slots of different
                                        primitives with the same layout share one */
    unsigned buf_prims[SL_N];        /* which primitives use each buffer */
    int nbuf;
    float *dw_scratch, *dbias_scratch; /* (K,C,R,S), (K) */
} conv_plan;

static void cpu_conv_destroy(void *impl)
{
    conv_plan *p = impl;
    if (!p) return;
    destroy_primitives(p->prim, CV_NPRIM);
    destroy_primitives(p->reorder, SL_N);
    destroy_memories(p->buf, SL_N);
    destroy_memories(p->mem, CV_NMEM);
    free(p->dw_scratch);
    free(p->dbias_scratch);
    free(p);
}

static dnnl_status_t make_reorder(dnnl_primitive_t *prim, const dnnl_memory_desc_t *from,
                                  const dnnl_memory_desc_t *to, cpu_dev *d)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, NULL);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_create(prim, pd);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The slot's layout as its primitive chose it; when not plain, a buffer (shared with a
 * slot of another primitive that has the same layout, else new) and the reorder. */
static dnnl_status_t conv_slot_init(conv_plan *p, int slot, const_dnnl_primitive_desc_t pd,
                                    const dnnl_memory_desc_t *plain)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, conv_slots[slot].query, 0);
    if (!md) return dnnl_runtime_error;
    if (dnnl_memory_desc_equal(md, plain)) return dnnl_success;
    const unsigned prim_bit = 1u << conv_slots[slot].prim;
    for (int b = 0; b < p->nbuf && !p->inner[slot]; b++) {
        const dnnl_memory_desc_t *bmd = NULL;
        if (p->buf_prims[b] & prim_bit) continue;
        if (dnnl_memory_get_memory_desc(p->buf[b], &bmd) != dnnl_success) continue;
        if (dnnl_memory_desc_equal(md, bmd)) {
            p->inner[slot] = p->buf[b];
            p->buf_prims[b] |= prim_bit;
        }
    }
    dnnl_status_t st;
    if (!p->inner[slot]) {
        st = dnnl_memory_create(&p->buf[p->nbuf], md, p->dev->engine, DNNL_MEMORY_ALLOCATE);
        if (st != dnnl_success) return st;
        p->inner[slot] = p->buf[p->nbuf];
        p->buf_prims[p->nbuf++] = prim_bit;
    }
    if (conv_slots[slot].out) return make_reorder(&p->reorder[slot], md, plain, p->dev);
    return make_reorder(&p->reorder[slot], plain, md, p->dev);
}

static void *cpu_conv_create(void *dev, const amlfs_conv_shape *s, char *err, size_t errlen)
{
    cpu_dev *d = dev;
    dnnl_primitive_desc_t pds[CV_NPRIM] = {NULL, NULL, NULL};
    conv_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->dev = d;
    p->s = *s;
    const int oh = amlfs_conv_out_h(s), ow = amlfs_conv_out_w(s);
    dnnl_memory_desc_t src, wei, bias, dst, src_any, wei_any, dst_any;
    TRY(md_act(&src, s->in_layout, s->n, s->c, s->h, s->w), "convolution input layout");
    TRY(md_plain(&wei, 4, s->k, s->c, s->r, s->s), "convolution weight layout");
    TRY(md_plain(&bias, 1, s->k, 0, 0, 0), "convolution bias layout");
    TRY(md_act(&dst, s->out_layout, s->n, s->k, oh, ow), "convolution output layout");
    {
        dnnl_dims_t sd = {s->n, s->c, s->h, s->w}, wd = {s->k, s->c, s->r, s->s},
                    dd = {s->n, s->k, oh, ow};
        TRY(dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any),
            "convolution input layout");
        TRY(dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any),
            "convolution weight layout");
        TRY(dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any),
            "convolution output layout");
        /* a native activation is taken as it is: the primitives work on it in place */
        if (s->in_layout == AMLFS_LAYOUT_NATIVE) src_any = src;
        if (s->out_layout == AMLFS_LAYOUT_NATIVE) dst_any = dst;
    }
    /* Symmetric padding: oneDNN's output size (H + 2 pad - R) / stride + 1, rounded
     * down, is PyTorch's. */
    dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    const dnnl_memory_desc_t *bias_md = s->has_bias ? &bias : NULL;

    dnnl_convolution_desc_t fwd, bwd_data, bwd_weights;
    TRY(dnnl_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct,
                                           &src_any, &wei_any, bias_md, &dst_any, strides, pad,
                                           pad),
        "convolution forward");
    TRY(make_primitive(&p->prim[CV_FWD], &pds[CV_FWD], &fwd, d, NULL), "convolution forward");
    TRY(dnnl_convolution_backward_data_desc_init(&bwd_data, dnnl_convolution_direct, &src_any,
                                                 &wei_any, &dst_any, strides, pad, pad),
        "convolution backward data");
    TRY(make_primitive(&p->prim[CV_BWD_DATA], &pds[CV_BWD_DATA], &bwd_data, d, pds[CV_FWD]),
        "convolution backward data");
    TRY(dnnl_convolution_backward_weights_desc_init(&bwd_weights, dnnl_convolution_direct,
                                                    &src_any, &wei_any, bias_md, &dst_any,
                                                    strides, pad, pad),
        "convolution backward weights");
    TRY(make_primitive(&p->prim[CV_BWD_WEIGHTS], &pds[CV_BWD_WEIGHTS], &bwd_weights, d,
                       pds[CV_FWD]),
        "convolution backward weights");

    const dnnl_memory_desc_t *mds[CV_NMEM] = {&src, &wei, &bias, &dst, &src, &wei, &bias, &dst};
    for (int i = 0; i < CV_NMEM; i++) TRY(make_memory(&p->mem[i], mds[i], d), "convolution memory");
    for (int i = 0; i < SL_N; i++)
        TRY(conv_slot_init(p, i, pds[conv_slots[i].prim], mds[conv_slots[i].mem]),
            "convolution layout conversion");
    p->dw_scratch = scratch_floats((size_t)s->k * s->c * s->r * s->s);
    p->dbias_scratch = scratch_floats((size_t)s->k);
    if (!p->dw_scratch || !p->dbias_scratch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < CV_NPRIM; i++) dnnl_primitive_desc_destroy(pds[i]);
    return p;
fail:
    for (int i = 0; i < CV_NPRIM; i++)
        if (pds[i]) dnnl_primitive_desc_destroy(pds[i]);
    cpu_conv_destroy(p);
    return NULL;
}

static void conv_reorder(conv_plan *p, int slot)
{
    dnnl_memory_t plain = p->mem[conv_slots[slot].mem], inner = p->inner[slot];
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, conv_slots[slot].out ? inner : plain},
                               {DNNL_ARG_TO, conv_slots[slot].out ? plain : inner}};
    execute(p->dev, p->reorder[slot], 2, args, "convolution layout conversion");
}

/* The memory a primitive reads: the caller's tensor (bound already), converted first
 * where the primitive wants another layout. */
static dnnl_memory_t conv_input(conv_plan *p, int slot)
{
    if (!p->reorder[slot]) return p->mem[conv_slots[slot].mem];
    conv_reorder(p, slot);
    return p->inner[slot];
}

/* The memory a primitive writes; conv_output_done converts it to the caller's tensor. */
static dnnl_memory_t conv_output(conv_plan *p, int slot)
{
    return p->reorder[slot] ? p->inner[slot] : p->mem[conv_slots[slot].mem];
}

static void conv_output_done(conv_plan *p, int slot)
{
    if (p->reorder[slot]) conv_reorder(p, slot);
}

static void cpu_conv_forward(void *impl, float *out, const float *in, const float *w,
                             const float *bias)
{
    conv_plan *p = impl;
    bind(p->mem[CV_SRC], in);
    bind(p->mem[CV_WEI], w);
    bind(p->mem[CV_DST], out);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, conv_input(p, SL_F_SRC)},
                               {DNNL_ARG_WEIGHTS, conv_input(p, SL_F_WEI)},
                               {DNNL_ARG_DST, conv_output(p, SL_F_DST)},
                               {DNNL_ARG_BIAS, p->mem[CV_BIAS]}};
    int nargs = 3;
    if (p->s.has_bias) {
        bind(p->mem[CV_BIAS], bias);
        nargs = 4;
    }
    execute(p->dev, p->prim[CV_FWD], nargs, args, "convolution forward");
    conv_output_done(p, SL_F_DST);
}

static void cpu_conv_backward(void *impl, float *din, float *dw, float *dbias, const float *dout,
                              const float *in, const float *w)
{
    conv_plan *p = impl;
    const amlfs_conv_shape *s = &p->s;
    bind(p->mem[CV_DDST], dout);
    if (din) {
        bind(p->mem[CV_DSRC], din);
        bind(p->mem[CV_WEI], w);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, conv_output(p, SL_D_DSRC)},
                                   {DNNL_ARG_WEIGHTS, conv_input(p, SL_D_WEI)},
                                   {DNNL_ARG_DIFF_DST, conv_input(p, SL_D_DDST)}};
        execute(p->dev, p->prim[CV_BWD_DATA], 3, args, "convolution backward data");
        conv_output_done(p, SL_D_DSRC);
    }
    if (dw || (dbias && s->has_bias)) {
        bind(p->mem[CV_SRC], in);
        bind(p->mem[CV_DWEI], p->dw_scratch);
        bind(p->mem[CV_DBIAS], p->dbias_scratch);
        /* diff_dst in the backward-data layout is in its buffer already when the two
         * share it (backward data has only written diff_src's buffer since). */
        dnnl_memory_t ddst = din && p->reorder[SL_W_DDST] && p->inner[SL_W_DDST] == p->inner[SL_D_DDST]
                                 ? p->inner[SL_W_DDST]
                                 : conv_input(p, SL_W_DDST);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, conv_input(p, SL_W_SRC)},
                                   {DNNL_ARG_DIFF_DST, ddst},
                                   {DNNL_ARG_DIFF_WEIGHTS, conv_output(p, SL_W_DWEI)},
                                   {DNNL_ARG_DIFF_BIAS, p->mem[CV_DBIAS]}};
        execute(p->dev, p->prim[CV_BWD_WEIGHTS], s->has_bias ? 4 : 3, args,
                "convolution backward weights");
        if (dw) {
            conv_output_done(p, SL_W_DWEI);
            accumulate(dw, p->dw_scratch, (size_t)s->k * s->c * s->r * s->s);
        }
        if (dbias && s->has_bias) accumulate(dbias, p->dbias_scratch, (size_t)s->k);
    }
}

/* ---- Batch norm ------------------------------------------------------------------- */

enum { BN_SRC, BN_DST, BN_MEAN, BN_VAR, BN_SCALE, BN_SHIFT, BN_DSRC, BN_DDST, BN_DSCALE,
       BN_DSHIFT, BN_NMEM };
/* primitives: forward with batch statistics, forward with given (running) statistics,
 * and the backward of each */
enum { BN_FWD_TRAIN, BN_FWD_GLOBAL, BN_BWD_TRAIN, BN_BWD_GLOBAL, BN_NPRIM };

typedef struct {
    cpu_dev *dev;
    amlfs_bn_shape s;
    dnnl_primitive_t prim[BN_NPRIM];
    dnnl_memory_t mem[BN_NMEM];
    float *dscale_scratch, *dshift_scratch; /* (C) */
    float *unused_shift; /* (C) zeros: the backward wants a shift argument it never reads */
    float *din_scratch; /* (N,C,H,W), made on the first backward that needs no din */
    size_t data_floats; /* of an activation in the plan's layout */
} bn_plan;

static void cpu_bn_destroy(void *impl)
{
    bn_plan *p = impl;
    if (!p) return;
    destroy_primitives(p->prim, BN_NPRIM);
    destroy_memories(p->mem, BN_NMEM);
    free(p->dscale_scratch);
    free(p->dshift_scratch);
    free(p->unused_shift);
    free(p->din_scratch);
    free(p);
}

static void *cpu_bn_create(void *dev, const amlfs_bn_shape *s, char *err, size_t errlen)
{
    cpu_dev *d = dev;
    dnnl_primitive_desc_t train_pd = NULL, global_pd = NULL;
    bn_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->dev = d;
    p->s = *s;
    dnnl_memory_desc_t data, vec;
    TRY(md_act(&data, s->layout, s->n, s->c, s->h, s->w), "batch norm layout");
    p->data_floats = dnnl_memory_desc_get_size(&data) / sizeof(float);
    TRY(md_plain(&vec, 1, s->c, 0, 0, 0), "batch norm statistics layout");
    const unsigned affine = dnnl_use_scale | dnnl_use_shift;
    const unsigned global = affine | dnnl_use_global_stats;
    const float eps = (float)s->eps;
    dnnl_batch_normalization_desc_t desc;
    TRY(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_training, &data, eps, affine),
        "batch norm forward (training)");
    TRY(make_primitive(&p->prim[BN_FWD_TRAIN], &train_pd, &desc, d, NULL),
        "batch norm forward (training)");
    /* forward_training with global statistics: usable both for inference and as the
     * hint of the backward with constant statistics */
    TRY(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_training, &data, eps, global),
        "batch norm forward (inference)");
    TRY(make_primitive(&p->prim[BN_FWD_GLOBAL], &global_pd, &desc, d, NULL),
        "batch norm forward (inference)");
    TRY(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &data, &data, eps, affine),
        "batch norm backward (training)");
    TRY(make_primitive(&p->prim[BN_BWD_TRAIN], NULL, &desc, d, train_pd),
        "batch norm backward (training)");
    TRY(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &data, &data, eps, global),
        "batch norm backward (inference)");
    TRY(make_primitive(&p->prim[BN_BWD_GLOBAL], NULL, &desc, d, global_pd),
        "batch norm backward (inference)");

    for (int i = 0; i < BN_NMEM; i++) {
        int is_data = i == BN_SRC || i == BN_DST || i == BN_DSRC || i == BN_DDST;
        TRY(make_memory(&p->mem[i], is_data ? &data : &vec, d), "batch norm memory");
    }
    p->dscale_scratch = scratch_floats((size_t)s->c);
    p->dshift_scratch = scratch_floats((size_t)s->c);
    p->unused_shift = scratch_floats((size_t)s->c);
    if (!p->dscale_scratch || !p->dshift_scratch || !p->unused_shift) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    dnnl_primitive_desc_destroy(train_pd);
    dnnl_primitive_desc_destroy(global_pd);
    return p;
fail:
    if (train_pd) dnnl_primitive_desc_destroy(train_pd);
    if (global_pd) dnnl_primitive_desc_destroy(global_pd);
    cpu_bn_destroy(p);
    return NULL;
}

static void bn_bind_forward(bn_plan *p, float *out, const float *in, const float *gamma,
                            const float *beta, const float *mean, const float *var)
{
    bind(p->mem[BN_SRC], in);
    bind(p->mem[BN_DST], out);
    bind(p->mem[BN_SCALE], gamma);
    bind(p->mem[BN_SHIFT], beta);
    bind(p->mem[BN_MEAN], mean);
    bind(p->mem[BN_VAR], var);
}

static const int bn_forward_args[6] = {DNNL_ARG_SRC,  DNNL_ARG_DST,   DNNL_ARG_SCALE,
                                       DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
static const int bn_forward_mems[6] = {BN_SRC, BN_DST, BN_SCALE, BN_SHIFT, BN_MEAN, BN_VAR};

static void cpu_bn_forward_train(void *impl, float *out, float *save_mean, float *save_var,
                                 float *running_mean, float *running_var, const float *in,
                                 const float *gamma, const float *beta)
{
    bn_plan *p = impl;
    const amlfs_bn_shape *s = &p->s;
    bn_bind_forward(p, out, in, gamma, beta, save_mean, save_var);
    dnnl_exec_arg_t args[6];
    for (int i = 0; i < 6; i++) args[i] = (dnnl_exec_arg_t){bn_forward_args[i], p->mem[bn_forward_mems[i]]};
    execute(p->dev, p->prim[BN_FWD_TRAIN], 6, args, "batch norm forward (training)");
    /* The running statistics, as the reference: unbiased variance, in double. */
    const double m = (double)s->n * s->h * s->w, mom = s->momentum;
    for (int c = 0; c < s->c; c++) {
        double var = save_var[c], unbiased = m > 1.0 ? var * m / (m - 1.0) : var;
        running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * save_mean[c]);
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * unbiased);
    }
}

static void cpu_bn_forward_infer(void *impl, float *out, const float *in, const float *gamma,
                                 const float *beta, const float *running_mean,
                                 const float *running_var)
{
    bn_plan *p = impl;
    bn_bind_forward(p, out, in, gamma, beta, running_mean, running_var);
    dnnl_exec_arg_t args[6];
    for (int i = 0; i < 6; i++) args[i] = (dnnl_exec_arg_t){bn_forward_args[i], p->mem[bn_forward_mems[i]]};
    execute(p->dev, p->prim[BN_FWD_GLOBAL], 6, args, "batch norm forward (inference)");
}

static void bn_backward(bn_plan *p, int prim, float *din, float *dgamma, float *dbeta,
                        const float *dout, const float *in, const float *gamma, const float *mean,
                        const float *var)
{
    const amlfs_bn_shape *s = &p->s;
    if (!din) {
        /* oneDNN always writes the input gradient */
        if (!p->din_scratch) p->din_scratch = scratch_floats(p->data_floats);
        if (!p->din_scratch) {
            fprintf(stderr, "amlfs: batch norm backward: out of memory\n");
            abort();
        }
        din = p->din_scratch;
    }
    bind(p->mem[BN_SRC], in);
    bind(p->mem[BN_MEAN], mean);
    bind(p->mem[BN_VAR], var);
    bind(p->mem[BN_SCALE], gamma);
    bind(p->mem[BN_SHIFT], p->unused_shift);
    bind(p->mem[BN_DDST], dout);
    bind(p->mem[BN_DSRC], din);
    bind(p->mem[BN_DSCALE], p->dscale_scratch);
    bind(p->mem[BN_DSHIFT], p->dshift_scratch);
    dnnl_exec_arg_t args[9] = {
        {DNNL_ARG_SRC, p->mem[BN_SRC]},           {DNNL_ARG_MEAN, p->mem[BN_MEAN]},
        {DNNL_ARG_VARIANCE, p->mem[BN_VAR]},      {DNNL_ARG_SCALE, p->mem[BN_SCALE]},
        {DNNL_ARG_SHIFT, p->mem[BN_SHIFT]},       {DNNL_ARG_DIFF_DST, p->mem[BN_DDST]},
        {DNNL_ARG_DIFF_SRC, p->mem[BN_DSRC]},     {DNNL_ARG_DIFF_SCALE, p->mem[BN_DSCALE]},
        {DNNL_ARG_DIFF_SHIFT, p->mem[BN_DSHIFT]}};
    execute(p->dev, p->prim[prim], 9, args, "batch norm backward");
    if (dgamma) accumulate(dgamma, p->dscale_scratch, (size_t)s->c);
    if (dbeta) accumulate(dbeta, p->dshift_scratch, (size_t)s->c);
}

static void cpu_bn_backward_train(void *impl, float *din, float *dgamma, float *dbeta,
                                  const float *dout, const float *in, const float *gamma,
                                  const float *save_mean, const float *save_var)
{
    bn_backward(impl, BN_BWD_TRAIN, din, dgamma, dbeta, dout, in, gamma, save_mean, save_var);
}

static void cpu_bn_backward_infer(void *impl, float *din, float *dgamma, float *dbeta,
                                  const float *dout, const float *in, const float *gamma,
                                  const float *running_mean, const float *running_var)
{
    bn_backward(impl, BN_BWD_GLOBAL, din, dgamma, dbeta, dout, in, gamma, running_mean,
                running_var);
}

/* ---- Pooling ---------------------------------------------------------------------- */

enum { PL_SRC, PL_DST, PL_WS, PL_DSRC, PL_DDST, PL_NMEM };
enum { PL_FWD_TRAIN, PL_FWD_INFER, PL_BWD, PL_NPRIM };

typedef struct {
    cpu_dev *dev;
    amlfs_pool_shape s;
    dnnl_primitive_t prim[PL_NPRIM];
    dnnl_memory_t mem[PL_NMEM];
    size_t workspace_bytes; /* max pooling: where each maximum was; 0 for average */
} pool_plan;

static void cpu_pool_destroy(void *impl)
{
    pool_plan *p = impl;
    if (!p) return;
    destroy_primitives(p->prim, PL_NPRIM);
    destroy_memories(p->mem, PL_NMEM);
    free(p);
}

static void *cpu_pool_create(void *dev, const amlfs_pool_shape *s, char *err, size_t errlen)
{
    cpu_dev *d = dev;
    dnnl_primitive_desc_t train_pd = NULL;
    pool_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->dev = d;
    p->s = *s;
    dnnl_memory_desc_t src, dst, ws;
    memset(&ws, 0, sizeof ws);
    TRY(md_act(&src, s->layout, s->n, s->c, s->h, s->w), "pooling input layout");
    TRY(md_act(&dst, s->layout, s->n, s->c, amlfs_pool_out_h(s), amlfs_pool_out_w(s)),
        "pooling output layout");
    dnnl_alg_kind_t alg = s->kind == AMLFS_POOL_MAX ? dnnl_pooling_max
                          : s->count_include_pad    ? dnnl_pooling_avg_include_padding
                                                    : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t strides = {s->stride, s->stride}, kernel = {s->kernel, s->kernel},
                pad = {s->pad, s->pad};
    dnnl_pooling_desc_t desc;
    TRY(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_training, alg, &src, &dst, strides,
                                       kernel, pad, pad),
        "pooling forward (training)");
    TRY(make_primitive(&p->prim[PL_FWD_TRAIN], &train_pd, &desc, d, NULL),
        "pooling forward (training)");
    const dnnl_memory_desc_t *ws_md = dnnl_primitive_desc_query_md(train_pd, dnnl_query_workspace_md, 0);
    if (ws_md) {
        ws = *ws_md;
        p->workspace_bytes = dnnl_memory_desc_get_size(&ws);
    }
    TRY(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, alg, &src, &dst, strides,
                                       kernel, pad, pad),
        "pooling forward (inference)");
    TRY(make_primitive(&p->prim[PL_FWD_INFER], NULL, &desc, d, NULL), "pooling forward (inference)");
    TRY(dnnl_pooling_backward_desc_init(&desc, alg, &src, &dst, strides, kernel, pad, pad),
        "pooling backward");
    TRY(make_primitive(&p->prim[PL_BWD], NULL, &desc, d, train_pd), "pooling backward");

    const dnnl_memory_desc_t *mds[PL_NMEM] = {&src, &dst, &ws, &src, &dst};
    for (int i = 0; i < PL_NMEM; i++) {
        if (i == PL_WS && !p->workspace_bytes) continue;
        TRY(make_memory(&p->mem[i], mds[i], d), "pooling memory");
    }
    dnnl_primitive_desc_destroy(train_pd);
    return p;
fail:
    if (train_pd) dnnl_primitive_desc_destroy(train_pd);
    cpu_pool_destroy(p);
    return NULL;
}

static size_t cpu_pool_workspace_bytes(const void *impl)
{
    return ((const pool_plan *)impl)->workspace_bytes;
}

static void cpu_pool_forward(void *impl, float *out, const float *in, void *workspace)
{
    pool_plan *p = impl;
    bind(p->mem[PL_SRC], in);
    bind(p->mem[PL_DST], out);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->mem[PL_SRC]},
                               {DNNL_ARG_DST, p->mem[PL_DST]},
                               {DNNL_ARG_WORKSPACE, p->mem[PL_WS]}};
    if (p->workspace_bytes && workspace) {
        bind(p->mem[PL_WS], workspace);
        execute(p->dev, p->prim[PL_FWD_TRAIN], 3, args, "pooling forward (training)");
    } else {
        execute(p->dev, p->prim[PL_FWD_INFER], 2, args, "pooling forward (inference)");
    }
}

static void cpu_pool_backward(void *impl, float *din, const float *dout, const float *in,
                              const float *out, const void *workspace)
{
    pool_plan *p = impl;
    (void)in; /* oneDNN's max pooling reads the workspace instead */
    (void)out;
    bind(p->mem[PL_DSRC], din);
    bind(p->mem[PL_DDST], dout);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, p->mem[PL_DSRC]},
                               {DNNL_ARG_DIFF_DST, p->mem[PL_DDST]},
                               {DNNL_ARG_WORKSPACE, p->mem[PL_WS]}};
    int nargs = 2;
    if (p->workspace_bytes) {
        if (!workspace) {
            fprintf(stderr, "amlfs: max pooling backward without the forward's workspace\n");
            abort();
        }
        bind(p->mem[PL_WS], workspace);
        nargs = 3;
    }
    execute(p->dev, p->prim[PL_BWD], nargs, args, "pooling backward");
}

/* ---- Linear (inner product) ------------------------------------------------------- */

enum { IP_SRC, IP_WEI, IP_BIAS, IP_DST, IP_DSRC, IP_DWEI, IP_DBIAS, IP_DDST, IP_NMEM };

typedef struct {
    cpu_dev *dev;
    amlfs_linear_shape s;
    dnnl_primitive_t prim[3]; /* forward, backward data, backward weights */
    dnnl_memory_t mem[IP_NMEM];
    float *dw_scratch, *dbias_scratch; /* (OUT,IN), (OUT) */
} linear_plan;

static void cpu_linear_destroy(void *impl)
{
    linear_plan *p = impl;
    if (!p) return;
    destroy_primitives(p->prim, 3);
    destroy_memories(p->mem, IP_NMEM);
    free(p->dw_scratch);
    free(p->dbias_scratch);
    free(p);
}

static void *cpu_linear_create(void *dev, const amlfs_linear_shape *s, char *err, size_t errlen)
{
    cpu_dev *d = dev;
    dnnl_primitive_desc_t fwd_pd = NULL;
    linear_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->dev = d;
    p->s = *s;
    dnnl_memory_desc_t src, wei, bias, dst;
    TRY(md_plain(&src, 2, s->n, s->in, 0, 0), "linear input layout");
    TRY(md_plain(&wei, 2, s->out, s->in, 0, 0), "linear weight layout");
    TRY(md_plain(&bias, 1, s->out, 0, 0, 0), "linear bias layout");
    TRY(md_plain(&dst, 2, s->n, s->out, 0, 0), "linear output layout");
    const dnnl_memory_desc_t *bias_md = s->has_bias ? &bias : NULL;
    dnnl_inner_product_desc_t desc;
    TRY(dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_training, &src, &wei, bias_md, &dst),
        "linear forward");
    TRY(make_primitive(&p->prim[0], &fwd_pd, &desc, d, NULL), "linear forward");
    TRY(dnnl_inner_product_backward_data_desc_init(&desc, &src, &wei, &dst), "linear backward data");
    TRY(make_primitive(&p->prim[1], NULL, &desc, d, fwd_pd), "linear backward data");
    TRY(dnnl_inner_product_backward_weights_desc_init(&desc, &src, &wei, bias_md, &dst),
        "linear backward weights");
    TRY(make_primitive(&p->prim[2], NULL, &desc, d, fwd_pd), "linear backward weights");

    const dnnl_memory_desc_t *mds[IP_NMEM] = {&src, &wei, &bias, &dst, &src, &wei, &bias, &dst};
    for (int i = 0; i < IP_NMEM; i++) TRY(make_memory(&p->mem[i], mds[i], d), "linear memory");
    p->dw_scratch = scratch_floats((size_t)s->out * s->in);
    p->dbias_scratch = scratch_floats((size_t)s->out);
    if (!p->dw_scratch || !p->dbias_scratch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    dnnl_primitive_desc_destroy(fwd_pd);
    return p;
fail:
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    cpu_linear_destroy(p);
    return NULL;
}

static void cpu_linear_forward(void *impl, float *out, const float *in, const float *w,
                               const float *bias)
{
    linear_plan *p = impl;
    bind(p->mem[IP_SRC], in);
    bind(p->mem[IP_WEI], w);
    bind(p->mem[IP_DST], out);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->mem[IP_SRC]},
                               {DNNL_ARG_WEIGHTS, p->mem[IP_WEI]},
                               {DNNL_ARG_DST, p->mem[IP_DST]},
                               {DNNL_ARG_BIAS, p->mem[IP_BIAS]}};
    int nargs = 3;
    if (p->s.has_bias) {
        bind(p->mem[IP_BIAS], bias);
        nargs = 4;
    }
    execute(p->dev, p->prim[0], nargs, args, "linear forward");
}

static void cpu_linear_backward(void *impl, float *din, float *dw, float *dbias,
                                const float *dout, const float *in, const float *w)
{
    linear_plan *p = impl;
    const amlfs_linear_shape *s = &p->s;
    bind(p->mem[IP_DDST], dout);
    if (din) {
        bind(p->mem[IP_DSRC], din);
        bind(p->mem[IP_WEI], w);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, p->mem[IP_DSRC]},
                                   {DNNL_ARG_WEIGHTS, p->mem[IP_WEI]},
                                   {DNNL_ARG_DIFF_DST, p->mem[IP_DDST]}};
        execute(p->dev, p->prim[1], 3, args, "linear backward data");
    }
    if (dw || (dbias && s->has_bias)) {
        bind(p->mem[IP_SRC], in);
        bind(p->mem[IP_DWEI], p->dw_scratch);
        bind(p->mem[IP_DBIAS], p->dbias_scratch);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->mem[IP_SRC]},
                                   {DNNL_ARG_DIFF_DST, p->mem[IP_DDST]},
                                   {DNNL_ARG_DIFF_WEIGHTS, p->mem[IP_DWEI]},
                                   {DNNL_ARG_DIFF_BIAS, p->mem[IP_DBIAS]}};
        execute(p->dev, p->prim[2], s->has_bias ? 4 : 3, args, "linear backward weights");
        if (dw) accumulate(dw, p->dw_scratch, (size_t)s->out * s->in);
        if (dbias && s->has_bias) accumulate(dbias, p->dbias_scratch, (size_t)s->out);
    }
}

/* ---- The cosine head -------------------------------------------------------------- */

/* cos = u v^T on the normalised rows u = x / |x|, v = w / |w| (layers_omp.c), with a
 * linear plan without bias; the backward recomputes u and v, takes du = dout v and
 * dv = dout^T u from the linear plan's backward and projects them (rows_project). */
typedef struct {
    amlfs_cosine_shape s;
    linear_plan *lin;
    float *u, *v, *nx, *nw, *du, *dv; /* (N,IN), (OUT,IN), (N), (OUT), (N,IN), (OUT,IN) */
} cosine_plan;

static void cpu_cosine_destroy(void *impl)
{
    cosine_plan *p = impl;
    if (!p) return;
    cpu_linear_destroy(p->lin);
    free(p->u), free(p->v), free(p->nx), free(p->nw), free(p->du), free(p->dv);
    free(p);
}

static void *cpu_cosine_create(void *dev, const amlfs_cosine_shape *s, char *err, size_t errlen)
{
    cosine_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->s = *s;
    amlfs_linear_shape ls = {s->n, s->in, s->out, 0};
    p->lin = cpu_linear_create(dev, &ls, err, errlen);
    if (!p->lin) {
        free(p);
        return NULL;
    }
    const size_t nd = (size_t)s->n * s->in, cd = (size_t)s->out * s->in;
    p->u = scratch_floats(nd);
    p->v = scratch_floats(cd);
    p->nx = scratch_floats((size_t)s->n);
    p->nw = scratch_floats((size_t)s->out);
    p->du = scratch_floats(nd);
    p->dv = scratch_floats(cd);
    if (!p->u || !p->v || !p->nx || !p->nw || !p->du || !p->dv) {
        snprintf(err, errlen, "out of memory");
        cpu_cosine_destroy(p);
        return NULL;
    }
    return p;
}

static void cpu_cosine_forward(void *impl, float *out, const float *x, const float *w)
{
    cosine_plan *p = impl;
    const amlfs_cosine_shape *s = &p->s;
    amlfs_cpu_rows_normalize(p->u, p->nx, x, s->n, s->in);
    amlfs_cpu_rows_normalize(p->v, p->nw, w, s->out, s->in);
    cpu_linear_forward(p->lin, out, p->u, p->v, NULL);
}

static void cpu_cosine_backward(void *impl, float *dx, float *dw, const float *dout,
                                const float *x, const float *w)
{
    cosine_plan *p = impl;
    const amlfs_cosine_shape *s = &p->s;
    if (!dx && !dw) return;
    amlfs_cpu_rows_normalize(p->u, p->nx, x, s->n, s->in);
    amlfs_cpu_rows_normalize(p->v, p->nw, w, s->out, s->in);
    if (dw) memset(p->dv, 0, (size_t)s->out * s->in * sizeof *p->dv);
    cpu_linear_backward(p->lin, dx ? p->du : NULL, dw ? p->dv : NULL, NULL, dout, p->u, p->v);
    if (dx) amlfs_cpu_rows_project(dx, p->du, p->u, p->nx, s->n, s->in, 0);
    if (dw) amlfs_cpu_rows_project(dw, p->dv, p->v, p->nw, s->out, s->in, 1);
}

/* ---- The table -------------------------------------------------------------------- */

static const amlfs_backend cpu_backend = {
    .name = "cpu",
    .context_create = cpu_context_create,
    .context_destroy = cpu_context_destroy,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .memzero = cpu_memzero,
    .wait = cpu_wait,
    .act_floats = amlfs_cpu_act_floats,
    .act_convert = amlfs_cpu_act_convert,
    .conv_create = cpu_conv_create,
    .conv_destroy = cpu_conv_destroy,
    .conv_forward = cpu_conv_forward,
    .conv_backward = cpu_conv_backward,
    .bn_create = cpu_bn_create,
    .bn_destroy = cpu_bn_destroy,
    .bn_forward_train = cpu_bn_forward_train,
    .bn_forward_infer = cpu_bn_forward_infer,
    .bn_backward_train = cpu_bn_backward_train,
    .bn_backward_infer = cpu_bn_backward_infer,
    .pool_create = cpu_pool_create,
    .pool_destroy = cpu_pool_destroy,
    .pool_workspace_bytes = cpu_pool_workspace_bytes,
    .pool_forward = cpu_pool_forward,
    .pool_backward = cpu_pool_backward,
    .linear_create = cpu_linear_create,
    .linear_destroy = cpu_linear_destroy,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .cosine_create = cpu_cosine_create,
    .cosine_destroy = cpu_cosine_destroy,
    .cosine_forward = cpu_cosine_forward,
    .cosine_backward = cpu_cosine_backward,
    .prelu_forward = amlfs_cpu_prelu_forward,
    .prelu_backward = amlfs_cpu_prelu_backward,
    .relu_forward = amlfs_cpu_relu_forward,
    .relu_backward = amlfs_cpu_relu_backward,
    .add_forward = amlfs_cpu_add_forward,
    .add_backward = amlfs_cpu_add_backward,
    .global_avgpool_forward = amlfs_cpu_global_avgpool_forward,
    .global_avgpool_backward = amlfs_cpu_global_avgpool_backward,
    .shortcut_forward = amlfs_cpu_shortcut_forward,
    .shortcut_backward = amlfs_cpu_shortcut_backward,
    .sgd_step = amlfs_cpu_sgd_step,
};

const amlfs_backend *amlfs_cpu_backend(void) { return &cpu_backend; }
