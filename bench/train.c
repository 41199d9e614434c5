/* bench/train.c: training throughput and peak memory of the model API on a device (the
 * CPU by default, or a GPU with --device cuda[:N] in the CUDA build, build/cuda/bench-train):
 * amlfs_model_create, then amlfs_model_train_step with the identity theta (the loss is
 * cross-entropy) on a synthetic batch, for
 *   small-cnn  batch 100, 1x28x28, 10 classes, lr 0.05   (the Fashion-MNIST defaults)
 *   resnet20   batch 128, 3x32x32, 10 classes, lr 0.1    (the CIFAR-10 defaults)
 * with momentum 0.9 and weight decay 5e-4 (DESIGN.md 2, defaults table).
 *
 * Each model runs in its own forked process, so its peak resident memory (ru_maxrss,
 * from wait4) is its own: libraries, the oneDNN context, the model, its activations and
 * plans. The first WARMUP steps (oneDNN's JIT, page faults) are not timed; then WINDOWS
 * timed windows of about SECONDS each (whole steps), and images per second is the median
 * over the windows. Each window ends with amlfs_wait, so a GPU's queued work is in it
 * (each step also waits for its logits). On a GPU the memory the device has in use
 * (cudaMemGetInfo: total - free, the CUDA context and any other process included) is
 * reported after the context was made and after training, with the model still alive.
 * bench/train runs this next to the same models in PyTorch (bench/train_torch.py) and
 * compares; this program alone measures the amlfs side.
 *
 * Prints a table and writes JSON (default bench/results/train-amlfs.json; run from the
 * repository root, as `make bench` does). Exit 0 unless it cannot run or write its
 * result; speed targets are compared by bench/train, never asserted here.
 */
#include "bench.h"
#include "tool.h"
#include "model.h"
#include "amlfs_rng.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESULT_PATH "bench/results/train-amlfs.json"
#define MAX_WINDOWS 64
#define M 6 /* intervals of the identity theta */

/* The CUDA runtime's, when linked (build/cuda/bench-train): a weak reference, NULL in the
 * CPU-only build, so this file needs no CUDA headers. Returns a cudaError_t (0: success)
 * for the current device, the one the context made current. */
extern int cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) __attribute__((weak));

static const char usage[] =
    "usage: build/rel/bench/train [--model small-cnn|resnet20|all] [--device D]\n"
    "                             [--threads N] [--warmup S] [--windows W] [--seconds T]\n"
    "                             [--json FILE | --no-json]\n"
    "\n"
    "Training throughput (images/s) and peak memory of small-cnn (batch 100, 1x28x28)\n"
    "and resnet20 (batch 128, 3x32x32) through amlfs_model_train_step with the identity\n"
    "theta, each model in its own process. bench/train compares it with PyTorch.\n"
    "\n"
    "  --model NAME   small-cnn | resnet20 | all (default all)\n"
    "  --device D     cpu or cuda[:N], the GPU of ordinal N (default cpu); cuda needs the\n"
    "                 CUDA build, build/cuda/bench-train (make cuda)\n"
    "  --threads N    CPU threads (default: the OpenMP default)\n"
    "  --warmup S     untimed steps first (default 3)\n"
    "  --windows W    timed windows, the median is reported (default 5, at most 64)\n"
    "  --seconds T    length of a window in seconds, in whole steps (default 1.0)\n"
    "  --json FILE    where to write the results (default " RESULT_PATH ")\n"
    "  --no-json      write no file\n"
    "  --help\n";

typedef struct {
    const char *model;
    int batch, channels, height, width, classes;
    double lr;
} bench_case;

