/* test_fit.c: theta fitted to the classic losses (kernels/cpu/fit.c, DESIGN.md 1 --init):
 * the target functions at known points, the identity fit exact, the least-squares
 * property of each interval's line, the reported maximum error, and bounds on that error
 * for focal, CosFace, ArcFace and SphereFace at M = 6 (measured figures below). */
#include "amlfs_kernels.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define M 6
#define PI 3.14159265358979323846

/* Maximum absolute errors measured at M = 6 on the grid of 10,001 points per domain
 * (the targets of DESIGN.md 1; tau is the identity for the margins, t for focal):
 *   identity   either space   t 0          tau 0        (exact: a = 1, b = 0)
 *   focal      either space   t 0          tau 0.01653  (p^((1-p)^2), steepest near 0)
 *   CosFace    cosine         t 2.2e-16    tau 0        (a line: exact to rounding)
 *   ArcFace    cosine         t 0.1083     tau 0        (cos(arccos c + 0.5): arccos is
 *                                                        steepest at c = -1)
 *   SphereFace cosine         t 0.5191     tau 0        (psi spans [-7, 1])
 * The bounds sit a little above them, so a change that makes a fit worse fails here. */
#define BOUND_FOCAL_TAU 0.0170
#define BOUND_COSFACE_T 1e-14
#define BOUND_ARCFACE_T 0.110
#define BOUND_SPHEREFACE_T 0.525

static double grid_x(double lo, double hi, int i)
{
    return lo + i * (hi - lo) / (AMLFS_FIT_GRID - 1);
}

/* Maximum |fit - target| of t (which = 0) or tau (which = 1) over the grid. */
static double grid_error(amlfs_init_kind init, amlfs_space space, const double *theta,
                         int which)
{
    amlfs_loss_spec spec = {.space = space, .intervals = M, .theta = theta, .scale = 16.0};
    double lo = (which == 0 && space == AMLFS_SPACE_COSINE) ? -1.0 : 0.0, worst = 0.0;
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_x(lo, 1.0, i);
        double got = which == 0 ? amlfs_loss_t(&spec, x) : amlfs_loss_tau(&spec, x);
        double want = which == 0 ? amlfs_init_target_t(init, space, x)
                                 : amlfs_init_target_tau(init, space, x);
        worst = fmax(worst, fabs(got - want));
    }
    return worst;
}

/* The normal equations of each interval's line: the residuals of the grid points in
 * interval k sum to 0 and are orthogonal to x (relative to the interval's scale). */
static void check_least_squares(amlfs_init_kind init, amlfs_space space, const double *theta,
                                int which, const char *what)
{
    double lo = (which == 0 && space == AMLFS_SPACE_COSINE) ? -1.0 : 0.0;
    const double *a = theta + (which == 0 ? 0 : 2 * M), *b = a + M;
    double sum_r[M] = {0}, sum_rx[M] = {0}, sum_x[M] = {0}, cnt[M] = {0};
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double x = grid_x(lo, 1.0, i);
        double fit = amlfs_pwl(a, b, M, lo, 1.0, x, NULL);
        int k = (int)((x - lo) / (1.0 - lo) * M); /* amlfs_pwl's k on the grid */
        if (k > M - 1)
            k = M - 1;
        double r = fit - (which == 0 ? amlfs_init_target_t(init, space, x)
                                     : amlfs_init_target_tau(init, space, x));
        sum_r[k] += r;
        sum_x[k] += x;
        cnt[k] += 1.0;
        sum_rx[k] += r * x;
    }
    for (int k = 0; k < M; k++) {
        double mean_x = sum_x[k] / cnt[k];
        /* sum r (x - mean_x) = sum r x - mean_x sum r */
        double ortho = sum_rx[k] - mean_x * sum_r[k];
        CHECK(fabs(sum_r[k]) <= 1e-9 && fabs(ortho) <= 1e-9,
              "%s interval %d: residual sum %g, residual . x %g", what, k, sum_r[k], ortho);
    }
}

