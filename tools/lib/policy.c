/* policy.c: reading and writing the policy, thetas and rewards files.
 * Depends on: h5io (and h5get), search (the forms), tool. */
#include "policy.h"
#include "h5io.h"
#include "plain.h"
#include "search.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The version of an open file (validated: one the schemas know). */
static int64_t file_version(hid_t f)
{
    return amlfs_attr_i64(f, "/", "schema_version");
}

/* sigma_intercept, slope_floor and the per-coordinate sigma against the form. */
static void check_form(const char *path, amlfs_form form, amlfs_space space, int64_t m,
                       double sigma_intercept, double slope_floor, const double *sigma_of)
{
    if (!(sigma_intercept >= 0) || !isfinite(sigma_intercept))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@sigma_intercept: %g, expected >= 0",
                   sigma_intercept);
    if (!(slope_floor >= 0) || !isfinite(slope_floor))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@slope_floor: %g, expected >= 0", slope_floor);
    for (int64_t j = 0; j < 4 * m; j++) {
        if (!(sigma_of[j] >= 0) || !isfinite(sigma_of[j]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/sigma[%lld] is %g, expected >= 0",
                       (long long)j, sigma_of[j]);
        if (sigma_of[j] > 0 && !amlfs_form_searched(form, space, (int)m, (int)j))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/sigma[%lld] is %g, but the %s form does not "
                       "search that coordinate (expected 0)", (long long)j, sigma_of[j],
                       amlfs_form_names[form]);
    }
}

/* Values the schema's types allow but the maths does not: exit 2 naming the file. */
static void check_theta_values(const char *path, const char *what, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%zu] is %g, expected a finite number", what,
                       i, v[i]);
}

static void check_common(const char *path, int64_t intervals, double sigma, int64_t seed,
                         int64_t epoch)
{
    if (intervals < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@intervals: M = %lld, expected M >= 1",
                   (long long)intervals);
    if (!(sigma > 0) || !isfinite(sigma))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@sigma: %g, expected sigma > 0", sigma);
    if (seed < 0 || seed > 0xffffffffLL)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@seed: %lld, expected 0 to 4294967295",
                   (long long)seed);
    if (epoch < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@epoch: %lld, expected >= 1", (long long)epoch);
}

void amlfs_check_exact_loss(const char *path, amlfs_exact_loss loss, amlfs_mode mode,
                            amlfs_space space)
{
    if (loss == AMLFS_EXACT_NONE)
        return;
    const char *what = path ? "/@loss" : "--loss";
    if (mode != MODE_FIXED)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s %s is a fixed baseline: it needs mode fixed, "
                   "not %s", what, amlfs_loss_names[loss], amlfs_mode_names[mode]);
    if (space != AMLFS_SPACE_COSINE)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s %s is a margin loss on cosines: it needs the "
                   "cosine space, not %s", what, amlfs_loss_names[loss],
                   amlfs_space_names[space]);
}

amlfs_loss_spec amlfs_thetas_spec(const amlfs_thetas *t, int64_t i, double scale)
{
    amlfs_loss_spec spec = {.space = t->space,
                            .intervals = (int)t->intervals,
                            .theta = t->theta + (size_t)i * 4 * (size_t)t->intervals,
                            .scale = scale,
                            .exact = t->loss,
                            .margin = 0.0};
    return spec;
}

/* The optional attribute loss of an amlfs file: absent (files of before it) is searched. */
static amlfs_exact_loss read_loss(hid_t f)
{
    if (!amlfs_attr_exists(f, "/", "loss"))
        return AMLFS_EXACT_NONE;
    return (amlfs_exact_loss)amlfs_attr_enum(f, "/", "loss", amlfs_loss_names);
}

/* ---- hand-written files without the root attribute 'schema' (policy.h) ------------ */