static const bench_case cases[] = {
    {"small-cnn", 100, 1, 28, 28, 10, 0.05},
    {"resnet20", 128, 3, 32, 32, 10, 0.1},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

typedef struct {
    int warmup, windows;
    double seconds;
    int threads; /* 0: the OpenMP default */
    amlfs_device device;
    char device_name[32]; /* as given: "cpu", "cuda:0" */
} bench_options;

/* What a model's process reports to the parent through a pipe. */
typedef struct {
    int ok;
    char err[256];
    char context[160];
    size_t parameters;
    double create_s;     /* amlfs_model_create: buffers, plans, initialisation */
    double first_step_s; /* the first step, JIT included */
    int steps_per_window, windows;
    double ips[MAX_WINDOWS]; /* images per second of each window */
    double base_mb;          /* peak resident memory before the model was created */
    double last_loss;
    int gpu;                 /* the device memory below was measured */
    double gpu_base_mb;      /* device memory in use once the context was made */
    double gpu_used_mb;      /* and after training, the model alive */
} child_result;

/* What the parent adds. */
typedef struct {
    child_result r;
    double median_ips, min_ips, max_ips, step_ms, peak_mb;
} case_result;

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

/* Device memory in use on the current GPU in MB, or -1 where it cannot be read. */
static double gpu_used_mb(void)
{
    size_t free_bytes = 0, total_bytes = 0;
    if (!cudaMemGetInfo || cudaMemGetInfo(&free_bytes, &total_bytes) != 0)
        return -1.0;
    return (double)(total_bytes - free_bytes) / (1024.0 * 1024.0);
}

/* The model's process: build, warm up, time the windows. */
static void run_case(const bench_case *c, const bench_options *o, child_result *r)
{
    memset(r, 0, sizeof *r);
    char err[256] = "";
    amlfs_context *ctx = amlfs_context_create(o->device, o->threads, err, sizeof err);
    if (!ctx) {
        snprintf(r->err, sizeof r->err, "context: %s", err);
        return;
    }
    snprintf(r->context, sizeof r->context, "%s", amlfs_context_describe(ctx));
    const int gpu = o->device.kind == AMLFS_DEVICE_CUDA;
    if (gpu)
        r->gpu_base_mb = gpu_used_mb();
    size_t image = (size_t)c->channels * c->height * c->width;
    float *x = malloc((size_t)c->batch * image * sizeof *x);
    int32_t *y = malloc((size_t)c->batch * sizeof *y);
    if (!x || !y) {
        snprintf(r->err, sizeof r->err, "out of memory");
        goto done;
    }
    /* a normalised-looking batch and uniform labels, from the benchmarks' stream */
    amlfs_rng_name pixels = amlfs_rng(1, 0, 0, AMLFS_STREAM_TEST);
    amlfs_rng_name labels = amlfs_rng(1, 0, 1, AMLFS_STREAM_TEST);
    for (size_t i = 0; i < (size_t)c->batch * image; i++)
        x[i] = (float)amlfs_rng_normal(pixels, i);
    for (int i = 0; i < c->batch; i++)
        y[i] = (int32_t)amlfs_rng_below(labels, (uint64_t)i, (uint32_t)c->classes);
    double theta[4 * M];
    for (int k = 0; k < M; k++) {
        theta[k] = theta[2 * M + k] = 1.0;
        theta[M + k] = theta[3 * M + k] = 0.0;
    }
    amlfs_loss_spec spec = {.space = AMLFS_SPACE_PROB, .intervals = M,
                            .theta = theta, .scale = 0.0};
    amlfs_model_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.model = (amlfs_model_kind)amlfs_choice_index(amlfs_model_names, c->model);
    shape.classes = c->classes;
    shape.channels = c->channels;
    shape.height = c->height;
    shape.width = c->width;
    shape.batch = c->batch;

    r->base_mb = peak_rss_mb();
    double t0 = amlfs_seconds();
    amlfs_model *m = amlfs_model_create(ctx, &shape, 1, err, sizeof err);
    r->create_s = amlfs_seconds() - t0;
    if (!m) {
        snprintf(r->err, sizeof r->err, "%s: %s", c->model, err);
        goto done;
    }
    r->parameters = amlfs_model_parameters(m);
    int64_t correct = 0, clamped = 0;
    double step_s = 0.0;
    for (int s = 0; s < o->warmup || s < 1; s++) {
        t0 = amlfs_seconds();
        r->last_loss = amlfs_model_train_step(m, x, y, c->batch, &spec, c->lr, 0.9, 5e-4, 0,
                                              s == 0, &correct, &clamped);
        amlfs_wait(ctx);
        step_s = amlfs_seconds() - t0;
        if (s == 0)
            r->first_step_s = step_s;
    }
    r->steps_per_window = step_s > 0 ? (int)ceil(o->seconds / step_s) : 1;
    if (r->steps_per_window < 1)
        r->steps_per_window = 1;
    r->windows = o->windows;
    for (int w = 0; w < o->windows; w++) {
        t0 = amlfs_seconds();
        for (int s = 0; s < r->steps_per_window; s++)
            r->last_loss = amlfs_model_train_step(m, x, y, c->batch, &spec, c->lr, 0.9, 5e-4,
                                                  0, 0, &correct, &clamped);
        amlfs_wait(ctx); /* the window's last step done, on any device */
        r->ips[w] = (double)c->batch * r->steps_per_window / (amlfs_seconds() - t0);
    }
    if (gpu) {
        r->gpu_used_mb = gpu_used_mb();
        r->gpu = r->gpu_base_mb >= 0 && r->gpu_used_mb >= 0;
    }
    if (!isfinite(r->last_loss))
        snprintf(r->err, sizeof r->err, "%s: the loss became %g", c->model, r->last_loss);
    else
        r->ok = 1;
    amlfs_model_destroy(m);
done:
    free(x);
    free(y);
    amlfs_context_destroy(ctx);
}

/* Runs one case in a child process; 0 on success, else -1 with the reason in res. */
static int measure(const bench_case *c, const bench_options *o, case_result *res)
{
    memset(res, 0, sizeof *res);
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(res->r.err, sizeof res->r.err, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->r.err, sizeof res->r.err, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) { /* no OpenMP ran in the parent, so the child may start its own */
        close(fd[0]);
        child_result r;
        run_case(c, o, &r);
        const char *p = (const char *)&r;
        size_t left = sizeof r;
        while (left) {
            ssize_t k = write(fd[1], p, left);
            if (k <= 0)
                _exit(1);
            p += k, left -= (size_t)k;
        }
        _exit(r.ok ? 0 : 1);
    }
    close(fd[1]);
    char *p = (char *)&res->r;
    size_t got = 0;
    while (got < sizeof res->r) {
        ssize_t k = read(fd[0], p + got, sizeof res->r - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    if (got != sizeof res->r) {
        memset(&res->r, 0, sizeof res->r);
        snprintf(res->r.err, sizeof res->r.err, "%s: the measuring process died (%s %d)",
                 c->model, WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return -1;
    }
    if (!res->r.ok)
        return -1;
    res->peak_mb = (double)ru.ru_maxrss / 1024.0;
    double sorted[MAX_WINDOWS];
    memcpy(sorted, res->r.ips, sizeof(double) * res->r.windows);
    qsort(sorted, res->r.windows, sizeof sorted[0], compare_doubles);
    res->median_ips = sorted[res->r.windows / 2];
    res->min_ips = sorted[0];
    res->max_ips = sorted[res->r.windows - 1];
    res->step_ms = 1e3 * c->batch / res->median_ips;
    return 0;
}

static int write_json(const char *path, const bench_options *o, const case_result *res,
                      const int *ran)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const char *context = "";
    for (int i = 0; i < NCASES; i++)
        if (ran[i])
            context = res[i].r.context;
    fprintf(f, "{\n  \"bench\": \"train-amlfs\",\n  \"context\": \"%s\",\n", context);
    fprintf(f, "  \"device\": \"%s\",\n", o->device_name);
    fprintf(f, "  \"threads_requested\": %d,\n  \"warmup_steps\": %d,\n  \"windows\": %d,\n"
               "  \"window_seconds\": %.3f,\n  \"rows\": [\n",
            o->threads, o->warmup, o->windows, o->seconds);
    int first = 1;
    for (int i = 0; i < NCASES; i++) {
        if (!ran[i])
            continue;
        const bench_case *c = &cases[i];
        const case_result *r = &res[i];
        fprintf(f, "%s    {\"model\": \"%s\", \"batch\": %d, \"image\": [%d, %d, %d], "
                   "\"classes\": %d, \"parameters\": %zu,\n",
                first ? "" : ",\n", c->model, c->batch, c->channels, c->height, c->width,
                c->classes, r->r.parameters);
        fprintf(f, "     \"images_per_s\": %.2f, \"images_per_s_min\": %.2f, "
                   "\"images_per_s_max\": %.2f, \"step_ms\": %.3f,\n",
                r->median_ips, r->min_ips, r->max_ips, r->step_ms);
        fprintf(f, "     \"window_images_per_s\": [");
        for (int w = 0; w < r->r.windows; w++)
            fprintf(f, "%s%.2f", w ? ", " : "", r->r.ips[w]);
        fprintf(f, "], \"steps_per_window\": %d,\n", r->r.steps_per_window);
        fprintf(f, "     \"create_ms\": %.3f, \"first_step_ms\": %.3f, \"peak_mb\": %.1f, "
                   "\"base_mb\": %.1f",
                1e3 * r->r.create_s, 1e3 * r->r.first_step_s, r->peak_mb, r->r.base_mb);
        if (r->r.gpu) /* device memory, total - free: the context's and other processes' too */
            fprintf(f, ",\n     \"gpu_mem_used_mb\": %.1f, \"gpu_mem_base_mb\": %.1f",
                    r->r.gpu_used_mb, r->r.gpu_base_mb);
        fprintf(f, "}");
        first = 0;
    }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f);
}

static long parse_int(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench/train: error: %s: '%s', expected an integer in [%ld, %ld]\n",
                opt, s, lo, hi);
        exit(2);
    }
    return v;
}

