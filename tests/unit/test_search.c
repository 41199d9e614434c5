/* test_search: reward shaping, the best sample, and REINFORCE + Adam against hand
 * computations (DESIGN.md 1 steps 4-6). */
#include "check.h"
#include "search.h"

#include <math.h>
#include <string.h>

static void test_zscore_and_rank(void)
{
    /* F = 3 of 4: mean 0.6, population std sqrt(0.02/3), so z = -+sqrt(3/2), 0 */
    double raw[4] = {0.5, 0.7, NAN, 0.6}, norm[4];
    uint8_t ex[4] = {0, 0, 3, 0};
    char skip[256];
    int f = amlfs_shape_rewards(raw, ex, 4, SHAPING_ZSCORE, norm, skip, sizeof skip);
    CHECK(f == 3, "F = %d", f);
    CHECK(skip[0] == 0, "skipped: %s", skip);
    CHECK_CLOSE(norm[0], -sqrt(1.5), 1e-12, 0, "z[0]");
    CHECK_CLOSE(norm[1], sqrt(1.5), 1e-12, 0, "z[1]");
    CHECK(norm[2] == 0.0, "excluded z = %g", norm[2]);
    CHECK_CLOSE(norm[3], 0.0, 1e-12, 0, "z[3]");
    /* ranks 0, 2, 1 among F = 3: r/(F-1) - 1/2 */
    amlfs_shape_rewards(raw, ex, 4, SHAPING_RANK, norm, skip, sizeof skip);
    CHECK(norm[0] == -0.5 && norm[1] == 0.5 && norm[2] == 0.0 && norm[3] == 0.0,
          "ranks %g %g %g %g", norm[0], norm[1], norm[2], norm[3]);
    /* ties broken by index */
    double tied[3] = {1, 1, 2};
    uint8_t none[3] = {0, 0, 0};
    amlfs_shape_rewards(tied, none, 3, SHAPING_RANK, norm, skip, sizeof skip);
    CHECK(norm[0] == -0.5 && norm[1] == 0.0 && norm[2] == 0.5, "tied ranks %g %g %g", norm[0],
          norm[1], norm[2]);
    CHECK(amlfs_best_sample(tied, none, 3) == 2, "best of 1,1,2");
    double tied_top[3] = {2, 1, 2};
    CHECK(amlfs_best_sample(tied_top, none, 3) == 0, "best of 2,1,2 is the lowest index");
    CHECK(amlfs_best_sample(raw, ex, 4) == 1, "best skips the excluded");
}

static void test_skips(void)
{
    double raw[3] = {0.3, NAN, NAN}, norm[3] = {9, 9, 9};
    uint8_t ex[3] = {0, 1, 4};
    char skip[256];
    int f = amlfs_shape_rewards(raw, ex, 3, SHAPING_ZSCORE, norm, skip, sizeof skip);
    CHECK(f == 1 && strstr(skip, "only 1 finite"), "F = %d, skip '%s'", f, skip);
    CHECK(norm[0] == 0 && norm[1] == 0 && norm[2] == 0, "normalized not zero when skipped");
    double same[3] = {0.25, 0.25, 0.25};
    uint8_t none[3] = {0, 0, 0};
    f = amlfs_shape_rewards(same, none, 3, SHAPING_RANK, norm, skip, sizeof skip);
    CHECK(f == 3 && strstr(skip, "zero spread"), "F = %d, skip '%s'", f, skip);
    CHECK(norm[0] == 0 && norm[2] == 0, "rank shaping of equal rewards must skip");
    uint8_t all[3] = {1, 2, 3};
    f = amlfs_shape_rewards(same, all, 3, SHAPING_ZSCORE, norm, skip, sizeof skip);
    CHECK(f == 0 && strstr(skip, "no finite"), "F = %d, skip '%s'", f, skip);
    CHECK(amlfs_best_sample(same, all, 3) == -1, "best with F = 0");
}