/* The M of a plain file's theta-shaped dataset, whose last dimension is 4M. */
static int64_t plain_intervals(const char *path, const char *name, int rank,
                               const hsize_t *dims, const char *shape)
{
    hsize_t d = dims[rank - 1];
    if (d < 4 || d % 4 || (rank == 2 && dims[0] < 1)) {
        char found[64];
        amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape %s, expected %s: the slopes and biases "
                   "[a_t, b_t, a_tau, b_tau], M >= 1 values each", name,
                   amlfs_plain_shape(rank, dims, found, sizeof found), shape);
    }
    return (int64_t)(d / 4);
}

static void policy_read_plain(amlfs_policy *p, hid_t f, const char *path)
{
    hsize_t dims[8];
    int rank = amlfs_plain_dims(f, path, "/mu", PLAIN_FLOAT, 1, 1, "(4M)", dims);
    int64_t m = plain_intervals(path, "/mu", rank, dims, "(4M)");
    size_t d = (size_t)(4 * m);
    amlfs_policy_alloc(p, m);
    p->plain = 1;
    amlfs_h5_read(f, "/mu", H5T_NATIVE_DOUBLE, p->mu);
    memcpy(p->mu_init, p->mu, d * sizeof(double));
    p->space = amlfs_plain_attr_enum(f, path, "/", "space", amlfs_space_names,
                                     AMLFS_SPACE_PROB, NULL);
    p->form = amlfs_plain_attr_enum(f, path, "/", "form", amlfs_form_names, AMLFS_FORM_FREE,
                                    NULL);
    p->mode = amlfs_plain_attr_enum(f, path, "/", "mode", amlfs_mode_names, MODE_AMLFS, NULL);
    p->sampling = amlfs_plain_attr_enum(f, path, "/", "sampling", amlfs_sampling_names,
                                        SAMPLING_PLAIN, NULL);
    p->shaping = amlfs_plain_attr_enum(f, path, "/", "shaping", amlfs_shaping_names,
                                       SHAPING_ZSCORE, NULL);
    p->loss = amlfs_plain_attr_enum(f, path, "/", "loss", amlfs_loss_names, AMLFS_EXACT_NONE,
                                    NULL);
    p->init = AMLFS_INIT_IDENTITY;
    p->init_max_error = NAN; /* not a fit */
    snprintf(p->last_update, sizeof p->last_update, "init");
    amlfs_plain_attr_i64(f, path, "/", "epoch", 1, &p->epoch);
    amlfs_plain_attr_i64(f, path, "/", "seed", AMLFS_DEFAULT_SEED, &p->seed);
    amlfs_plain_attr_f64(f, path, "/", "sigma", AMLFS_DEFAULT_SIGMA, &p->sigma);
    amlfs_plain_attr_f64(f, path, "/", "sigma_intercept", p->sigma, &p->sigma_intercept);
    amlfs_plain_attr_f64(f, path, "/", "slope_floor", AMLFS_SLOPE_FLOOR, &p->slope_floor);
    amlfs_plain_attr_f64(f, path, "/", "lr", AMLFS_DEFAULT_POLICY_LR, &p->lr);
    p->beta1 = AMLFS_ADAM_BETA1;
    p->beta2 = AMLFS_ADAM_BETA2;
    p->adam_eps = AMLFS_ADAM_EPS;
    p->adam_step = 0;
    if (amlfs_h5_exists(f, "/sigma")) {
        hsize_t sd[8];
        char want[32], found[64];
        int srank = amlfs_plain_dims(f, path, "/sigma", PLAIN_FLOAT, 1, 1, "(4M)", sd);
        if (sd[0] != d)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/sigma: shape %s, expected (4M) = %s, one per "
                       "coordinate of /mu", amlfs_plain_shape(srank, sd, found, sizeof found),
                       amlfs_plain_shape(1, (hsize_t[]){d}, want, sizeof want));
        amlfs_h5_read(f, "/sigma", H5T_NATIVE_DOUBLE, p->sigma_of);
    } else {
        amlfs_sigma_vector(p->form, p->space, (int)m, p->sigma, p->sigma_intercept,
                           p->sigma_of);
    }
}

