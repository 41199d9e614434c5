/* fit.c: theta fitted to a classic loss (DESIGN.md 1, `--init`), by least squares of
 * the transforms' values on a grid of AMLFS_FIT_GRID points per domain.
 *
 * The biases are free per interval, so the least-squares problem separates: each
 * interval gets the line through its own grid points. A grid point belongs to the
 * interval amlfs_pwl would evaluate it in (the same k formula), so the fitted theta
 * reproduces, at every grid point, the line fitted there; the reported error is
 * measured through amlfs_pwl itself.
 *
 * The anchored form (DESIGN.md 1) is continuous: its transform is fixed by its values
 * v_0..v_M at the knots xi_k = lo + k h, and on interval k, with s = (x - xi_k)/h,
 * phi(x) = (1-s) v_k + s v_{k+1}. The least-squares problem in v is then tridiagonal
 * (hat functions overlap their neighbours only) and is solved directly; the slopes are
 * (v_{k+1} - v_k)/h and the lower-end value is v_0, held fixed where the form fixes it
 * (t's value at 0 in the prob space) and constrained to >= 0 for tau (a negative one is
 * refitted at 0).
 */
#include "amlfs_kernels.h"

#include <math.h>
#include <stdlib.h>

#define PI 3.14159265358979323846

/* The classic margins (DESIGN.md 1): CosFace m, ArcFace m, SphereFace integer m. */
#define COSFACE_MARGIN 0.35
#define ARCFACE_MARGIN 0.5
#define SPHEREFACE_MARGIN 4
#define FOCAL_GAMMA 2.0
#define GCE_Q 0.7 /* generalised cross-entropy (Zhang and Sabuncu 2018) */

static int is_margin(amlfs_init_kind init)
{
    return init == AMLFS_INIT_COSFACE || init == AMLFS_INIT_ARCFACE ||
           init == AMLFS_INIT_SPHEREFACE;
}

/* SphereFace's monotone psi(theta) = (-1)^k cos(m theta) - 2k on
 * [k pi/m, (k+1) pi/m], as a function of c = cos theta; theta = pi belongs to the last
 * piece k = m-1. */
static double sphereface_psi(double c)
{
    double theta = acos(c);
    int k = (int)floor(theta * SPHEREFACE_MARGIN / PI);
    if (k > SPHEREFACE_MARGIN - 1)
        k = SPHEREFACE_MARGIN - 1;
    double sign = (k % 2) ? -1.0 : 1.0;
    return sign * cos(SPHEREFACE_MARGIN * theta) - 2.0 * k;
}

double amlfs_init_target_t(amlfs_init_kind init, amlfs_space space, double x)
{
    if (space != AMLFS_SPACE_COSINE && is_margin(init))
        return NAN;
    double lo = space == AMLFS_SPACE_COSINE ? -1.0 : 0.0;
    x = x < lo ? lo : (x > 1.0 ? 1.0 : x); /* the domain, as the transform clamps it */
    switch (init) {
    case AMLFS_INIT_IDENTITY:
    case AMLFS_INIT_FOCAL:
    case AMLFS_INIT_GCE:
        return x;
    case AMLFS_INIT_COSFACE:
        return x - COSFACE_MARGIN;
    case AMLFS_INIT_ARCFACE:
        return cos(acos(x) + ARCFACE_MARGIN);
    case AMLFS_INIT_SPHEREFACE:
        return sphereface_psi(x);
    }
    return NAN;
}

double amlfs_init_target_tau(amlfs_init_kind init, amlfs_space space, double p)
{
    if (space != AMLFS_SPACE_COSINE && is_margin(init))
        return NAN;
    p = p < 0.0 ? 0.0 : (p > 1.0 ? 1.0 : p);
    if (init == AMLFS_INIT_FOCAL)
        return pow(p, pow(1.0 - p, FOCAL_GAMMA)); /* -log of it is the focal loss */
    if (init == AMLFS_INIT_GCE)
        return exp((pow(p, GCE_Q) - 1.0) / GCE_Q); /* -log of it is (1 - p^q)/q */
    return p;
}

/* Grid point i of [lo, hi]: x_i = lo + i (hi - lo) / (G - 1). */
static double grid_point(double lo, double hi, int i)
{
    return lo + i * (hi - lo) / (AMLFS_FIT_GRID - 1);
}

