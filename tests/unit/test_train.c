/* test_train: four SGD steps of small-cnn and resnet20 through amlfs_train_batch (the
 * step amlfs-train-epoch takes: the schedule's rate of the epoch and batch, the run's
 * first-step flag, momentum, weight decay, Nesterov) with the checkpoint written and read
 * back after the second step (amlfs_checkpoint_write, amlfs_state_read,
 * amlfs_checkpoint_load: momentum buffers included), against PyTorch's SGD over the same
 * steps (tests/fixtures/train.h5, written by tests/fixtures/make_train_fixtures.py).
 * Compared: for every parameter the change of the weights (final - initial) and the
 * momentum buffer, for every buffer its final value: sampled elements within
 * TOL (|want| + max |want|), and the sums of the values over the whole tensor within
 * TOL of the sums of their magnitudes; a weight's change with 2 float32 ulps of the
 * tensor's largest weight more (what a float32 weight can hold of it). The changes are
 * compared rather than the weights, so that weight decay on a batch-norm scale (a few
 * per cent of its change) is far above the tolerance. The reference is PyTorch in
 * float64 on batches chosen for their conditioning (see the fixture script). */
#include "check.h"
#include "checkpoint.h"
#include "tool.h"
#include "train.h"

#include <float.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 3e-4
#define MAX_STEPS 8

static int read_ints(hid_t f, const char *path, int *buf, size_t n)
{
    hsize_t dims[8];
    int rank;
    if (H5LTget_dataset_ndims(f, path, &rank) < 0 ||
        H5LTget_dataset_info(f, path, dims, NULL, NULL) < 0)
        return -1;
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= dims[i];
    return count == n ? H5LTread_dataset_int(f, path, buf) : -1;
}

static size_t dataset_size(hid_t f, const char *path)
{
    hsize_t dims[8];
    int rank;
    if (!H5LTpath_valid(f, path, 1) || H5LTget_dataset_ndims(f, path, &rank) < 0 ||
        H5LTget_dataset_info(f, path, dims, NULL, NULL) < 0)
        return 0;
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= dims[i];
    return count;
}

static double worst_seen;

/* got (the whole tensor, n elements) against the fixture's sampled elements and sums */
static void compare(hid_t f, const char *model, const char *which, const char *kind,
                    const char *name, const float *got, size_t n, double ulp)
{
    char path[256], ipath[256], spath[256];
    snprintf(path, sizeof path, "%s/%s/%s/%s", model, which, kind, name);
    snprintf(ipath, sizeof ipath, "%s/index/%s", model, name);
    snprintf(spath, sizeof spath, "%s/%s/stats/%s/%s", model, which, kind, name);
    size_t k = dataset_size(f, path);
    CHECK(k > 0 && dataset_size(f, ipath) == k && dataset_size(f, spath) == 3,
          "%s: missing from the fixture", path);
    if (!(k > 0 && dataset_size(f, ipath) == k && dataset_size(f, spath) == 3))
        return;
    int *idx = malloc(k * sizeof(int));
    float *want = malloc(k * sizeof(float));
    double stats[3];
    read_ints(f, ipath, idx, k);
    H5LTread_dataset_float(f, path, want);
    H5LTread_dataset_double(f, spath, stats);
    double peak = 0, worst = 0;
    for (size_t i = 0; i < k; i++)
        peak = fmax(peak, fabs(want[i]));
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < k; i++) {
        CHECK(idx[i] >= 0 && (size_t)idx[i] < n, "%s: index %d outside %zu", ipath, idx[i], n);
        if (idx[i] < 0 || (size_t)idx[i] >= n)
            break;
        double err = fabs((double)got[idx[i]] - want[i]);
        double tol = TOL * (fabs(want[i]) + peak) + ulp;
        if (!(err <= tol) && !bad++)
            first_bad = i;
        worst = fmax(worst, err / (tol > 0 ? tol : 1e-300));
    }
    CHECK(bad == 0, "%s: %zu of %zu sampled elements off; element %d: got %.9g, want %.9g "
          "(worst error/tolerance %.3g)", path, bad, k, idx[first_bad], got[idx[first_bad]],
          want[first_bad], worst);
    double sum = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        sum += got[i];
        mag += fabs(got[i]);
    }
    double sum_tol = TOL * stats[1] + ulp * (double)n;
    double sum_err = fabs(sum - stats[0]) / (sum_tol > 0 ? sum_tol : 1e-300);
    CHECK(sum_err <= 1, "%s: sum over the %zu elements %.9g, want %.9g (error/tolerance %.3g)",
          path, n, sum, stats[0], sum_err);
    worst = fmax(worst, sum_err);
    worst_seen = fmax(worst_seen, worst);
    printf("  %-58s %7zu elements, worst error/tolerance %.3g\n", path, n, worst);
    free(idx);
    free(want);
}