static void thetas_read_plain(amlfs_thetas *t, hid_t f, const char *path)
{
    hsize_t dims[8];
    int rank = amlfs_plain_dims(f, path, "/theta", PLAIN_FLOAT, 1, 2, "(B,4M) or (4M)", dims);
    int64_t m = plain_intervals(path, "/theta", rank, dims, "(B,4M) or (4M)");
    int64_t b = rank == 2 ? (int64_t)dims[0] : 1;
    size_t d = (size_t)(4 * m);
    amlfs_thetas_alloc(t, b, m);
    t->plain = 1;
    amlfs_h5_read(f, "/theta", H5T_NATIVE_DOUBLE, t->theta);
    /* given losses, not draws: the free form (the draw is theta), nothing searched */
    memcpy(t->draw, t->theta, (size_t)b * d * sizeof(double));
    memcpy(t->mu, t->theta, d * sizeof(double));
    t->space = amlfs_plain_attr_enum(f, path, "/", "space", amlfs_space_names,
                                     AMLFS_SPACE_PROB, &t->space_given);
    t->loss = amlfs_plain_attr_enum(f, path, "/", "loss", amlfs_loss_names, AMLFS_EXACT_NONE,
                                    NULL);
    amlfs_plain_attr_i64(f, path, "/", "epoch", 1, &t->epoch);
    amlfs_plain_attr_i64(f, path, "/", "seed", AMLFS_DEFAULT_SEED, &t->seed);
    t->form = AMLFS_FORM_FREE;
    t->mode = MODE_FIXED;
    t->sampling = SAMPLING_PLAIN;
    t->shaping = SHAPING_ZSCORE;
    t->sigma = AMLFS_DEFAULT_SIGMA;
    t->sigma_intercept = 0.0;
    t->slope_floor = 0.0;
    t->floored = 0;
}

void amlfs_policy_alloc(amlfs_policy *p, int64_t intervals)
{
    size_t d = (size_t)(4 * intervals);
    p->intervals = intervals;
    p->mu = amlfs_zalloc(d, sizeof(double));
    p->mu_init = amlfs_zalloc(d, sizeof(double));
    p->adam_m = amlfs_zalloc(d, sizeof(double));
    p->adam_v = amlfs_zalloc(d, sizeof(double));
    p->sigma_of = amlfs_zalloc(d, sizeof(double));
}

void amlfs_policy_free(amlfs_policy *p)
{
    free(p->mu);
    free(p->mu_init);
    free(p->adam_m);
    free(p->adam_v);
    free(p->sigma_of);
}

/* The policy of an amlfs file (validated against its schema). */
static void policy_read_schema(amlfs_policy *p, hid_t f)
{
    amlfs_policy_alloc(p, amlfs_attr_i64(f, "/", "intervals"));
    p->epoch = amlfs_attr_i64(f, "/", "epoch");
    p->adam_step = amlfs_attr_i64(f, "/", "adam_step");
    p->seed = amlfs_attr_i64(f, "/", "seed");
    p->space = amlfs_attr_enum(f, "/", "space", amlfs_space_names);
    p->mode = amlfs_attr_enum(f, "/", "mode", amlfs_mode_names);
    p->sampling = amlfs_attr_enum(f, "/", "sampling", amlfs_sampling_names);
    p->shaping = amlfs_attr_enum(f, "/", "shaping", amlfs_shaping_names);
    p->init = amlfs_attr_enum(f, "/", "init", amlfs_init_names);
    p->loss = read_loss(f);
    amlfs_attr_str(f, "/", "last_update", p->last_update, sizeof p->last_update);
    p->sigma = amlfs_attr_f64(f, "/", "sigma");
    size_t d = (size_t)(4 * p->intervals);
    if (file_version(f) >= 2) {
        p->form = amlfs_attr_enum(f, "/", "form", amlfs_form_names);
        p->sigma_intercept = amlfs_attr_f64(f, "/", "sigma_intercept");
        p->slope_floor = amlfs_attr_f64(f, "/", "slope_floor");
        amlfs_h5_read(f, "/sigma", H5T_NATIVE_DOUBLE, p->sigma_of);
    } else { /* version 1: the free form, one sigma */
        p->form = AMLFS_FORM_FREE;
        p->sigma_intercept = p->sigma;
        p->slope_floor = 0.0;
        for (size_t j = 0; j < d; j++)
            p->sigma_of[j] = p->sigma;
    }
    p->lr = amlfs_attr_f64(f, "/", "lr");
    p->beta1 = amlfs_attr_f64(f, "/", "beta1");
    p->beta2 = amlfs_attr_f64(f, "/", "beta2");
    p->adam_eps = amlfs_attr_f64(f, "/", "adam_eps");
    p->init_max_error = amlfs_attr_f64(f, "/", "init_max_error");
    amlfs_h5_read(f, "/mu", H5T_NATIVE_DOUBLE, p->mu);
    amlfs_h5_read(f, "/mu_init", H5T_NATIVE_DOUBLE, p->mu_init);
    amlfs_h5_read(f, "/adam_m", H5T_NATIVE_DOUBLE, p->adam_m);
    amlfs_h5_read(f, "/adam_v", H5T_NATIVE_DOUBLE, p->adam_v);
}

