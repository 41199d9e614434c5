/* amlfs-loss: the searchable loss of one theta and its gradient on a user's batch, so
 * it can be compared with another framework's (DESIGN.md 2). */
#include "amlfs_kernels.h"
#include "h5io.h"
#include "plain.h"
#include "policy.h"
#include "tool.h"

#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-loss --thetas thetas.h5 --index I --input in.h5 --out out.h5\n"
    "\n"
    "Computes L(f, y; theta_I) per row, its mean, and the gradient of the mean with\n"
    "respect to the logits (prob space) or the cosines (cosine space). When the thetas'\n"
    "attribute loss names an exact margin loss (cosface, arcface, sphereface: a fixed\n"
    "baseline in the cosine space) that loss is computed on the cosines instead, with\n"
    "the input's scale (weight 1, nothing clamped).\n"
    "The input (schema loss-input) holds /targets (N) int32 and either /logits (N,C)\n"
    "float32 (prob space) or /cosines (N,C) float32 with the attribute scale (cosine).\n"
    "The output (schema loss-output) holds /loss (N), /weight (N) = -p_y dL/dp_y\n"
    "(the gradient weight relative to cross-entropy, 1 at the identity),\n"
    "/grad (N,C), the attributes mean and clamped, and the theta used.\n"
    "\n"
    "Files from any framework: an input or thetas file without the root attribute\n"
    "'schema' is read by its datasets' names, shapes and types (other objects are\n"
    "passed over). A minimal input holds /logits (N,C) float32 or float64 (or /cosines\n"
    "(N,C) with the attribute scale, a number) and /targets (N) of any integer type\n"
    "(int64, int32, uint8, ...), each 0 to C-1; float64 is rounded to float32, the\n"
    "precision the loss computes in. A minimal thetas file holds /theta (B,4M) or (4M)\n"
    "float64 (or float32): the slopes and biases [a_t, b_t, a_tau, b_tau], M each\n"
    "(DESIGN.md 1), applied as they are; its space is the input's (logits: prob,\n"
    "cosines: cosine) unless the root attribute space says prob or cosine; its root\n"
    "attribute loss (searched, cosface, arcface, sphereface) is optional (searched).\n"
    "\n"
    "  --thetas FILE    a thetas file (amlfs-sample, or hand-written as above)\n"
    "  --index I        the row of theta to use, 0 to B-1\n"
    "  --input FILE     the batch\n"
    "  --out FILE       the result (written atomically)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-loss");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"thetas", required_argument, 0, 't'},
                                         {"index", required_argument, 0, 'i'},
                                         {"input", required_argument, 0, 'n'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *thetas_path = NULL, *in_path = NULL, *out = NULL;
    long long index = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': thetas_path = optarg; break;
        case 'i': index = amlfs_arg_int("--index", optarg, 0, 1 << 30); break;
        case 'n': in_path = optarg; break;
        case 'o': out = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!thetas_path || !in_path || !out || index < 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--thetas, --index, --input and --out are required");

    amlfs_thetas t;
    amlfs_thetas_read(&t, thetas_path);
    if (index >= t.samples)
        amlfs_fail(AMLFS_EXIT_USAGE, thetas_path, "--index %lld, but B = %lld (0 to %lld)",
                   index, (long long)t.samples, (long long)t.samples - 1);

    int plain;
    hid_t f = amlfs_h5_open_or_plain(in_path, "loss-input", &plain);
    int has_logits = amlfs_h5_exists(f, "/logits"), has_cosines = amlfs_h5_exists(f, "/cosines");
    if (plain && has_logits == has_cosines) /* the schema says so for amlfs files */
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "expected exactly one of /logits (N,C) (prob "
                   "space) and /cosines (N,C) (cosine space), found %s",
                   has_logits ? "both" : "neither");
    const char *input = has_logits ? "/logits" : "/cosines";
    if (t.plain && !t.space_given) /* a hand-written theta: the input says the space */
        t.space = has_logits ? AMLFS_SPACE_PROB : AMLFS_SPACE_COSINE;
    int cosine = t.space == AMLFS_SPACE_COSINE;
    amlfs_check_exact_loss(thetas_path, t.loss, t.mode, t.space);
    if (cosine != !strcmp(input, "/cosines"))
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "holds %s, but theta is of the %s space (%s)",
                   input, amlfs_space_names[t.space],
                   cosine ? "needs /cosines" : "needs /logits");
    hsize_t dims[8];
    if (plain)
        amlfs_plain_dims(f, in_path, input, PLAIN_FLOAT, 2, 2, "(N,C)", dims);
    else
        amlfs_h5_dims(f, input, dims);
    int n = (int)dims[0], classes = (int)dims[1];
    if (n < 1 || classes < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "%s: shape (%d,%d), expected (N,C), N >= 1, C >= 2",
                   input, n, classes);
    if (plain) {
        hsize_t td[8];
        char want[96], found[64];
        snprintf(want, sizeof want, "(N) = (%d), one target per row of %s", n, input);
        int rank = amlfs_plain_dims(f, in_path, "/targets", PLAIN_INTEGER, 1, 1, want, td);
        if (td[0] != (hsize_t)n)
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/targets: shape %s, expected %s",
                       amlfs_plain_shape(rank, td, found, sizeof found), want);
    }
    double scale = 0.0;
    if (cosine && plain) {
        if (!amlfs_plain_attr_f64(f, in_path, "/cosines", "scale", 0.0, &scale))
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/cosines@scale: missing, expected the "
                       "cosine head's scale s (a number) with /cosines");
    } else if (cosine) {
        scale = amlfs_attr_f64(f, "/cosines", "scale");
    }
    /* The targets as int64 (int32, or any integer type of a plain file, exactly), then
     * the logits. Buffers are freed before an exit on bad values: the error paths are
     * checked for leaks. */
    int64_t *y64 = amlfs_zalloc((size_t)n, sizeof(int64_t));
    amlfs_h5_read(f, "/targets", H5T_NATIVE_INT64, y64);
    int bad_target = -1;
    for (int i = 0; i < n && bad_target < 0; i++)
        if (y64[i] < 0 || y64[i] >= classes)
            bad_target = i;
    if (bad_target >= 0) {
        long long v = (long long)y64[bad_target];
        free(y64);
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/targets[%d] = %lld, expected 0 to %d",
                   bad_target, v, classes - 1);
    }
    int32_t *y = amlfs_zalloc((size_t)n, sizeof(int32_t));
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)y64[i];
    free(y64);
    float *x = amlfs_zalloc((size_t)n * classes, sizeof(float));
    if (plain) {
        /* float64 (NumPy's, PyTorch's double) to the kernel's float32, checked here: a
         * value beyond float32's range must not pass as a finite one */
        double *x64 = amlfs_zalloc((size_t)n * classes, sizeof(double));
        amlfs_h5_read(f, input, H5T_NATIVE_DOUBLE, x64);
        size_t bad = (size_t)-1;
        for (size_t i = 0; i < (size_t)n * classes && bad == (size_t)-1; i++) {
            if (!isfinite(x64[i]) || fabs(x64[i]) > FLT_MAX)
                bad = i;
            x[i] = (float)x64[i];
        }
        double v = bad != (size_t)-1 ? x64[bad] : 0.0;
        free(x64);
        if (bad != (size_t)-1) {
            free(x);
            free(y);
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "%s[%zu][%zu] = %g, expected %s", input,
                       bad / classes, bad % classes, v,
                       cosine ? "a cosine in [-1, 1]" : "a finite logit (float32 range)");
        }
    } else {
        amlfs_h5_read(f, input, H5T_NATIVE_FLOAT, x);
    }
    H5Fclose(f);
    for (size_t i = 0; i < (size_t)n * classes; i++)
        if (!isfinite(x[i]) || (cosine && fabsf(x[i]) > 1.0f))
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "%s[%zu][%zu] = %g, expected %s", input,
                       i / classes, i % classes, (double)x[i],
                       cosine ? "a cosine in [-1, 1]" : "a finite logit");
    if (cosine && !(scale > 0 && isfinite(scale)))
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/cosines@scale = %g, expected s > 0", scale);

    const double *theta = t.theta + (size_t)index * 4 * t.intervals;
    amlfs_loss_spec spec = amlfs_thetas_spec(&t, index, scale);
    double *loss = amlfs_zalloc((size_t)n, sizeof(double));
    double *weight = amlfs_zalloc((size_t)n, sizeof(double));
    float *grad = amlfs_zalloc((size_t)n * classes, sizeof(float));
    int clamped = 0;
    double mean = amlfs_searchable_loss(&spec, x, y, n, classes, loss, grad, weight, &clamped);

    amlfs_h5_out o = amlfs_h5_create(out, "loss-output");
    amlfs_attr_set_str(o.file, "/", "space", amlfs_space_names[t.space]);
    amlfs_attr_set_str(o.file, "/", "loss", amlfs_loss_names[t.loss]);
    amlfs_attr_set_i64(o.file, "/", "intervals", t.intervals);
    amlfs_attr_set_i64(o.file, "/", "index", index);
    amlfs_attr_set_f64(o.file, "/", "mean", mean);
    amlfs_attr_set_i64(o.file, "/", "clamped", clamped);
    hsize_t dt[1] = {(hsize_t)(4 * t.intervals)}, dn[1] = {(hsize_t)n},
            dnc[2] = {(hsize_t)n, (hsize_t)classes};
    amlfs_h5_write_f64(o.file, "/theta", 1, dt, theta);
    amlfs_h5_write_f64(o.file, "/loss", 1, dn, loss);
    amlfs_h5_write_f64(o.file, "/weight", 1, dn, weight);
    amlfs_h5_write(o.file, "/grad", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dnc, grad);
    amlfs_h5_finish(&o);
    printf("%s\nmean loss %.10g over %d rows, %d clamped\n", out, mean, n, clamped);
    free(x);
    free(y);
    free(loss);
    free(weight);
    free(grad);
    amlfs_thetas_free(&t);
    return AMLFS_EXIT_OK;
}