static void test_targets(void)
{
    amlfs_space cos_ = AMLFS_SPACE_COSINE, prob = AMLFS_SPACE_PROB;
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_IDENTITY, prob, 0.3), 0.3, 0, 0, "identity t");
    CHECK_CLOSE(amlfs_init_target_tau(AMLFS_INIT_FOCAL, prob, 0.5), pow(0.5, 0.25), 0, 1e-15,
                "focal tau(0.5) = 0.5^0.25");
    CHECK_CLOSE(amlfs_init_target_tau(AMLFS_INIT_FOCAL, cos_, 0.0), 0.0, 0, 0, "focal tau(0)");
    CHECK_CLOSE(amlfs_init_target_tau(AMLFS_INIT_FOCAL, prob, 1.0), 1.0, 0, 0, "focal tau(1)");
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_FOCAL, cos_, -0.4), -0.4, 0, 0, "focal t");
    /* focal: -log tau(p) = -(1-p)^2 log p */
    double p = 0.2;
    CHECK_CLOSE(-log(amlfs_init_target_tau(AMLFS_INIT_FOCAL, prob, p)),
                -(1 - p) * (1 - p) * log(p), 0, 1e-14, "focal loss at 0.2");
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_COSFACE, cos_, 0.5), 0.15, 0, 1e-15,
                "CosFace t(0.5)");
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_ARCFACE, cos_, 1.0), cos(0.5), 0, 1e-15,
                "ArcFace t(1)");
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_ARCFACE, cos_, 0.0), cos(PI / 2 + 0.5), 1e-15,
                1e-15, "ArcFace t(0)");
    CHECK_CLOSE(amlfs_init_target_tau(AMLFS_INIT_ARCFACE, cos_, 0.3), 0.3, 0, 0,
                "margins: tau identity");
    /* SphereFace psi, m = 4: 1 at c = 1, -7 at c = -1, continuous at the piece edges
     * theta = k pi/4 where it is -(2k - 1) ... i.e. (-1)^k cos(k pi) - 2k = 1 - 2k */
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_SPHEREFACE, cos_, 1.0), 1.0, 0, 1e-15,
                "SphereFace psi at theta 0");
    CHECK_CLOSE(amlfs_init_target_t(AMLFS_INIT_SPHEREFACE, cos_, -1.0), -7.0, 0, 1e-15,
                "SphereFace psi at theta pi");
    for (int k = 1; k < 4; k++) {
        double c = cos(k * PI / 4);
        double above = amlfs_init_target_t(AMLFS_INIT_SPHEREFACE, cos_, nextafter(c, 2.0));
        double below = amlfs_init_target_t(AMLFS_INIT_SPHEREFACE, cos_, nextafter(c, -2.0));
        CHECK_CLOSE(above, -1.0 - 2.0 * (k - 1), 1e-6, 0, "SphereFace psi continuous (above)");
        CHECK_CLOSE(below, -1.0 - 2.0 * (k - 1), 1e-6, 0, "SphereFace psi continuous (below)");
    }
    /* psi is monotone in c on the grid */
    double prev = -INFINITY;
    int monotone = 1;
    for (int i = 0; i < AMLFS_FIT_GRID; i++) {
        double v = amlfs_init_target_t(AMLFS_INIT_SPHEREFACE, cos_, grid_x(-1.0, 1.0, i));
        monotone &= v >= prev;
        prev = v;
    }
    CHECK(monotone, "SphereFace psi increases with cos theta");
    /* margins are not defined in the prob space */
    CHECK(isnan(amlfs_init_target_t(AMLFS_INIT_COSFACE, prob, 0.5)), "CosFace t in prob");
    CHECK(isnan(amlfs_init_target_tau(AMLFS_INIT_ARCFACE, prob, 0.5)), "ArcFace tau in prob");
}

static void test_identity_exact(void)
{
    for (int sp = 0; sp < 2; sp++) {
        double theta[4 * M], err = -1.0;
        int rc = amlfs_fit_theta(AMLFS_INIT_IDENTITY, (amlfs_space)sp, M, theta, &err);
        CHECK(rc == 0, "identity fit returns %d", rc);
        int exact = 1;
        for (int k = 0; k < M; k++)
            exact &= theta[k] == 1.0 && theta[M + k] == 0.0 && theta[2 * M + k] == 1.0 &&
                     theta[3 * M + k] == 0.0;
        CHECK(exact, "identity fit is exactly a = 1, b = 0 (space %d)", sp);
        CHECK(err == 0.0, "identity fit error %g", err);
    }
}

static void test_margins_in_prob(void)
{
    static const amlfs_init_kind margins[] = {AMLFS_INIT_COSFACE, AMLFS_INIT_ARCFACE,
                                              AMLFS_INIT_SPHEREFACE};
    for (int i = 0; i < 3; i++) {
        double theta[4 * M], err = 0.0;
        CHECK(amlfs_fit_theta(margins[i], AMLFS_SPACE_PROB, M, theta, &err) == -1,
              "margin %d in the prob space returns -1", (int)margins[i]);
    }
    double theta[4];
    CHECK(amlfs_fit_theta(AMLFS_INIT_IDENTITY, AMLFS_SPACE_PROB, 0, theta, NULL) == -1,
          "M = 0 returns -1");
}

static void test_fit(amlfs_init_kind init, amlfs_space space, const char *what,
                     double bound_t, double bound_tau)
{
    double theta[4 * M], err = -1.0;
    int rc = amlfs_fit_theta(init, space, M, theta, &err);
    CHECK(rc == 0, "%s: fit returns %d", what, rc);
    double err_t = grid_error(init, space, theta, 0);
    double err_tau = grid_error(init, space, theta, 1);
    printf("fit %-18s M=%d: max |t - target| %.4g, max |tau - target| %.4g, reported %.4g\n",
           what, M, err_t, err_tau, err);
    CHECK(err_t <= bound_t, "%s: t error %g above %g", what, err_t, bound_t);
    CHECK(err_tau <= bound_tau, "%s: tau error %g above %g", what, err_tau, bound_tau);
    CHECK(err == fmax(err_t, err_tau), "%s: reported %g, grid %g", what, err,
          fmax(err_t, err_tau));
    check_least_squares(init, space, theta, 0, what);
    check_least_squares(init, space, theta, 1, what);
    double again[4 * M];
    amlfs_fit_theta(init, space, M, again, NULL);
    CHECK(memcmp(theta, again, sizeof theta) == 0, "%s: fit deterministic", what);
}

int main(void)
{
    test_targets();
    test_identity_exact();
    test_margins_in_prob();
    test_fit(AMLFS_INIT_FOCAL, AMLFS_SPACE_PROB, "focal prob", 0.0, BOUND_FOCAL_TAU);
    test_fit(AMLFS_INIT_FOCAL, AMLFS_SPACE_COSINE, "focal cosine", 0.0, BOUND_FOCAL_TAU);
    test_fit(AMLFS_INIT_COSFACE, AMLFS_SPACE_COSINE, "CosFace", BOUND_COSFACE_T, 0.0);
    test_fit(AMLFS_INIT_ARCFACE, AMLFS_SPACE_COSINE, "ArcFace", BOUND_ARCFACE_T, 0.0);
    test_fit(AMLFS_INIT_SPHEREFACE, AMLFS_SPACE_COSINE, "SphereFace", BOUND_SPHEREFACE_T,
             0.0);
    return check_done("test_fit");
}