void amlfs_policy_read(amlfs_policy *p, const char *path)
{
    memset(p, 0, sizeof *p);
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "policy", &plain);
    if (plain)
        policy_read_plain(p, f, path);
    else
        policy_read_schema(p, f);
    size_t d = (size_t)(4 * p->intervals);
    H5Fclose(f);
    check_common(path, p->intervals, p->sigma, p->seed, p->epoch);
    amlfs_check_exact_loss(path, p->loss, p->mode, p->space);
    check_form(path, p->form, p->space, p->intervals, p->sigma_intercept, p->slope_floor,
               p->sigma_of);
    check_theta_values(path, "/mu", p->mu, d);
    check_theta_values(path, "/mu_init", p->mu_init, d);
    check_theta_values(path, "/adam_m", p->adam_m, d);
    check_theta_values(path, "/adam_v", p->adam_v, d);
    for (size_t i = 0; i < d; i++)
        if (p->adam_v[i] < 0)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/adam_v[%zu] is %g, expected >= 0", i,
                       p->adam_v[i]);
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@beta1 = %g, /@beta2 = %g, expected each in [0, 1)",
                   p->beta1, p->beta2);
    if (!(p->adam_eps > 0) || !isfinite(p->adam_eps))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@adam_eps: %g, expected > 0", p->adam_eps);
    if (!(p->lr > 0) || !isfinite(p->lr))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@lr: %g, expected lr > 0", p->lr);
    if (p->adam_step < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@adam_step: %lld, expected >= 0",
                   (long long)p->adam_step);
}

