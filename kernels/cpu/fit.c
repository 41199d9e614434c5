/* fit.c: theta fitted to a classic loss (DESIGN.md 1, `--init`), by least squares of
 * the transforms' values on a grid of AMLFS_FIT_GRID points per domain.
 *
 * The biases are free per interval, so the least-squares problem separates: each
 * interval gets the line through its own grid points. A grid point belongs to the
 * interval amlfs_pwl would evaluate it in (the same k formula), so the fitted theta
 * reproduces, at every grid point, the line fitted there; the reported error is
 * measured through amlfs_pwl itself.
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