/* The interval amlfs_pwl evaluates x in (x on the grid, so inside [lo, hi]). */
static int grid_interval(int m, double lo, double hi, double x)
{
    int k = (int)((x - lo) / (hi - lo) * m);
    return k < m - 1 ? k : m - 1;
}

/* Least-squares lines per interval of [lo, hi] through target(x) on the grid.
 * a, b (M) receive slopes and biases; sums (4M) is scratch. An interval holding one
 * grid point gets the constant through it; none (only when M > G - 1) the identity. */
static void fit_lines(amlfs_init_kind init, amlfs_space space, int is_tau, double lo,
                      double hi, int m, double *a, double *b, double *sums)
{
    double *count = sums, *mean_x = sums + m, *sxx = sums + 2 * m, *sxy = sums + 3 * m;
    double *mean_y = b; /* b holds the mean of the targets until the line is known */
    for (int k = 0; k < 4 * m; k++)
        sums[k] = 0.0;
    for (int k = 0; k < m; k++)
        mean_y[k] = 0.0;

    /* Two passes, means then centred moments, so a short interval far from 0 keeps
     * its slope's precision. */
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_point(lo, hi, i);
        double y = is_tau ? amlfs_init_target_tau(init, space, x)
                          : amlfs_init_target_t(init, space, x);
        int k = grid_interval(m, lo, hi, x);
        count[k] += 1.0;
        mean_x[k] += x;
        mean_y[k] += y;
    }
    for (int k = 0; k < m; k++) {
        if (count[k] > 0.0) {
            mean_x[k] /= count[k];
            mean_y[k] /= count[k];
        }
    }
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_point(lo, hi, i);
        double y = is_tau ? amlfs_init_target_tau(init, space, x)
                          : amlfs_init_target_t(init, space, x);
        int k = grid_interval(m, lo, hi, x);
        double dx = x - mean_x[k];
        sxx[k] += dx * dx;
        sxy[k] += dx * (y - mean_y[k]);
    }
    for (int k = 0; k < m; k++) {
        if (count[k] >= 2.0 && sxx[k] > 0.0) {
            a[k] = sxy[k] / sxx[k];
            b[k] = mean_y[k] - a[k] * mean_x[k];
        } else if (count[k] >= 1.0) {
            a[k] = 0.0; /* b[k] is already the single target value */
        } else {
            a[k] = 1.0;
            b[k] = 0.0;
        }
    }
}

/* The maximum absolute error over the grid of the fitted transform (a, b) against the
 * target, evaluated through amlfs_pwl. */
static double fit_error(amlfs_init_kind init, amlfs_space space, int is_tau, double lo,
                        double hi, int m, const double *a, const double *b)
{
    double worst = 0.0;
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_point(lo, hi, i);
        double y = is_tau ? amlfs_init_target_tau(init, space, x)
                          : amlfs_init_target_t(init, space, x);
        double err = fabs(amlfs_pwl(a, b, m, lo, hi, x, NULL) - y);
        if (isnan(err) || err > worst) /* a NaN stays: it is never > NaN */
            worst = err;
    }
    return worst;
}

int amlfs_fit_theta(amlfs_init_kind init, amlfs_space space, int m, double *theta,
                    double *max_err)
{
    if (m < 1 || (space != AMLFS_SPACE_COSINE && is_margin(init)))
        return -1;
    double *sums = malloc(4 * (size_t)m * sizeof *sums);
    if (!sums)
        return -1;
    double t_lo = space == AMLFS_SPACE_COSINE ? -1.0 : 0.0;
    double *a_t = theta, *b_t = theta + m, *a_tau = theta + 2 * m, *b_tau = theta + 3 * m;
    fit_lines(init, space, 0, t_lo, 1.0, m, a_t, b_t, sums);
    fit_lines(init, space, 1, 0.0, 1.0, m, a_tau, b_tau, sums);
    free(sums);
    if (max_err) {
        double err_t = fit_error(init, space, 0, t_lo, 1.0, m, a_t, b_t);
        double err_tau = fit_error(init, space, 1, 0.0, 1.0, m, a_tau, b_tau);
        *max_err = err_t > err_tau ? err_t : err_tau;
    }
    return 0;
}

/* ---- the anchored form ------------------------------------------------------------ */

/* The knot values v (M+1) of the continuous least-squares fit on [lo, hi]. v0_mode:
 * 0 free, 1 fixed at 0, 2 constrained to >= 0. scratch (4(M+1)). */