void amlfs_policy_write(const amlfs_policy *p, const char *path)
{
    amlfs_h5_out out = amlfs_h5_create(path, "policy");
    hid_t f = out.file;
    amlfs_attr_set_i64(f, "/", "epoch", p->epoch);
    amlfs_attr_set_i64(f, "/", "intervals", p->intervals);
    amlfs_attr_set_str(f, "/", "space", amlfs_space_names[p->space]);
    amlfs_attr_set_str(f, "/", "mode", amlfs_mode_names[p->mode]);
    amlfs_attr_set_str(f, "/", "sampling", amlfs_sampling_names[p->sampling]);
    amlfs_attr_set_str(f, "/", "shaping", amlfs_shaping_names[p->shaping]);
    amlfs_attr_set_str(f, "/", "form", amlfs_form_names[p->form]);
    amlfs_attr_set_str(f, "/", "init", amlfs_init_names[p->init]);
    if (p->loss != AMLFS_EXACT_NONE) /* absent is searched: such files are as before */
        amlfs_attr_set_str(f, "/", "loss", amlfs_loss_names[p->loss]);
    amlfs_attr_set_f64(f, "/", "init_max_error", p->init_max_error);
    amlfs_attr_set_f64(f, "/", "sigma", p->sigma);
    amlfs_attr_set_f64(f, "/", "sigma_intercept", p->sigma_intercept);
    amlfs_attr_set_f64(f, "/", "slope_floor", p->slope_floor);
    amlfs_attr_set_f64(f, "/", "lr", p->lr);
    amlfs_attr_set_f64(f, "/", "beta1", p->beta1);
    amlfs_attr_set_f64(f, "/", "beta2", p->beta2);
    amlfs_attr_set_f64(f, "/", "adam_eps", p->adam_eps);
    amlfs_attr_set_i64(f, "/", "adam_step", p->adam_step);
    amlfs_attr_set_i64(f, "/", "seed", p->seed);
    amlfs_attr_set_str(f, "/", "last_update", p->last_update);
    hsize_t d[1] = {(hsize_t)(4 * p->intervals)};
    amlfs_h5_write_f64(f, "/mu", 1, d, p->mu);
    amlfs_h5_write_f64(f, "/mu_init", 1, d, p->mu_init);
    amlfs_h5_write_f64(f, "/sigma", 1, d, p->sigma_of);
    amlfs_h5_write_f64(f, "/adam_m", 1, d, p->adam_m);
    amlfs_h5_write_f64(f, "/adam_v", 1, d, p->adam_v);
    amlfs_h5_finish(&out);
}

void amlfs_thetas_alloc(amlfs_thetas *t, int64_t samples, int64_t intervals)
{
    t->samples = samples;
    t->intervals = intervals;
    t->mu = amlfs_zalloc((size_t)(4 * intervals), sizeof(double));
    t->sigma_of = amlfs_zalloc((size_t)(4 * intervals), sizeof(double));
    t->draw = amlfs_zalloc((size_t)(samples * 4 * intervals), sizeof(double));
    t->theta = amlfs_zalloc((size_t)(samples * 4 * intervals), sizeof(double));
}

void amlfs_thetas_free(amlfs_thetas *t)
{
    free(t->mu);
    free(t->sigma_of);
    free(t->draw);
    free(t->theta);
}

/* The thetas of an amlfs file (validated against its schema). */
static void thetas_read_schema(amlfs_thetas *t, hid_t f)
{
    amlfs_thetas_alloc(t, amlfs_attr_i64(f, "/", "samples"), amlfs_attr_i64(f, "/", "intervals"));
    t->epoch = amlfs_attr_i64(f, "/", "epoch");
    t->seed = amlfs_attr_i64(f, "/", "seed");
    t->sigma = amlfs_attr_f64(f, "/", "sigma");
    t->space = amlfs_attr_enum(f, "/", "space", amlfs_space_names);
    t->mode = amlfs_attr_enum(f, "/", "mode", amlfs_mode_names);
    t->sampling = amlfs_attr_enum(f, "/", "sampling", amlfs_sampling_names);
    t->shaping = amlfs_attr_enum(f, "/", "shaping", amlfs_shaping_names);
    t->loss = read_loss(f);
    amlfs_h5_read(f, "/mu", H5T_NATIVE_DOUBLE, t->mu);
    amlfs_h5_read(f, "/theta", H5T_NATIVE_DOUBLE, t->theta);
    size_t d = (size_t)(4 * t->intervals), bd = (size_t)t->samples * d;
    if (file_version(f) >= 2) {
        t->form = amlfs_attr_enum(f, "/", "form", amlfs_form_names);
        t->sigma_intercept = amlfs_attr_f64(f, "/", "sigma_intercept");
        t->slope_floor = amlfs_attr_f64(f, "/", "slope_floor");
        t->floored = amlfs_attr_i64(f, "/", "floored");
        amlfs_h5_read(f, "/sigma", H5T_NATIVE_DOUBLE, t->sigma_of);
        amlfs_h5_read(f, "/draw", H5T_NATIVE_DOUBLE, t->draw);
    } else { /* version 1: the free form, one sigma, the draws are theta */
        t->form = AMLFS_FORM_FREE;
        t->sigma_intercept = t->sigma;
        t->slope_floor = 0.0;
        t->floored = 0;
        for (size_t j = 0; j < d; j++)
            t->sigma_of[j] = t->sigma;
        memcpy(t->draw, t->theta, bd * sizeof(double));
    }
    t->space_given = 1;
}