static void test_adam_by_hand(void)
{
    /* sigma 0.5, mu = (0, 1), theta_0 = (0.5, 1), theta_1 = (-0.5, 1.5), R-hat = (1, -1):
     * g = (1/2) [(0.5) - (-0.5), (0) - (0.5)] / 0.25 = (2, -1). First step: m-hat = g,
     * v-hat = g^2, so mu += 0.05 g / (|g| + 1e-8). */
    double mu[2] = {0, 1}, m[2] = {0, 0}, v[2] = {0, 0}, g[2];
    double theta[4] = {0.5, 1, -0.5, 1.5}, norm[2] = {1, -1};
    uint8_t ex[2] = {0, 0};
    double half[3] = {0.5, 0.5, 0.5};
    int64_t t = amlfs_adam_ascent(mu, m, v, 0, theta, norm, ex, 2, 2, half, 0.05, 0.9, 0.999,
                                  1e-8, g);
    CHECK(t == 1, "step %lld", (long long)t);
    CHECK_CLOSE(g[0], 2.0, 1e-15, 0, "g[0]");
    CHECK_CLOSE(g[1], -1.0, 1e-15, 0, "g[1]");
    CHECK_CLOSE(mu[0], 0.1 / (2 + 1e-8), 1e-15, 0, "mu[0] after step 1");
    CHECK_CLOSE(mu[1], 1 - 0.05 / (1 + 1e-8), 1e-15, 0, "mu[1] after step 1");
    CHECK_CLOSE(m[0], 0.2, 1e-15, 0, "m[0]");
    CHECK_CLOSE(v[1], 0.001, 1e-15, 0, "v[1]");

    /* Second step, excluded sample 2 ignored; the literal formulas written out again:
     * g' = (1/F) sum R-hat_i (theta_i - mu) / sigma^2 with the new mu */
    double theta2[6] = {0.3, 0.9, -0.2, 1.2, 100, -100}, norm2[3] = {-1, 1, 0};
    uint8_t ex2[3] = {0, 0, 2};
    double mu_before[2] = {mu[0], mu[1]}, m_b[2] = {m[0], m[1]}, v_b[2] = {v[0], v[1]};
    t = amlfs_adam_ascent(mu, m, v, t, theta2, norm2, ex2, 3, 2, half, 0.05, 0.9, 0.999, 1e-8,
                          g);
    CHECK(t == 2, "step %lld", (long long)t);
    for (int j = 0; j < 2; j++) {
        double gj = (-1 * (theta2[j] - mu_before[j]) + 1 * (theta2[2 + j] - mu_before[j])) /
                    2 / 0.25;
        double mj = 0.9 * m_b[j] + 0.1 * gj, vj = 0.999 * v_b[j] + 0.001 * gj * gj;
        double want = mu_before[j] + 0.05 * (mj / (1 - 0.81)) /
                                         (sqrt(vj / (1 - 0.999 * 0.999)) + 1e-8);
        CHECK_CLOSE(g[j], gj, 1e-13, 1e-13, "g after step 2");
        CHECK_CLOSE(mu[j], want, 1e-13, 1e-13, "mu after step 2");
    }

    /* per-coordinate sigma: coordinate 0 at sigma 0.25 (g four times the sigma-0.5
     * value), coordinate 1 not searched (sigma 0: mu, m, v untouched, g 0) */
    double mu3[2] = {0, 1}, m3[2] = {0.5, 0.25}, v3[2] = {0.125, 0.0625}, g3[2];
    double sig3[2] = {0.25, 0.0};
    t = amlfs_adam_ascent(mu3, m3, v3, 0, theta, norm, ex, 2, 2, sig3, 0.05, 0.9, 0.999, 1e-8,
                          g3);
    CHECK_CLOSE(g3[0], 8.0, 1e-15, 0, "g[0] at sigma 0.25");
    CHECK(g3[1] == 0.0 && mu3[1] == 1.0 && m3[1] == 0.25 && v3[1] == 0.0625,
          "an unsearched coordinate is left alone: g %g mu %g m %g v %g", g3[1], mu3[1], m3[1],
          v3[1]);
    CHECK_CLOSE(m3[0], 0.9 * 0.5 + 0.1 * 8.0, 1e-15, 0, "m[0] at sigma 0.25");
}

static void test_draws(void)
{
    /* antithetic rows mirror the first half; fixed mode copies mu */
    enum { B = 6, D = 8 };
    double mu[D], th[B * D], th2[B * D];
    double sig[D], sig2[D];
    for (int j = 0; j < D; j++) {
        mu[j] = 0.1 * j - 0.3;
        sig[j] = 0.2;
        sig2[j] = j % 3 == 1 ? 0.0 : 0.2 * (1 + j % 2); /* 0, 0.2 or 0.4 */
    }
    amlfs_draw_thetas(mu, D, B, sig, 9, 4, MODE_AMLFS, SAMPLING_ANTITHETIC, th);
    amlfs_draw_thetas(mu, D, B, sig, 9, 4, MODE_AMLFS, SAMPLING_PLAIN, th2);
    for (int i = 0; i < B / 2; i++)
        for (int j = 0; j < D; j++) {
            CHECK_CLOSE(th[(i + B / 2) * D + j] - mu[j], -(th[i * D + j] - mu[j]), 1e-15, 0,
                        "antithetic mirror");
            CHECK(th[i * D + j] == th2[i * D + j], "antithetic first half = plain draws");
        }
    CHECK(th2[3 * D] != th[3 * D], "plain second half is not mirrored");
    /* per-coordinate sigma: the same normals scaled by each coordinate's sigma; sigma 0
     * leaves mu */
    amlfs_draw_thetas(mu, D, B, sig2, 9, 4, MODE_AMLFS, SAMPLING_PLAIN, th);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < D; j++) {
            double want = mu[j] + (th2[i * D + j] - mu[j]) * (sig2[j] / 0.2);
            if (sig2[j] == 0)
                CHECK(th[i * D + j] == mu[j], "sigma 0 keeps mu");
            else
                CHECK_CLOSE(th[i * D + j], want, 1e-15, 1e-15, "per-coordinate sigma");
        }
    amlfs_draw_thetas(mu, D, B, sig, 9, 4, MODE_FIXED, SAMPLING_PLAIN, th);
    for (int i = 0; i < B * D; i++)
        CHECK(th[i] == mu[i % D], "fixed mode copies mu");
}

