/* amlfs-loss: the searchable loss of one theta and its gradient on a user's batch, so
 * it can be compared with another framework's (DESIGN.md 2). */
#include "amlfs_kernels.h"
#include "h5io.h"
#include "policy.h"
#include "tool.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-loss --thetas thetas.h5 --index I --input in.h5 --out out.h5\n"
    "\n"
    "Computes L(f, y; theta_I) per row, its mean, and the gradient of the mean with\n"
    "respect to the logits (prob space) or the cosines (cosine space).\n"
    "The input (schema loss-input) holds /targets (N) int32 and either /logits (N,C)\n"
    "float32 (prob space) or /cosines (N,C) float32 with the attribute scale (cosine).\n"
    "The output (schema loss-output) holds /loss (N), /weight (N) = -p_y dL/dp_y\n"
    "(the gradient weight relative to cross-entropy, 1 at the identity),\n"
    "/grad (N,C), the attributes mean and clamped, and the theta used.\n"
    "\n"
    "  --thetas FILE    a thetas file (amlfs-sample)\n"
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
    int cosine = !strcmp(t.space, "cosine");

    hid_t f = amlfs_h5_open(in_path, "loss-input");
    const char *input = amlfs_h5_exists(f, "/logits") ? "/logits" : "/cosines";
    if (cosine != !strcmp(input, "/cosines"))
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "holds %s, but theta is of the %s space (%s)",
                   input, t.space, cosine ? "needs /cosines" : "needs /logits");
    hsize_t dims[8];
    amlfs_h5_dims(f, input, dims);
    int n = (int)dims[0], classes = (int)dims[1];
    if (n < 1 || classes < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "%s: shape (%d,%d), expected N >= 1, C >= 2",
                   input, n, classes);
    float *x = amlfs_zalloc((size_t)n * classes, sizeof(float));
    int32_t *y = amlfs_zalloc((size_t)n, sizeof(int32_t));
    amlfs_h5_read(f, input, H5T_NATIVE_FLOAT, x);
    amlfs_h5_read(f, "/targets", H5T_NATIVE_INT32, y);
    double scale = cosine ? amlfs_attr_f64(f, "/cosines", "scale") : 0.0;
    H5Fclose(f);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes)
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/targets[%d] = %d, expected 0 to %d", i,
                       (int)y[i], classes - 1);
    for (size_t i = 0; i < (size_t)n * classes; i++)
        if (!isfinite(x[i]) || (cosine && fabsf(x[i]) > 1.0f))
            amlfs_fail(AMLFS_EXIT_USAGE, in_path, "%s[%zu][%zu] = %g, expected %s", input,
                       i / classes, i % classes, (double)x[i],
                       cosine ? "a cosine in [-1, 1]" : "a finite logit");
    if (cosine && !(scale > 0 && isfinite(scale)))
        amlfs_fail(AMLFS_EXIT_USAGE, in_path, "/cosines@scale = %g, expected s > 0", scale);

    const double *theta = t.theta + (size_t)index * 4 * t.intervals;
    amlfs_loss_spec spec = {cosine ? AMLFS_SPACE_COSINE : AMLFS_SPACE_PROB,
                            (int)t.intervals, theta, scale};
    double *loss = amlfs_zalloc((size_t)n, sizeof(double));
    double *weight = amlfs_zalloc((size_t)n, sizeof(double));
    float *grad = amlfs_zalloc((size_t)n * classes, sizeof(float));
    int clamped = 0;
    double mean = amlfs_searchable_loss(&spec, x, y, n, classes, loss, grad, weight, &clamped);

    amlfs_h5_out o = amlfs_h5_create(out, "loss-output");
    amlfs_attr_set_str(o.file, "/", "space", t.space);
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
