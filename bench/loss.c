/* bench/loss.c: the searchable loss (forward and gradient) against softmax cross-entropy
 * in the same code, N = 512 samples, C = 10, 1,000 and 10,000 classes, the same threads.
 *
 * Cases, each timed as the median (and the minimum) over REPEATS runs of one call (a run
 * repeats the call enough times to last about RUN_SECONDS; the cases are interleaved
 * within each repeat so drifting clocks and other load affect them alike):
 *   ce        amlfs_softmax_ce, loss and gradient
 *   identity  amlfs_searchable_loss, prob space, identity theta (M = 6)
 *   random    the same at identity + N(0, 0.2^2) noise (the policy's sigma), clamps and all
 *   cosine    the cosine space at the identity, s = 16 (informative; no target)
 * Target: identity and random within 1.10x of ce at C >= 1000.
 * Prints a table and the machine; writes bench/results/loss.json (run from the repository
 * root, as `make bench` does). Exit 0 unless it cannot run or write its result; a missed
 * target is reported, not an error, since timings depend on the machine's load.
 */
#include "bench.h"
#include "tool.h"
#include "amlfs_rng.h"
#include "amlfs_kernels.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define N 512
#define M 6
#define REPEATS 31
#define RUN_SECONDS 0.02
#define TARGET_RATIO 1.10
#define RESULT_PATH "bench/results/loss.json"

enum { CASE_CE, CASE_IDENTITY, CASE_RANDOM, CASE_COSINE, NCASES };
static const char *case_names[NCASES] = {"ce", "identity", "random", "cosine"};

/* Test data from the project's own Philox streams (the test stream, never the tools'). */
static amlfs_rng_cursor test_rng = {{0xbe7c4u, 0, 0, AMLFS_STREAM_TEST}, 0};
static double uniform01(void) { return amlfs_next_uniform(&test_rng); }
static double normal01(void) { return amlfs_next_normal(&test_rng); }

typedef struct {
    int c;
    const float *logits, *cosines;
    const int32_t *y;
    float *grad;
    double *loss;
    const amlfs_loss_spec *identity, *random, *cosine;
} bench_inputs;

static volatile double sink; /* the results go somewhere observable */

static void run_case(int which, const bench_inputs *in)
{
    switch (which) {
    case CASE_CE:
        sink += amlfs_softmax_ce(in->logits, in->y, N, in->c, in->loss, in->grad);
        break;
    case CASE_IDENTITY:
        sink += amlfs_searchable_loss(in->identity, in->logits, in->y, N, in->c, in->loss,
                                      in->grad, NULL, NULL);
        break;
    case CASE_RANDOM:
        sink += amlfs_searchable_loss(in->random, in->logits, in->y, N, in->c, in->loss,
                                      in->grad, NULL, NULL);
        break;
    case CASE_COSINE:
        sink += amlfs_searchable_loss(in->cosine, in->cosines, in->y, N, in->c, in->loss,
                                      in->grad, NULL, NULL);
        break;
    }
}

/* Median and minimum seconds per call of each case at C = c. */
static void bench_classes(int c, const amlfs_loss_spec *identity, const amlfs_loss_spec *random,
                          double scale, double median[NCASES], double best[NCASES])
{
    float *logits = malloc((size_t)N * c * sizeof *logits);
    float *cosines = malloc((size_t)N * c * sizeof *cosines);
    float *grad = malloc((size_t)N * c * sizeof *grad);
    int32_t *y = malloc(N * sizeof *y);
    double *loss = malloc(N * sizeof *loss);
    if (!logits || !cosines || !grad || !y || !loss) {
        fprintf(stderr, "bench/loss: error: out of memory\n");
        exit(1);
    }
    for (size_t k = 0; k < (size_t)N * c; k++) {
        logits[k] = (float)(2.0 * normal01());
        cosines[k] = (float)(0.6 * uniform01() - 0.3);
    }
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)(uniform01() * c);
        logits[(size_t)i * c + y[i]] += 3.0f; /* p_y spread over (0, 1) */
        cosines[(size_t)i * c + y[i]] = (float)(uniform01() - 0.2);
    }
    amlfs_loss_spec cosine = {.space = AMLFS_SPACE_COSINE, .intervals = M,
                              .theta = identity->theta, .scale = scale};
    bench_inputs in = {c, logits, cosines, y, grad, loss, identity, random, &cosine};

    /* Calls per run so that one run lasts about RUN_SECONDS (after a warm-up call). */
    int calls[NCASES];
    for (int k = 0; k < NCASES; k++) {
        run_case(k, &in);
        double t0 = amlfs_seconds();
        run_case(k, &in);
        double once = amlfs_seconds() - t0;
        calls[k] = once > 0.0 ? (int)ceil(RUN_SECONDS / once) : 1000;
        if (calls[k] < 1)
            calls[k] = 1;
    }
    double times[NCASES][REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        for (int k = 0; k < NCASES; k++) {
            double t0 = amlfs_seconds();
            for (int q = 0; q < calls[k]; q++)
                run_case(k, &in);
            times[k][r] = (amlfs_seconds() - t0) / calls[k];
        }
    }
    for (int k = 0; k < NCASES; k++) {
        qsort(times[k], REPEATS, sizeof times[k][0], compare_doubles);
        median[k] = times[k][REPEATS / 2];
        best[k] = times[k][0];
    }
    free(logits), free(cosines), free(grad), free(y), free(loss);
}

