/* amlfs_kernels.h: the one interface to the compute, CPU (kernels/cpu/) and CUDA
 * (kernels/cuda/). The maths is DESIGN.md section 1; shapes are in the comments.
 * Weights and activations are float32, theta and per-sample loss arithmetic float64.
 */
#ifndef AMLFS_KERNELS_H
#define AMLFS_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The searchable loss --------------------------------------------------------- */

typedef enum { AMLFS_SPACE_PROB = 0, AMLFS_SPACE_COSINE = 1 } amlfs_space;

/* The clamp floor of the transforms' outputs (DESIGN.md 1, precision). */
#define AMLFS_LOSS_EPS 1e-300

/* One loss of the search space.
 * theta (4M) = [a_t (M), b_t (M), a_tau (M), b_tau (M)], slopes and biases of t and tau.
 * prob space:   L = -log tau(t(p_y)); t on [0,1] clamped to [eps,1], tau on [0,1]
 *               clamped to [eps, inf).
 * cosine space: f'_y = s t(cos_y) (t on [-1,1], unclamped), f'_j = s cos_j;
 *               L = -log tau(softmax(f')_y), tau on [0,1] clamped to [eps, inf). */
/* An exact margin loss in place of the searched one (cosine space only; DESIGN.md 1's
 * classic losses as baselines, not their piecewise-linear fits): softmax cross-entropy
 * on f_j = s cos_j (j != y) and a target logit f_y = s u(cos_y) with
 *   CosFace:    u = cos - m                                  (m = 0.35)
 *   ArcFace:    u = cos(theta + m) where cos > cos(pi - m), else cos - m sin m
 *               (insightface's ArcMarginProduct with easy_margin off: th = cos(pi - m),
 *               mm = sin(pi - m) m, phi = where(cos > th, phi, cos - mm))   (m = 0.5)
 *   SphereFace: u = psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m]
 *               (m = 4), on a cosine head: the feature norm |x| of A-Softmax is replaced
 *               by the head's scale s, and without SphereFace's lambda annealing (the
 *               target logit is s psi alone from the first batch).
 * theta = acos(cos_y); a target cosine rounded past +-1 is taken at +-1. */
typedef enum {
    AMLFS_EXACT_NONE = 0, /* the searched loss of theta */
    AMLFS_EXACT_COSFACE = 1,
    AMLFS_EXACT_ARCFACE = 2,
    AMLFS_EXACT_SPHEREFACE = 3
} amlfs_exact_loss;

/* The default margins of the exact losses (margin = 0 in a spec). */
#define AMLFS_COSFACE_MARGIN 0.35
#define AMLFS_ARCFACE_MARGIN 0.5
#define AMLFS_SPHEREFACE_MARGIN 4

typedef struct {
    amlfs_space space;
    int intervals;       /* M >= 1 */
    const double *theta; /* 4M; unused (may be NULL) when exact != NONE */
    double scale;        /* s, cosine space only */
    amlfs_exact_loss exact; /* NONE (0): the searched loss; else that margin loss */
    double margin;          /* the exact loss's m; 0: its default (0.35, 0.5, 4) */
} amlfs_loss_spec;

/* phi(x; a, b) on [lo, hi] with M equal intervals: x clamped to [lo, hi],
 * k = min(floor((x-lo)/(hi-lo) M), M-1), value a_k x + b_k; *slope = a_k when x is
 * inside [lo, hi], 0 when the input clamp is active. slope may be NULL. */
double amlfs_pwl(const double *a, const double *b, int m, double lo, double hi, double x,
                 double *slope);

/* Forward and gradient of the searchable loss over a batch.
 * With spec->exact != NONE the loss is that exact margin loss with scale spec->scale
 * (cosine space only: in the prob space every output is NaN; so is it for a margin that
 * is not finite, or for SphereFace one that is not an integer in [1, 64]); the outputs
 * are the same: loss, the gradient with respect to the cosines, weight 1 (it is
 * cross-entropy on its logits), clamped 0.
 * in     (N,C) float32: logits (prob space) or cosines (cosine space)
 * y      (N)   int32, each in [0, C)
 * loss   (N)   float64 per-sample loss, or NULL
 * grad   (N,C) float32: d(mean loss)/d(in), assigned; or NULL
 * weight (N)   float64 -p_y dL/dp_y, the gradient weight relative to cross-entropy
 *              (1 at the identity; DESIGN.md 1's w is its negative), or NULL
 * clamped: number of samples for which a clamp was active, or NULL.
 * Returns the mean loss (+inf or NaN when a sample's loss is not finite). */
double amlfs_searchable_loss(const amlfs_loss_spec *spec, const float *in, const int32_t *y,
                             int n, int c, double *loss, float *grad, double *weight,
                             int *clamped);

/* The transform values at one point, for reports and fits: t(x) and tau(x) of theta. */
double amlfs_loss_t(const amlfs_loss_spec *spec, double x);
double amlfs_loss_tau(const amlfs_loss_spec *spec, double p);

/* ---- Classic losses (the search space's starting points and the baselines) -------- */

/* Softmax cross-entropy. logits (N,C), y (N); loss (N) or NULL; grad (N,C) of the mean,
 * assigned, or NULL. Returns the mean loss. */
double amlfs_softmax_ce(const float *logits, const int32_t *y, int n, int c, double *loss,
                        float *grad);

/* Focal loss (Lin et al.): -(1-p_y)^gamma log p_y. Same conventions as above. */
double amlfs_focal_loss(const float *logits, const int32_t *y, int n, int c, double gamma,
                        double *loss, float *grad);