static float *download(amlfs_context *ctx, const float *dev, size_t n)
{
    float *host = malloc(n * sizeof(float));
    amlfs_download(ctx, host, dev, n * sizeof(float));
    return host;
}

static void run_case(amlfs_context *ctx, hid_t f, const char *model, const char *which,
                     const char *dir)
{
    char path[256];
    int channels = strcmp(model, "small-cnn") ? 3 : 1, size = channels == 3 ? 32 : 28;
    long long n = 0, steps_n = 0, seed = 0, epochs = 0, batches = 0, after = 0, nesterov = 0;
    double base_lr = 0, momentum = 0, wd = 0;
    snprintf(path, sizeof path, "%s/%s", model, which);
    H5LTget_attribute_long_long(f, model, "n", &n);
    H5LTget_attribute_long_long(f, model, "seed", &seed);
    H5LTget_attribute_long_long(f, model, "epochs", &epochs);
    H5LTget_attribute_long_long(f, model, "batches", &batches);
    H5LTget_attribute_long_long(f, model, "checkpoint_after", &after);
    H5LTget_attribute_double(f, model, "base_lr", &base_lr);
    H5LTget_attribute_double(f, model, "momentum", &momentum);
    H5LTget_attribute_double(f, model, "weight_decay", &wd);
    H5LTget_attribute_long_long(f, path, "nesterov", &nesterov);
    snprintf(path, sizeof path, "%s/epoch", model);
    steps_n = (long long)dataset_size(f, path);
    CHECK(n > 0 && n <= 64 && steps_n > after && steps_n <= MAX_STEPS && after > 0 &&
          batches > 0 && epochs > 0, "%s: fixture attributes", model);
    if (!(n > 0 && n <= 64 && steps_n > after && steps_n <= MAX_STEPS && after > 0))
        return;
    int epoch[MAX_STEPS], batch[MAX_STEPS];
    read_ints(f, path, epoch, (size_t)steps_n);
    snprintf(path, sizeof path, "%s/batch", model);
    read_ints(f, path, batch, (size_t)steps_n);
    size_t pixels = (size_t)n * channels * size * size;
    float *xs = malloc((size_t)steps_n * pixels * sizeof(float));
    int32_t *labels = malloc((size_t)steps_n * n * sizeof(int32_t));
    snprintf(path, sizeof path, "%s/%s/x", model, which);
    CHECK(dataset_size(f, path) == (size_t)steps_n * pixels, "%s: missing or of another size",
          path);
    H5LTread_dataset_float(f, path, xs);
    snprintf(path, sizeof path, "%s/%s/labels", model, which);
    H5LTread_dataset_int(f, path, labels);

    /* the state amlfs-init writes, with the fixture's settings */
    amlfs_train_state st;
    memset(&st, 0, sizeof st);
    amlfs_model_defaults(&st, model);
    st.shape.classes = 10;
    st.shape.channels = channels;
    st.shape.height = st.shape.width = size;
    st.shape.batch = (int)n;
    snprintf(st.dataset, sizeof st.dataset, channels == 3 ? "cifar10" : "fashion-mnist");
    st.schedule = AMLFS_SCHEDULE_COSINE;
    st.lr = base_lr;
    st.epochs = epochs;
    st.momentum = momentum;
    st.weight_decay = wd;
    st.nesterov = nesterov;
    st.seed = seed;
    st.status = AMLFS_STATUS_OK;
    st.space = AMLFS_SPACE_PROB;
    snprintf(st.device, sizeof st.device, "cpu: test_train");
    st.intervals = 6;
    st.threads = 1;
    st.train_loss = st.train_top1 = 0.5;
    double theta[24] = {0}; /* the identity: cross-entropy */
    for (int j = 0; j < 6; j++)
        theta[j] = theta[12 + j] = 1.0;
    st.theta = malloc(sizeof theta);
    memcpy(st.theta, theta, sizeof theta);
    amlfs_loss_spec spec = {.space = AMLFS_SPACE_PROB, .intervals = 6,
                            .theta = theta, .scale = 0};

    char err[256];
    amlfs_model *m = amlfs_model_create(ctx, &st.shape, (uint32_t)seed, err, sizeof err);
    CHECK(m != NULL, "%s: %s", model, err);
    if (!m)
        return;
    int nt = amlfs_model_tensor_count(m);
    float **init = calloc((size_t)nt, sizeof(float *));
    for (int i = 0; i < nt; i++) {
        amlfs_tensor *t = amlfs_model_tensor(m, i);
        if (t->kind == TENSOR_PARAM)
            init[i] = download(ctx, t->data, t->size);
    }
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/%s-%s.h5", dir, model, which);
    int64_t correct = 0, clamped = 0;
    for (int s = 0; s < steps_n; s++) {
        if (s == after) { /* the checkpoint written, and a new model read from it */
            st.epoch = epoch[s - 1];
            amlfs_checkpoint_write(&st, m, ctx, ckpt);
            amlfs_model_destroy(m);
            amlfs_state_free(&st);
            amlfs_state_read(&st, ckpt);
            CHECK(st.optim_steps == after, "%s: optim_steps %lld after %lld steps", ckpt,
                  (long long)st.optim_steps, after);
            m = amlfs_model_create(ctx, &st.shape, (uint32_t)st.seed + 1, err, sizeof err);
            CHECK(m != NULL, "%s: %s", model, err);
            if (!m)
                return;
            amlfs_checkpoint_load(m, ctx, ckpt);
        }
        const float *x = xs + (size_t)s * pixels;
        amlfs_schedule sched = amlfs_state_schedule(&st);
        double loss = amlfs_train_batch(m, &st, &sched, epoch[s], batch[s], (int)batches, x,
                                        labels + (size_t)s * n, (int)n, &spec, &correct,
                                        &clamped);
        CHECK(isfinite(loss), "%s %s step %d: loss %g", model, which, s + 1, loss);
    }
    CHECK(st.optim_steps == steps_n, "%s: optim_steps %lld after %lld steps", model,
          (long long)st.optim_steps, steps_n);
    printf("%s, %s:\n", model, which);
    for (int i = 0; i < nt; i++) {
        amlfs_tensor *t = amlfs_model_tensor(m, i);
        float *now = download(ctx, t->data, t->size);
        if (t->kind == TENSOR_PARAM) {
            /* the change as float32 weights hold it: 2 ulps of the largest weight */
            double big = 0;
            for (size_t j = 0; j < t->size; j++) {
                big = fmax(big, fmax(fabs(now[j]), fabs(init[i][j])));
                now[j] -= init[i][j];
            }
            compare(f, model, which, "delta", t->name, now, t->size, 2 * FLT_EPSILON * big);
            float *mom = download(ctx, t->momentum, t->size);
            compare(f, model, which, "momentum_buffer", t->name, mom, t->size, 0);
            free(mom);
        } else {
            compare(f, model, which, "buffer", t->name, now, t->size, 0);
        }
        free(now);
        free(init[i]);
    }
    free(init);
    unlink(ckpt);
    amlfs_model_destroy(m);
    amlfs_state_free(&st);
    free(xs);
    free(labels);
}

int main(void)
{
    amlfs_tool_start("test_train");
    hid_t f = H5Fopen("tests/fixtures/train.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "test_train: cannot open tests/fixtures/train.h5 (run from the repo root)\n");
        return 1;
    }
    char dir[] = "/tmp/amlfs-test-train-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char err[256];
    amlfs_device cpu = {AMLFS_DEVICE_CPU, 0, 0};
    amlfs_context *ctx = amlfs_context_create(cpu, 1, err, sizeof err);
    CHECK(ctx != NULL, "context: %s", err);
    if (ctx) {
        const char *models[] = {"small-cnn", "resnet20"}, *cases[] = {"momentum", "nesterov"};
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                run_case(ctx, f, models[i], cases[j], dir);
        amlfs_context_destroy(ctx);
    }
    rmdir(dir);
    H5Fclose(f);
    printf("worst error/tolerance over all tensors: %.3g\n", worst_seen);
    return check_done("test_train");
}