/* "cpu", "cuda" or "cuda:N" */
static void parse_device(const char *s, bench_options *o)
{
    o->device.kind = AMLFS_DEVICE_CPU;
    o->device.index = 0;
    if (!strcmp(s, "cpu")) {
        snprintf(o->device_name, sizeof o->device_name, "cpu");
        return;
    }
    if (!strcmp(s, "cuda") || !strncmp(s, "cuda:", 5)) {
        o->device.kind = AMLFS_DEVICE_CUDA;
        if (s[4] == ':')
            o->device.index = (int)parse_int("--device", s + 5, 0, 1023);
        snprintf(o->device_name, sizeof o->device_name, "cuda:%d", o->device.index);
        return;
    }
    fprintf(stderr, "bench/train: error: --device: '%s', expected cpu, cuda or cuda:N\n", s);
    exit(2);
}

int main(int argc, char **argv)
{
    bench_options o = {3, 5, 1.0, 0, {AMLFS_DEVICE_CPU, 0, 0}, "cpu"};
    const char *model = "all", *json = RESULT_PATH;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'}, {"windows", required_argument, 0, 'W'},
        {"seconds", required_argument, 0, 's'}, {"json", required_argument, 0, 'j'},
        {"no-json", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': parse_device(optarg, &o); break;
        case 't': o.threads = (int)parse_int("--threads", optarg, 1, 4096); break;
        case 'w': o.warmup = (int)parse_int("--warmup", optarg, 1, 100000); break;
        case 'W': o.windows = (int)parse_int("--windows", optarg, 1, MAX_WINDOWS); break;
        case 's': {
            char *end;
            o.seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o.seconds > 0 && o.seconds <= 3600)) {
                fprintf(stderr, "bench/train: error: --seconds: '%s', expected (0, 3600]\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'j': json = optarg; break;
        case 'n': json = NULL; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            fprintf(stderr, "bench/train: error: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench/train: error: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    int ran[NCASES] = {0}, any = 0;
    for (int i = 0; i < NCASES; i++)
        any |= ran[i] = !strcmp(model, "all") || !strcmp(model, cases[i].model);
    if (!any) {
        fprintf(stderr, "bench/train: error: --model: '%s', expected small-cnn, resnet20 or all\n",
                model);
        return 2;
    }

    printf("train: amlfs_model_train_step, identity theta, synthetic batches; each model in "
           "its own process\n");
    printf("%d warm-up steps, median of %d windows of about %.1f s\n\n", o.warmup, o.windows,
           o.seconds);
    const int gpu = o.device.kind == AMLFS_DEVICE_CUDA;
    printf("%-10s %6s %12s %10s %10s %9s %9s %9s %8s %8s%s\n", "model", "batch", "images/s",
           "min", "max", "step ms", "create ms", "1st ms", "peak MB", "base MB",
           gpu ? "   GPU MB GPU base" : "");
    case_result res[NCASES];
    const char *context = NULL;
    for (int i = 0; i < NCASES; i++) {
        if (!ran[i])
            continue;
        if (measure(&cases[i], &o, &res[i]) != 0) {
            fprintf(stderr, "bench/train: error: %s\n", res[i].r.err);
            return 1;
        }
        const case_result *r = &res[i];
        printf("%-10s %6d %12.1f %10.1f %10.1f %9.2f %9.2f %9.2f %8.1f %8.1f", cases[i].model,
               cases[i].batch, r->median_ips, r->min_ips, r->max_ips, r->step_ms,
               1e3 * r->r.create_s, 1e3 * r->r.first_step_s, r->peak_mb, r->r.base_mb);
        if (gpu && r->r.gpu)
            printf(" %8.1f %8.1f", r->r.gpu_used_mb, r->r.gpu_base_mb);
        else if (gpu)
            printf(" %8s %8s", "n/a", "n/a");
        printf("\n");
        fflush(stdout);
        context = r->r.context;
    }
    printf("\n%s\n", context);
    printf("peak MB: the model's process (ru_maxrss); base MB: its peak before the model "
           "was created\n");
    if (gpu)
        printf("GPU MB: device memory in use after training (cudaMemGetInfo, the CUDA context "
               "included); GPU base: once the context was made\n");

    if (json) {
        if (!strcmp(json, RESULT_PATH) && mkdir("bench/results", 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "bench/train: error: bench/results: %s\n", strerror(errno));
            return 1;
        }
        if (write_json(json, &o, res, ran) != 0) {
            fprintf(stderr, "bench/train: error: %s: %s\n", json, strerror(errno));
            return 1;
        }
        printf("wrote %s\n", json);
    }
    return 0;
}