/* Margin heads with their losses, from features and class weights:
 *   L-Softmax (Liu et al. 2016): f_y = |W_y||x| psi(theta_y), f_j = |W_j||x| cos theta_j;
 *   SphereFace (A-Softmax):     W normalised, f_y = |x| psi(theta_y), f_j = |x| cos theta_j;
 *   CosFace:  W and x normalised, f_y = s (cos theta_y - m), f_j = s cos theta_j;
 *   ArcFace:  W and x normalised, f_y = s cos(theta_y + m) where theta_y + m < pi, else
 *             s (cos theta_y - m sin m) (insightface's fallback), f_j = s cos theta_j;
 * psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m]; then softmax
 * cross-entropy on f. The paper defaults: L-Softmax m = 4, SphereFace m = 4,
 * CosFace m = 0.35 s = 64, ArcFace m = 0.5 s = 64 (amlfs_margin_default). */
typedef enum {
    AMLFS_MARGIN_LSOFTMAX = 0,
    AMLFS_MARGIN_SPHEREFACE = 1,
    AMLFS_MARGIN_COSFACE = 2,
    AMLFS_MARGIN_ARCFACE = 3
} amlfs_margin_kind;

typedef struct {
    amlfs_margin_kind kind;
    double m; /* margin: integer for L-Softmax and SphereFace */
    double s; /* scale, CosFace and ArcFace */
} amlfs_margin;

amlfs_margin amlfs_margin_default(amlfs_margin_kind kind);

/* x (N,D) features, w (C,D) class weights, y (N).
 * loss (N) or NULL; dx (N,D) and dw (C,D) gradients of the mean loss, assigned, or NULL.
 * Returns the mean loss. */
double amlfs_margin_loss(const amlfs_margin *mg, const float *x, const float *w,
                         const int32_t *y, int n, int d, int c, double *loss, float *dx,
                         float *dw);

/* ---- Fitting theta to a classic loss ---------------------------------------------- */

typedef enum {
    AMLFS_INIT_IDENTITY = 0,
    AMLFS_INIT_FOCAL = 1,     /* gamma = 2, either space */
    AMLFS_INIT_COSFACE = 2,   /* cosine space only, m = 0.35 */
    AMLFS_INIT_ARCFACE = 3,   /* cosine space only, m = 0.5 */
    AMLFS_INIT_SPHEREFACE = 4, /* cosine space only, m = 4 */
    AMLFS_INIT_GCE = 5         /* generalised cross-entropy, q = 0.7, either space */
} amlfs_init_kind;

#define AMLFS_FIT_GRID 10001 /* points per domain */

/* The transforms' target functions of a classic loss: t on its domain, tau on [0,1]. */
double amlfs_init_target_t(amlfs_init_kind init, amlfs_space space, double x);
double amlfs_init_target_tau(amlfs_init_kind init, amlfs_space space, double p);

/* Least-squares fit of theta (4M) to init in space, on AMLFS_FIT_GRID points per
 * domain (each interval fitted by its own line, as the biases are free).
 * Writes theta; *max_err the maximum absolute error of t and tau over the grid.
 * Returns 0, or -1 when init is not defined in that space (margins in prob space). */
int amlfs_fit_theta(amlfs_init_kind init, amlfs_space space, int m, double *theta,
                    double *max_err);

/* ---- The form of the transforms (DESIGN.md 1, the form) ---------------------------- */

/* free: theta is the draw, all 4M slopes and biases searched (the paper's).
 * anchored: each transform is continuous; the draw's searched coordinates are the M
 * slopes of t and of tau and the transforms' values at their domains' lower ends, held
 * in the first entry of each bias block: draw = [a_t (M), c_t, -, ..., a_tau (M),
 * c_tau, -, ...]; the other bias entries are not searched. In the prob space c_t is
 * fixed at 0; c_tau is max(0, draw); slopes below the floor are raised to it. */
typedef enum { AMLFS_FORM_FREE = 0, AMLFS_FORM_ANCHORED = 1 } amlfs_form;

#define AMLFS_SLOPE_FLOOR 0.05 /* the default floor of the anchored form's slopes */

/* Whether coordinate j (0..4M-1) of the draw is searched, i.e. has a sigma > 0 and takes
 * part in the update. */
int amlfs_form_searched(amlfs_form form, amlfs_space space, int m, int j);

/* 1 when coordinate j of the draw is an intercept (a bias in the free form, a
 * transform's lower-end value in the anchored form), 0 for a slope. */
int amlfs_form_is_intercept(int m, int j);

/* theta (4M), the slopes and biases every loss applies, from a draw (4M). free: a copy.
 * anchored: slopes max(draw, slope_floor), biases from continuity through the lower-end
 * values. Returns the number of slopes raised to the floor. */
int amlfs_form_theta(amlfs_form form, amlfs_space space, int m, const double *draw,
                     double slope_floor, double *theta);

/* Least-squares fit of a draw (4M) in a form to init (the free form: amlfs_fit_theta;
 * anchored: the continuous transforms' knot values on the same grid, with the form's
 * constraints on the lower-end values). *max_err is measured on the theta that
 * amlfs_form_theta makes of the draw (floor included). Returns 0, or -1 as above. */
int amlfs_fit_draw(amlfs_init_kind init, amlfs_space space, amlfs_form form, int m,
                   double slope_floor, double *draw, double *max_err);

#ifdef __cplusplus
}
#endif

#endif