void amlfs_thetas_read(amlfs_thetas *t, const char *path)
{
    memset(t, 0, sizeof *t);
    int plain;
    hid_t f = amlfs_h5_open_or_plain(path, "thetas", &plain);
    if (plain)
        thetas_read_plain(t, f, path);
    else
        thetas_read_schema(t, f);
    size_t d = (size_t)(4 * t->intervals), bd = (size_t)t->samples * d;
    H5Fclose(f);
    check_common(path, t->intervals, t->sigma, t->seed, t->epoch);
    if (!t->plain || t->space_given) /* else amlfs-loss takes the space from its input */
        amlfs_check_exact_loss(path, t->loss, t->mode, t->space);
    check_form(path, t->form, t->space, t->intervals, t->sigma_intercept, t->slope_floor,
               t->sigma_of);
    check_theta_values(path, "/draw", t->draw, bd);
    /* /theta is what the losses apply: it must be the form's theta of each draw */
    double *row = amlfs_zalloc(d, sizeof(double));
    for (int64_t i = 0; i < t->samples; i++) {
        amlfs_form_theta(t->form, t->space, (int)t->intervals, t->draw + (size_t)i * d,
                         t->slope_floor, row);
        if (memcmp(row, t->theta + (size_t)i * d, d * sizeof(double)))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/theta[%lld] is not the %s form's theta of "
                       "/draw[%lld]", (long long)i, amlfs_form_names[t->form], (long long)i);
    }
    free(row);
    if (t->samples < 1)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@samples: %lld, expected B >= 1",
                   (long long)t->samples);
    check_theta_values(path, "/mu", t->mu, (size_t)(4 * t->intervals));
    check_theta_values(path, "/theta", t->theta, (size_t)(t->samples * 4 * t->intervals));
}

void amlfs_thetas_write(const amlfs_thetas *t, const char *path)
{
    amlfs_h5_out out = amlfs_h5_create(path, "thetas");
    hid_t f = out.file;
    amlfs_attr_set_i64(f, "/", "epoch", t->epoch);
    amlfs_attr_set_i64(f, "/", "samples", t->samples);
    amlfs_attr_set_i64(f, "/", "intervals", t->intervals);
    amlfs_attr_set_str(f, "/", "space", amlfs_space_names[t->space]);
    amlfs_attr_set_str(f, "/", "mode", amlfs_mode_names[t->mode]);
    amlfs_attr_set_str(f, "/", "sampling", amlfs_sampling_names[t->sampling]);
    amlfs_attr_set_str(f, "/", "shaping", amlfs_shaping_names[t->shaping]);
    amlfs_attr_set_str(f, "/", "form", amlfs_form_names[t->form]);
    if (t->loss != AMLFS_EXACT_NONE) /* absent is searched, as in the policy */
        amlfs_attr_set_str(f, "/", "loss", amlfs_loss_names[t->loss]);
    amlfs_attr_set_f64(f, "/", "sigma", t->sigma);
    amlfs_attr_set_f64(f, "/", "sigma_intercept", t->sigma_intercept);
    amlfs_attr_set_f64(f, "/", "slope_floor", t->slope_floor);
    amlfs_attr_set_i64(f, "/", "floored", t->floored);
    amlfs_attr_set_i64(f, "/", "seed", t->seed);
    hsize_t d1[1] = {(hsize_t)(4 * t->intervals)};
    hsize_t d2[2] = {(hsize_t)t->samples, (hsize_t)(4 * t->intervals)};
    amlfs_h5_write_f64(f, "/mu", 1, d1, t->mu);
    amlfs_h5_write_f64(f, "/sigma", 1, d1, t->sigma_of);
    amlfs_h5_write_f64(f, "/draw", 2, d2, t->draw);
    amlfs_h5_write_f64(f, "/theta", 2, d2, t->theta);
    amlfs_h5_finish(&out);
}

