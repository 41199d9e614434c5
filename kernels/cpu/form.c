/* form.c: the form of the transforms (DESIGN.md 1): which coordinates of a draw are
 * searched, and the slopes and biases (theta) a draw stands for.
 *
 * anchored: on [lo, hi] with M intervals of width h and knots xi_k = lo + k h, a
 * transform's value at the lower end is c, and phi(xi_{k+1}) = phi(xi_k) + a_k h, so
 * b_k = phi(xi_k) - a_k xi_k: continuous, with no interval whose bias can clamp it away.
 * The biases are computed as b_0 = c - a_0 lo, b_k = b_{k-1} + (a_{k-1} - a_k) xi_k,
 * the same values in exact arithmetic.
 * In the prob space t(0) = 0 (a negative value is a dead zone, a positive one repeats
 * tau's) and tau(0) = max(0, c_tau); in the cosine space t(-1) is searched (a margin).
 * Slopes below the floor are raised to it, so every transform increases: a falling
 * piece would reward the model for lowering p_y. */
#include "amlfs_kernels.h"

int amlfs_form_is_intercept(int m, int j)
{
    return (j / m) % 2 == 1;
}

int amlfs_form_searched(amlfs_form form, amlfs_space space, int m, int j)
{
    if (form == AMLFS_FORM_FREE)
        return 1;
    int block = j / m, entry = j % m;
    if (block % 2 == 0)
        return 1; /* a slope */
    if (entry != 0)
        return 0; /* the bias blocks hold one lower-end value each */
    return block == 3 || space == AMLFS_SPACE_COSINE;
}

int amlfs_form_theta(amlfs_form form, amlfs_space space, int m, const double *draw,
                     double slope_floor, double *theta)
{
    if (form == AMLFS_FORM_FREE) {
        for (int j = 0; j < 4 * m; j++)
            theta[j] = draw[j];
        return 0;
    }
    int floored = 0;
    for (int which = 0; which < 2; which++) { /* t, then tau */
        const double *a_in = draw + 2 * m * which;
        double *a = theta + 2 * m * which, *b = a + m;
        double lo = (which == 0 && space == AMLFS_SPACE_COSINE) ? -1.0 : 0.0;
        double h = (1.0 - lo) / m;
        double c;
        if (which == 0)
            c = space == AMLFS_SPACE_COSINE ? a_in[m] : 0.0;
        else
            c = a_in[m] > 0.0 ? a_in[m] : 0.0;
        for (int k = 0; k < m; k++) {
            double slope = a_in[k];
            if (!(slope >= slope_floor)) {
                slope = slope_floor;
                floored++;
            }
            a[k] = slope;
            /* continuity at xi_k: a_{k-1} xi_k + b_{k-1} = a_k xi_k + b_k, so equal
             * slopes keep the bias bit for bit (the identity's biases are exactly 0) */
            b[k] = k == 0 ? c - slope * lo : b[k - 1] + (a[k - 1] - slope) * (lo + k * h);
        }
    }
    return floored;
}