/* The anchored form against a literal evaluation: continuity at every knot, the
 * lower-end values, the floor and its count, the searched coordinates. */
static void test_forms(void)
{
    enum { M = 4 };
    double draw[4 * M], theta[4 * M];
    for (int sp = 0; sp < 2; sp++) {
        amlfs_space space = (amlfs_space)sp;
        double lo = sp ? -1.0 : 0.0;
        /* slopes 0.7, 0.01 (floored), 1.3, -2 (floored); intercept entries 0.4 and
         * -0.3 (tau's: max(0, -0.3) = 0); the unsearched bias entries hold junk */
        double a[M] = {0.7, 0.01, 1.3, -2.0};
        for (int k = 0; k < M; k++) {
            draw[k] = draw[2 * M + k] = a[k];
            draw[M + k] = draw[3 * M + k] = 99.0;
        }
        draw[M] = 0.4;
        draw[3 * M] = -0.3;
        int floored = amlfs_form_theta(AMLFS_FORM_ANCHORED, space, M, draw, 0.05, theta);
        CHECK(floored == 4, "floored %d, expected 4", floored);
        for (int which = 0; which < 2; which++) {
            double tlo = which ? 0.0 : lo, th = (1.0 - tlo) / M;
            const double *ta = theta + 2 * M * which, *tb = ta + M;
            double start = which ? 0.0 : (sp ? 0.4 : 0.0);
            double value = start;
            for (int k = 0; k < M; k++) {
                double slope = a[k] < 0.05 ? 0.05 : a[k];
                CHECK(ta[k] == slope, "slope %d of %s: %g", k, which ? "tau" : "t", ta[k]);
                double x0 = tlo + k * th, x1 = tlo + (k + 1) * th;
                CHECK_CLOSE(ta[k] * x0 + tb[k], value, 1e-15, 1e-15, "value at a piece's left knot");
                value += slope * th;
                CHECK_CLOSE(ta[k] * x1 + tb[k], value, 1e-15, 1e-15, "value at a piece's right knot");
            }
        }
        /* the free form copies */
        CHECK(amlfs_form_theta(AMLFS_FORM_FREE, space, M, draw, 0.05, theta) == 0 &&
                  !memcmp(draw, theta, sizeof draw),
              "the free form's theta is the draw");
        /* searched: all 4M free; anchored: the slopes, tau's intercept, and t's in the
         * cosine space */
        int n_free = 0, n_anch = 0;
        for (int j = 0; j < 4 * M; j++) {
            n_free += amlfs_form_searched(AMLFS_FORM_FREE, space, M, j);
            n_anch += amlfs_form_searched(AMLFS_FORM_ANCHORED, space, M, j);
        }
        CHECK(n_free == 4 * M && n_anch == 2 * M + 1 + sp, "searched: free %d, anchored %d",
              n_free, n_anch);
        CHECK(amlfs_form_searched(AMLFS_FORM_ANCHORED, space, M, 3 * M) &&
                  !amlfs_form_searched(AMLFS_FORM_ANCHORED, space, M, 3 * M + 1) &&
                  amlfs_form_searched(AMLFS_FORM_ANCHORED, space, M, M) == sp,
              "anchored: the intercepts searched");
        double sv[4 * M];
        amlfs_sigma_vector(AMLFS_FORM_ANCHORED, space, M, 0.2, 0.05, sv);
        CHECK(sv[0] == 0.2 && sv[2 * M + 1] == 0.2 && sv[3 * M] == 0.05 && sv[3 * M + 1] == 0 &&
                  sv[M] == (sp ? 0.05 : 0.0),
              "anchored sigma vector");
    }
}

int main(void)
{
    test_zscore_and_rank();
    test_skips();
    test_adam_by_hand();
    test_draws();
    test_forms();
    return check_done("test_search");
}