static void fit_knots(amlfs_init_kind init, amlfs_space space, int is_tau, double lo,
                      double hi, int m, int v0_mode, double *v, double *scratch)
{
    int n = m + 1;
    double *diag = scratch, *off = scratch + n, *rhs = scratch + 2 * n, *cp = scratch + 3 * n;
    for (int k = 0; k < n; k++)
        diag[k] = off[k] = rhs[k] = 0.0;
    double h = (hi - lo) / m;
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_point(lo, hi, i);
        double y = is_tau ? amlfs_init_target_tau(init, space, x)
                          : amlfs_init_target_t(init, space, x);
        int k = grid_interval(m, lo, hi, x);
        double s = (x - (lo + k * h)) / h;
        diag[k] += (1.0 - s) * (1.0 - s);
        off[k] += s * (1.0 - s);
        diag[k + 1] += s * s;
        rhs[k] += (1.0 - s) * y;
        rhs[k + 1] += s * y;
    }
    for (int pass = 0; pass < 2; pass++) {
        /* Thomas's algorithm over v_first..v_M (the matrix is symmetric positive
         * definite: every interval holds grid points) */
        int first = v0_mode == 1 ? 1 : 0;
        if (first)
            v[0] = 0.0;
        double prev_c = 0.0, prev_d = 0.0;
        for (int k = first; k < n; k++) {
            double sub = k > first ? off[k - 1] : 0.0;
            double den = diag[k] - sub * prev_c;
            double c = k < n - 1 ? off[k] / den : 0.0;
            double d = (rhs[k] - sub * prev_d) / den;
            cp[k] = c;
            v[k] = d;
            prev_c = c;
            prev_d = d;
        }
        for (int k = n - 2; k >= first; k--)
            v[k] -= cp[k] * v[k + 1];
        if (v0_mode == 2 && v[0] < 0.0) {
            v0_mode = 1; /* refit with the lower end at 0 */
            continue;
        }
        break;
    }
}

/* The error of a theta (4M) against init's targets, through amlfs_pwl. */
static double theta_error(amlfs_init_kind init, amlfs_space space, int m, const double *theta)
{
    double t_lo = space == AMLFS_SPACE_COSINE ? -1.0 : 0.0;
    double err_t = fit_error(init, space, 0, t_lo, 1.0, m, theta, theta + m);
    double err_tau = fit_error(init, space, 1, 0.0, 1.0, m, theta + 2 * m, theta + 3 * m);
    return err_t > err_tau || isnan(err_t) ? err_t : err_tau;
}

int amlfs_fit_draw(amlfs_init_kind init, amlfs_space space, amlfs_form form, int m,
                   double slope_floor, double *draw, double *max_err)
{
    if (form == AMLFS_FORM_FREE)
        return amlfs_fit_theta(init, space, m, draw, max_err);
    if (m < 1 || (space != AMLFS_SPACE_COSINE && is_margin(init)))
        return -1;
    double *scratch = malloc((5 * (size_t)(m + 1) + 4 * (size_t)m) * sizeof *scratch);
    if (!scratch)
        return -1;
    double *v = scratch + 4 * (size_t)(m + 1), *theta = v + m + 1;
    int cosine = space == AMLFS_SPACE_COSINE;
    double t_lo = cosine ? -1.0 : 0.0;
    for (int j = 0; j < 4 * m; j++)
        draw[j] = 0.0; /* the unsearched bias entries */
    for (int which = 0; which < 2 && init == AMLFS_INIT_IDENTITY; which++) {
        /* exact: slopes 1, t(lo) = lo, tau(0) = 0 (the least squares would round) */
        for (int k = 0; k < m; k++)
            draw[2 * m * which + k] = 1.0;
        draw[2 * m * which + m] = which ? 0.0 : t_lo;
    }
    for (int which = 0; which < 2 && init != AMLFS_INIT_IDENTITY; which++) {
        double lo = which ? 0.0 : t_lo;
        int v0_mode = which ? 2 : (cosine ? 0 : 1);
        fit_knots(init, space, which, lo, 1.0, m, v0_mode, v, scratch);
        double h = (1.0 - lo) / m;
        double *a = draw + 2 * m * which;
        for (int k = 0; k < m; k++)
            a[k] = (v[k + 1] - v[k]) / h;
        a[m] = v[0];
    }
    if (max_err) {
        amlfs_form_theta(form, space, m, draw, slope_floor, theta);
        *max_err = theta_error(init, space, m, theta);
    }
    free(scratch);
    return 0;
}