/* The CPU's model name from /proc/cpuinfo, or "unknown". */
static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += 1 + (colon[1] == ' ');
                colon[strcspn(colon, "\n")] = '\0';
                /* JSON-safe: drop quotes and backslashes */
                size_t k = 0;
                for (char *p = colon; *p && k + 1 < size; p++)
                    if (*p != '"' && *p != '\\')
                        out[k++] = *p;
                out[k] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

int main(void)
{
    static const int classes[] = {10, 1000, 10000};
    enum { NC = sizeof classes / sizeof classes[0] };
    double identity_theta[4 * M], random_theta[4 * M];
    for (int k = 0; k < M; k++) {
        identity_theta[k] = identity_theta[2 * M + k] = 1.0;
        identity_theta[M + k] = identity_theta[3 * M + k] = 0.0;
    }
    for (int k = 0; k < 4 * M; k++)
        random_theta[k] = identity_theta[k] + 0.2 * normal01();
    amlfs_loss_spec identity = {.space = AMLFS_SPACE_PROB, .intervals = M,
                                .theta = identity_theta, .scale = 0.0};
    amlfs_loss_spec random = {.space = AMLFS_SPACE_PROB, .intervals = M,
                              .theta = random_theta, .scale = 0.0};

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    int threads = omp_get_max_threads();
    printf("searchable loss vs softmax cross-entropy, forward + gradient, N = %d, M = %d\n", N,
           M);
    printf("machine: %s, %d OpenMP threads (of %d processors), median of %d runs\n\n", cpu,
           threads, omp_get_num_procs(), REPEATS);
    printf("%7s %12s %12s %12s %12s %10s %10s %10s | %8s %8s\n", "C", "ce us",
           "identity us", "random us", "cosine us", "id/ce", "random/ce", "target",
           "min id", "min rand");

    double median[NC][NCASES], best[NC][NCASES];
    int met = 1;
    for (int ci = 0; ci < NC; ci++) {
        bench_classes(classes[ci], &identity, &random, 16.0, median[ci], best[ci]);
        double r_id = median[ci][CASE_IDENTITY] / median[ci][CASE_CE];
        double r_rand = median[ci][CASE_RANDOM] / median[ci][CASE_CE];
        int applies = classes[ci] >= 1000;
        int ok = !applies || (r_id <= TARGET_RATIO && r_rand <= TARGET_RATIO);
        met &= ok;
        printf("%7d %12.1f %12.1f %12.1f %12.1f %10.3f %10.3f %10s | %8.3f %8.3f\n",
               classes[ci], 1e6 * median[ci][CASE_CE], 1e6 * median[ci][CASE_IDENTITY],
               1e6 * median[ci][CASE_RANDOM], 1e6 * median[ci][CASE_COSINE], r_id, r_rand,
               applies ? (ok ? "met" : "MISSED") : "-",
               best[ci][CASE_IDENTITY] / best[ci][CASE_CE],
               best[ci][CASE_RANDOM] / best[ci][CASE_CE]);
    }
    printf("\ntarget (identity and random within %.2fx of ce at C >= 1000, medians): %s\n"
           "(the min columns: ratios of the fastest runs, less sensitive to a loaded "
           "machine)\n",
           TARGET_RATIO, met ? "met" : "MISSED");

    if (mkdir("bench/results", 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench/loss: error: bench/results: %s\n", strerror(errno));
        return 1;
    }
    FILE *f = fopen(RESULT_PATH, "w");
    if (!f) {
        fprintf(stderr, "bench/loss: error: %s: %s\n", RESULT_PATH, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"bench\": \"loss\",\n  \"cpu\": \"%s\",\n  \"threads\": %d,\n", cpu,
            threads);
    fprintf(f, "  \"n\": %d,\n  \"intervals\": %d,\n  \"repeats\": %d,\n", N, M, REPEATS);
    fprintf(f, "  \"target_ratio\": %.2f,\n  \"target_met\": %s,\n  \"rows\": [\n",
            TARGET_RATIO, met ? "true" : "false");
    for (int ci = 0; ci < NC; ci++) {
        fprintf(f, "    {\"c\": %d", classes[ci]);
        for (int k = 0; k < NCASES; k++)
            fprintf(f, ", \"%s_us\": %.3f", case_names[k], 1e6 * median[ci][k]);
        for (int k = 0; k < NCASES; k++)
            fprintf(f, ", \"%s_min_us\": %.3f", case_names[k], 1e6 * best[ci][k]);
        fprintf(f, ", \"identity_ratio\": %.4f, \"random_ratio\": %.4f",
                median[ci][CASE_IDENTITY] / median[ci][CASE_CE],
                median[ci][CASE_RANDOM] / median[ci][CASE_CE]);
        fprintf(f, ", \"identity_min_ratio\": %.4f, \"random_min_ratio\": %.4f}%s\n",
                best[ci][CASE_IDENTITY] / best[ci][CASE_CE],
                best[ci][CASE_RANDOM] / best[ci][CASE_CE], ci + 1 < NC ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "bench/loss: error: %s: %s\n", RESULT_PATH, strerror(errno));
        return 1;
    }
    printf("wrote %s\n", RESULT_PATH);
    return 0;
}