void amlfs_rewards_alloc(amlfs_rewards *r, int64_t samples)
{
    r->samples = samples;
    r->raw = amlfs_zalloc((size_t)samples, sizeof(double));
    r->normalized = amlfs_zalloc((size_t)samples, sizeof(double));
    r->excluded = amlfs_zalloc((size_t)samples, 1);
}

void amlfs_rewards_free(amlfs_rewards *r)
{
    free(r->raw);
    free(r->normalized);
    free(r->excluded);
}

void amlfs_rewards_read(amlfs_rewards *r, const char *path)
{
    memset(r, 0, sizeof *r);
    hid_t f = amlfs_h5_open(path, "rewards");
    amlfs_rewards_alloc(r, amlfs_attr_i64(f, "/", "samples"));
    r->epoch = amlfs_attr_i64(f, "/", "epoch");
    r->finite = amlfs_attr_i64(f, "/", "finite");
    r->best = amlfs_attr_i64(f, "/", "best");
    r->best_reward = amlfs_attr_f64(f, "/", "best_reward");
    r->metric = amlfs_attr_enum(f, "/", "metric", amlfs_metric_names);
    r->shaping = amlfs_attr_enum(f, "/", "shaping", amlfs_shaping_names);
    amlfs_attr_str(f, "/", "update_skipped", r->update_skipped, sizeof r->update_skipped);
    amlfs_h5_read(f, "/raw", H5T_NATIVE_DOUBLE, r->raw);
    amlfs_h5_read(f, "/normalized", H5T_NATIVE_DOUBLE, r->normalized);
    amlfs_h5_read(f, "/excluded", H5T_NATIVE_UINT8, r->excluded);
    H5Fclose(f);
    if (r->best < -1 || r->best >= r->samples)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@best: %lld, expected -1 to %lld",
                   (long long)r->best, (long long)r->samples - 1);
    if (r->best >= 0 && r->excluded[r->best])
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@best: sample %lld is excluded",
                   (long long)r->best);
    for (int64_t i = 0; i < r->samples; i++)
        if (!r->excluded[i] && (!isfinite(r->raw[i]) || !isfinite(r->normalized[i])))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/raw[%lld]: not finite but not excluded",
                       (long long)i);
}

void amlfs_rewards_write(const amlfs_rewards *r, const char *path)
{
    amlfs_h5_out out = amlfs_h5_create(path, "rewards");
    hid_t f = out.file;
    amlfs_attr_set_i64(f, "/", "epoch", r->epoch);
    amlfs_attr_set_i64(f, "/", "samples", r->samples);
    amlfs_attr_set_str(f, "/", "metric", amlfs_metric_names[r->metric]);
    amlfs_attr_set_str(f, "/", "shaping", amlfs_shaping_names[r->shaping]);
    amlfs_attr_set_i64(f, "/", "finite", r->finite);
    amlfs_attr_set_i64(f, "/", "best", r->best);
    amlfs_attr_set_f64(f, "/", "best_reward", r->best_reward);
    amlfs_attr_set_str(f, "/", "update_skipped", r->update_skipped);
    amlfs_attr_set_str(f, "/", "excluded_codes", EXCLUDED_CODES);
    hsize_t d[1] = {(hsize_t)r->samples};
    amlfs_h5_write_f64(f, "/raw", 1, d, r->raw);
    amlfs_h5_write_f64(f, "/normalized", 1, d, r->normalized);
    amlfs_h5_write(f, "/excluded", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d, r->excluded);
    amlfs_h5_finish(&out);
}
