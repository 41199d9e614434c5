/* config.c: the config key table and its one reader and resolver (config.h). */
#include "config.h"

#include "tool.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* key, kind, range or choices, default ("@": computed, see fallback_of), meaning. The
 * order is RUN/config's. */
const amlfs_config_key amlfs_config_keys[] = {
    {"dataset", "choice", "fashion-mnist,cifar10,face,market1501,dukemtmc", "fashion-mnist",
     "the data set"},
    {"src", "path", "", "@",
     "its source folder (fashion-mnist: /usr/share/datasets/fashion-mnist; face: a folder with "
     "train/ (one sub-folder per identity), lfw/ with lfw/pairs.txt, and optionally probe/ "
     "and distractors/, as amlfs-synth face writes it; market1501, dukemtmc: the released "
     "folder with bounding_box_train/, query/ and bounding_box_test/)"},
    {"data", "path", "", "", "a prepared dataset file to use instead (linked as RUN/data/data.h5)"},
    {"train_size", "int-or-all", "1..10000000", "all", "training images kept after the validation split"},
    {"val_size", "int", "1..10000000", "5000", "validation images, carved from the training images (stratified)"},
    {"size", "hxw", "", "@", "face, re-ID: the images' HxW after resizing (112x96; 256x128)"},
    {"val_identities", "int", "2..1000000", "@",
     "face, re-ID: training identities held out for the validation pairs or query/gallery "
     "(10; 100)"},
    {"val_pairs", "int", "2..100000000", "1000", "face: validation pairs (half same, half different)"},
    {"noise", "float", "0..1", "0", "training label-noise ratio"},
    {"noise_kind", "choice", "symmetric,pair", "symmetric", "how noisy labels are drawn"},
    {"model", "choice", "small-cnn,resnet20,sphere20,face-small,resnet50,reid-small", "@",
     "architecture (fashion-mnist: small-cnn; cifar10: resnet20; face: sphere20; "
     "market1501, dukemtmc: resnet50)"},
    {"scale", "float", "0.001..10000", "@",
     "cosine heads (sphere20, face-small, resnet50, reid-small): the scale s of the "
     "cosine-space loss (64; 64; 64; re-ID 16)"},
    {"batch", "int", "1..65536", "@", "training batch size (100; 128; 256)"},
    {"lr", "float", "0..1000", "@", "base learning rate (0.05; 0.1; 0.1)"},
    {"momentum", "float", "0..0.9999", "0.9", "SGD momentum"},
    {"nesterov", "choice", "0,1", "0", "1: Nesterov momentum"},
    {"weight_decay", "float", "0..1", "0.0005", "L2 weight decay"},
    {"schedule", "choice", "cosine,step", "cosine", "learning-rate schedule over the run"},
    {"warmup", "float", "0..10000", "0", "epochs of linear warm-up"},
    {"epochs", "int", "1..100000", "@", "epochs of the search (12; 200; 15; re-ID 140)"},
    {"step", "float", "0.001..100000", "30", "step schedule: epochs between decays"},
    {"gamma", "float", "0..1", "0.1", "step schedule: decay factor"},
    {"milestones", "epoch-list", "", "",
     "step schedule: the epochs at which the rate is multiplied by gamma, e.g. 16,24 "
     "(increasing, > 0; fractions fall inside an epoch; empty: every step epochs)"},
    {"augment", "choice", "none,crop-flip,flip,reid", "@",
     "augmentation (none; crop-flip; flip: a horizontal flip with probability 1/2; reid: "
     "flip, 10-pixel pad and crop, random erasing)"},
    {"sampler", "choice", "random,pk", "random",
     "the epoch's order: random, a permutation; pk, batches of p identities x k images "
     "(torchreid's RandomIdentitySampler; batch = p x k)"},
    {"p", "int", "1..65536", "16", "sampler pk: identities per batch (the strong baseline's 16)"},
    {"k", "int", "1..65536", "4",
     "sampler pk: images per identity (4; an identity with fewer is drawn with replacement)"},
    {"mode", "choice", "amlfs,random,fixed,replay", "amlfs",
     "amlfs searches; random samples around mu_1; fixed trains B copies of one loss; replay "
     "trains one model with a finished run's loss"},
    {"samples", "int", "1..65536", "@", "B, samples per epoch (8; 32); replay uses 1"},
    {"intervals", "int", "1..4096", "6", "M, intervals of each transform"},
    {"space", "choice", "prob,cosine", "@", "search space (prob; prob; cosine: face models have a cosine head)"},
    {"form", "choice", "anchored,free", "anchored",
     "the transforms' form: anchored (continuous; the slopes and the lower-end values "
     "searched) or free (the paper's: all slopes and biases)"},
    {"sigma", "float", "0.000001..1000000", "0.2", "standard deviation of the slopes' draws"},
    {"sigma_intercept", "float", "0..1000000", "",
     "standard deviation of the searched intercepts (empty: sigma; 0: not searched)"},
    {"slope_floor", "float", "0..1000000", "0.05", "anchored: drawn slopes below it are raised to it"},
    {"policy_lr", "float", "0.000001..1000000", "0.05", "Adam learning rate of mu"},
    {"init", "choice", "identity,focal,gce,cosface,arcface,sphereface", "identity",
     "the classic loss mu_1 is fitted to (gce: generalised cross-entropy, q = 0.7)"},
    {"loss", "choice", "searched,cosface,arcface,sphereface", "searched",
     "the loss trained with: searched (theta), or an exact margin loss on cosines as a "
     "baseline (mode fixed, space cosine)"},
    {"sampling", "choice", "plain,antithetic", "plain", "antithetic mirrors half the draws (B even)"},
    {"shaping", "choice", "zscore,rank", "zscore", "reward normalisation"},
    {"metric", "choice", "top1,top5,loss,accuracy,rank1,mAP", "@",
     "the validation metric used as reward (top1; top1; accuracy: face verification on the "
     "validation pairs; mAP: re-ID on the validation query/gallery; rank1: face "
     "identification or re-ID's CMC rank-1)"},
    {"seed", "int", "0..4294967295", "1", "the run's seed"},
    {"device", "device", "", "cpu", "cpu, or cuda:0,1,... (one GPU per job, round-robin)"},
    {"jobs", "int", "1..4096", "1", "train+eval jobs at once (GNU Parallel)"},
    {"threads", "int", "1..4096", "@", "CPU threads per job (the cores divided by jobs)"},
    {"launcher", "choice", "auto,parallel,srun", "auto",
     "how amlfs-run starts each sample: srun, a job step of the Slurm allocation it runs in; "
     "parallel, a plain process; auto, srun where SLURM_JOB_ID is set"},
    {"read", "choice", "auto,memory,stream", "auto",
     "how train and eval hold the images: auto streams them from the file when they outgrow "
     "4 GiB or a quarter of the memory"},
    {"keep", "int", "0..100000", "0", "keep the sample checkpoints of the last N epochs only (0: all)"},
    {"replay_run", "path", "", "", "replay: the finished run whose loss is replayed"},
    {"replay_form", "choice", "schedule,mu", "schedule", "replay: its per-epoch best theta, or its final mu"},
    {"partition", "slurm-name", "", "", "Slurm: the partition of every job (empty: the cluster's default)"},
    {"account", "slurm-name", "", "", "Slurm: the account charged (empty: the user's default)"},
    {"time", "slurm-time", "", "",
     "Slurm: time limit of one sample task (allocation: of the whole job), minutes or "
     "[D-]H:MM:SS (empty: the partition's default)"},
    {"reduce_time", "slurm-time", "", "30:00", "Slurm: time limit of the reduction job and of the draw it runs"},
    {"mem", "slurm-mem", "", "", "Slurm: memory of one sample task, e.g. 16G (empty: the cluster's default)"},
    {"gres", "slurm-gres", "", "@",
     "Slurm: generic resources of one sample task (device cuda:0,1: gpu:2, one per GPU listed; cpu: none)"},
    {"cpus_per_task", "int", "1..4096", "@",
     "Slurm: CPUs of one sample task, its threads (= threads; 4 when neither is set)"},
    {"throttle", "int", "0..65536", "0",
     "Slurm: sample tasks of an epoch running at once (the array's %K; allocation: its "
     "tasks; 0: no limit, B)"},
    {"retries", "int", "0..100", "1",
     "Slurm: how often a failed sample task is tried again before its epoch goes on without it (amlfs-run retries its jobs as often)"},
    {"allocation", "int", "0..1", "0",
     "Slurm: 1, the whole search in one job (amlfs-run in it, each sample an srun job step); "
     "0, per epoch a job array and a reduction job"},
    {"signal_time", "int", "0..86400", "300",
     "Slurm: allocation mode: seconds before the time limit at which the job is told (USR1) "
     "to submit its successor and start no more samples (0: not told)"},
    {"sbatch_args", "sbatch-args", "", "",
     "Slurm: more sbatch options for every job, e.g. --qos=normal --constraint=a100"},
};
const int amlfs_config_nkeys = (int)(sizeof amlfs_config_keys / sizeof amlfs_config_keys[0]);

/* The dataset-dependent defaults (DESIGN.md 2, defaults table). */
static const struct {
    const char *key, *fashion_mnist, *cifar10, *face, *reid;
} dataset_defaults[] = {
    /* face: the CosFace/paper setting (sphere20, batch 256, lr 0.1, horizontal flips;
     * 28k iterations of batch 256 on CASIA-WebFace's 494k images are about 15 epochs) */
    /* re-ID (market1501, dukemtmc): SphereReID's ResNet-50 at 256x128 with batches of
     * P = 16 identities x K = 4 images (configs/market1501.conf says where each value
     * comes from) */
    {"src", "/usr/share/datasets/fashion-mnist", "", "", ""},
    {"model", "small-cnn", "resnet20", "sphere20", "resnet50"},
    {"batch", "100", "128", "256", "64"},
    {"lr", "0.05", "0.1", "0.1", "0.1"},
    {"epochs", "12", "200", "15", "140"},
    {"augment", "none", "crop-flip", "flip", "reid"},
    {"samples", "8", "32", "32", "32"},
    {"space", "prob", "prob", "cosine", "cosine"},
    {"metric", "top1", "top1", "accuracy", "mAP"},
    {"size", "", "", "112x96", "256x128"},
    {"val_identities", "10", "10", "10", "100"},
    {"scale", "64", "64", "64", "16"},
};

#define THREADS_ON_SLURM "4" /* cpus_per_task when neither it nor threads is set */

/* Exit 2 with "WHERE: message" (config errors name where the value came from). */
static void bad(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void bad(const char *where, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    amlfs_fail(AMLFS_EXIT_USAGE, where, "%s", msg);
}

static char *copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = amlfs_zalloc(n, 1);
    memcpy(c, s, n);
    return c;
}

int amlfs_config_key_index(const char *key)
{
    for (int i = 0; i < amlfs_config_nkeys; i++)
        if (!strcmp(amlfs_config_keys[i].key, key))
            return i;
    return -1;
}

int amlfs_config_is_slurm(int i)
{
    return !strncmp(amlfs_config_keys[i].meaning, "Slurm: ", 7);
}

/* ---- lines ------------------------------------------------------------------------- */

/* Splits one line (its comment already cut) into key and value, in place. Returns 1 for
 * key = value, 0 for a blank line, -1 otherwise. */
static int split_line(char *line, char **key, char **value)
{
    char *s = line;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 0;
    char *k = s;
    while (isalnum((unsigned char)*s) || *s == '_')
        s++;
    if (s == k)
        return -1;
    char *kend = s;
    while (isspace((unsigned char)*s))
        s++;
    if (*s != '=')
        return -1;
    *kend = '\0';
    s++;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    *key = k;
    *value = s;
    return 1;
}

void amlfs_config_file_read(amlfs_config_file *f, const char *path, int lenient)
{
    memset(f, 0, sizeof *f);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "no such file");
    FILE *in = fopen(path, "r");
    if (!in)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, in) >= 0) {
        n++;
        char *hash = strchr(line, '#'), *key, *value;
        if (hash)
            *hash = '\0';
        int kind = split_line(line, &key, &value);
        if (kind == 0)
            continue;
        if (kind < 0 || (!lenient && amlfs_config_key_index(key) < 0)) {
            if (lenient) {
                f->skipped++;
                continue;
            }
            char where[PATH_MAX + 32];
            snprintf(where, sizeof where, "%s:%d", path, n);
            fclose(in);
            if (kind < 0)
                bad(where, "not a 'key = value' line");
            bad(where, "unknown key '%s' (amlfs-run --help-config)", key);
        }
        f->entry = realloc(f->entry, ((size_t)f->n + 1) * sizeof *f->entry);
        if (!f->entry)
            amlfs_fail(AMLFS_EXIT_FAILED, path, "out of memory");
        f->entry[f->n].key = copy(key);
        f->entry[f->n].value = copy(value);
        f->entry[f->n].line = n;
        f->n++;
    }
    free(line);
    int failed = ferror(in);
    fclose(in);
    if (failed)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s", strerror(errno));
}

const char *amlfs_config_file_get(const amlfs_config_file *f, const char *key)
{
    for (int i = f->n - 1; i >= 0; i--)
        if (!strcmp(f->entry[i].key, key))
            return f->entry[i].value;
    return NULL;
}

void amlfs_config_file_free(amlfs_config_file *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->entry[i].key);
        free(f->entry[i].value);
    }
    free(f->entry);
    memset(f, 0, sizeof *f);
}

/* ---- giving values ----------------------------------------------------------------- */

void amlfs_config_init(amlfs_config *c)
{
    memset(c, 0, sizeof *c);
    if (amlfs_config_nkeys > AMLFS_CONFIG_MAX_KEYS)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "config.c: more keys than AMLFS_CONFIG_MAX_KEYS");
}

static void give(amlfs_config *c, int i, const char *value, const char *where)
{
    free(c->given[i]);
    free(c->where[i]);
    c->given[i] = copy(value);
    c->where[i] = copy(where);
}

void amlfs_config_load(amlfs_config *c, const char *path)
{
    amlfs_config_file f;
    amlfs_config_file_read(&f, path, 0);
    for (int k = 0; k < f.n; k++) {
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", path, f.entry[k].line);
        give(c, amlfs_config_key_index(f.entry[k].key), f.entry[k].value, where);
    }
    amlfs_config_file_free(&f);
}

void amlfs_config_set(amlfs_config *c, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    size_t n = eq ? (size_t)(eq - assignment) : 0;
    int ok = n > 0 && n < 64;
    for (size_t j = 0; ok && j < n; j++)
        ok = isalnum((unsigned char)assignment[j]) || assignment[j] == '_';
    if (!ok)
        bad(NULL, "--set %s: expected key=value", assignment);
    char key[64];
    memcpy(key, assignment, n);
    key[n] = '\0';
    int i = amlfs_config_key_index(key);
    if (i < 0)
        bad(NULL, "--set %s: unknown key (amlfs-run --help-config)", key);
    give(c, i, eq + 1, "--set");
}

/* ---- checking values ---------------------------------------------------------------- */

static int matches(const char *pattern, const char *text)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        amlfs_fail(AMLFS_EXIT_FAILED, NULL, "config.c: bad pattern %s", pattern);
    int hit = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return hit;
}

/* A value outside key i's kind and range is exit 2 naming where it came from. An empty
 * value passes: it stands for the key's default (the cluster's, for the Slurm keys). */
static void check_value(int i, const char *value, const char *where)
{
    const amlfs_config_key *k = &amlfs_config_keys[i];
    if (!*value)
        return;
    char at[PATH_MAX + 128];
    snprintf(at, sizeof at, "%s: %s", where, k->key);
    const char *kind = k->kind;
    if (!strcmp(kind, "int") || !strcmp(kind, "int-or-all")) {
        if (!strcmp(kind, "int-or-all") && !strcmp(value, "all"))
            return;
        if (!matches("^[0-9]+$", value))
            bad(NULL, "%s = '%s': expected an integer", at, value);
        char lo[32], hi[32];
        sscanf(k->range, "%31[0-9]..%31[0-9]", lo, hi);
        errno = 0;
        unsigned long long v = strtoull(value, NULL, 10);
        if (errno || v < strtoull(lo, NULL, 10) || v > strtoull(hi, NULL, 10))
            bad(NULL, "%s = %s: outside %s to %s", at, value, lo, hi);
    } else if (!strcmp(kind, "float")) {
        if (!matches("^[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$", value))
            bad(NULL, "%s = '%s': expected a number", at, value);
        /* the table's ends are plain decimals: lo ends at the first ".." */
        char lo[32], hi[32];
        const char *dots = strstr(k->range, "..");
        snprintf(lo, sizeof lo, "%.*s", (int)(dots - k->range), k->range);
        snprintf(hi, sizeof hi, "%s", dots + 2);
        double v = strtod(value, NULL);
        if (!(v >= strtod(lo, NULL) && v <= strtod(hi, NULL)))
            bad(NULL, "%s = %s: outside %s to %s", at, value, lo, hi);
    } else if (!strcmp(kind, "choice")) {
        size_t n = strlen(value);
        for (const char *s = k->range; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
            if (!strncmp(s, value, n) && (s[n] == ',' || s[n] == '\0'))
                return;
        char list[512];
        size_t used = 0;
        for (const char *s = k->range; *s && used + 3 < sizeof list; s++) {
            list[used++] = *s;
            if (*s == ',')
                list[used++] = ' ';
        }
        list[used] = '\0';
        bad(NULL, "%s = '%s': expected one of %s", at, value, list);
    } else if (!strcmp(kind, "hxw")) {
        int h = 0, w = 0;
        char end = 0;
        if (sscanf(value, "%dx%d%c", &h, &w, &end) != 2 || h < 8 || w < 8 || h > 1024 ||
            w > 1024)
            bad(NULL, "%s = '%s': expected HxW, each 8 to 1024, e.g. 112x96", at, value);
    } else if (!strcmp(kind, "epoch-list")) {
        if (!matches("^([0-9]+\\.?[0-9]*|\\.[0-9]+)(,([0-9]+\\.?[0-9]*|\\.[0-9]+))*$", value))
            bad(NULL, "%s = '%s': expected epochs separated by commas, e.g. 16,24", at, value);
        double last = 0.0;
        for (const char *s = value; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
            double v = strtod(s, NULL);
            if (!(v > last) || v > 100000)
                bad(NULL, "%s = '%s': expected increasing epochs in (0, 100000]", at, value);
            last = v;
        }
    } else if (!strcmp(kind, "device")) {
        if (!matches("^(cpu|cuda:[0-9]+(,[0-9]+)*)$", value))
            bad(NULL, "%s = '%s': expected cpu or cuda:N[,N...]", at, value);
    } else if (!strcmp(kind, "slurm-name")) {
        if (!matches("^[A-Za-z0-9_.,-]+$", value))
            bad(NULL, "%s = '%s': not a Slurm name", at, value);
    } else if (!strcmp(kind, "slurm-time")) {
        if (!matches("^(([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}|UNLIMITED|INFINITE|unlimited|infinite)$",
                     value))
            bad(NULL, "%s = '%s': expected minutes, [D-]H:MM:SS or UNLIMITED", at, value);
    } else if (!strcmp(kind, "slurm-mem")) {
        if (!matches("^[0-9]+[KMGT]?$", value))
            bad(NULL, "%s = '%s': expected a size such as 4000M or 16G", at, value);
    } else if (!strcmp(kind, "slurm-gres")) {
        if (!matches("^(none|[A-Za-z0-9_]+(:[A-Za-z0-9_.-]+)*(,[A-Za-z0-9_]+(:[A-Za-z0-9_.-]+)*)*)$",
                     value))
            bad(NULL, "%s = '%s': expected none or name[:type]:count[,...], e.g. gpu:2", at, value);
    } else if (!strcmp(kind, "sbatch-args")) {
        if (!matches("^(-[^[:space:]]+)([[:space:]]+-[^[:space:]]+)*$", value))
            bad(NULL, "%s = '%s': expected sbatch options (--name=value ...)", at, value);
    }
    /* path: any text */
}

/* ---- resolving ---------------------------------------------------------------------- */

/* A positive decimal count as OpenMP's variables give it ("4", "4,2"), else 0. */
static unsigned long omp_count(const char *s)
{
    if (!s)
        return 0;
    while (isspace((unsigned char)*s))
        s++;
    char *end;
    errno = 0;
    unsigned long v = isdigit((unsigned char)*s) ? strtoul(s, &end, 10) : 0;
    if (!v || errno)
        return 0;
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0' || *end == ',' ? v : 0;
}

/* The cores this process may use, as nproc(1) counts them: OMP_NUM_THREADS when set,
 * else the CPUs of its affinity mask, at most OMP_THREAD_LIMIT. */
static long cores(void)
{
    unsigned long limit = omp_count(getenv("OMP_THREAD_LIMIT"));
    unsigned long n = omp_count(getenv("OMP_NUM_THREADS"));
    if (!n) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? (unsigned long)CPU_COUNT(&set) : 1;
    }
    if (limit && n > limit)
        n = limit;
    return n ? (long)n : 1;
}

static const char *val(const amlfs_config *c, const char *key)
{
    return c->value[amlfs_config_key_index(key)];
}

static void put(amlfs_config *c, const char *key, const char *value)
{
    int i = amlfs_config_key_index(key);
    free(c->value[i]);
    c->value[i] = copy(value);
}

static int gpus_listed(const char *device)
{
    int n = 1;
    for (const char *s = device; *s; s++)
        n += *s == ',';
    return n;
}

/* The default of key i where the table says "@". */
static void fallback_of(amlfs_config *c, int i, const char *dataset, int slurm, char *out,
                        size_t n)
{
    const char *key = amlfs_config_keys[i].key;
    if (!strcmp(key, "threads")) {
        int cpt = amlfs_config_key_index("cpus_per_task");
        if (slurm) {
            snprintf(out, n, "%s", c->given[cpt] && *c->given[cpt] ? c->given[cpt]
                                                                    : THREADS_ON_SLURM);
        } else {
            long jobs = strtol(val(c, "jobs"), NULL, 10), per = cores() / (jobs > 0 ? jobs : 1);
            snprintf(out, n, "%ld", per > 0 ? per : 1);
        }
    } else if (!strcmp(key, "cpus_per_task")) {
        snprintf(out, n, "%s", val(c, "threads"));
    } else if (!strcmp(key, "gres")) {
        const char *device = val(c, "device");
        if (!strncmp(device, "cuda:", 5))
            snprintf(out, n, "gpu:%d", gpus_listed(device));
        else
            snprintf(out, n, "none");
    } else {
        out[0] = '\0';
        for (size_t d = 0; d < sizeof dataset_defaults / sizeof dataset_defaults[0]; d++)
            if (!strcmp(dataset_defaults[d].key, key))
                snprintf(out, n, "%s", !strcmp(dataset, "cifar10") ? dataset_defaults[d].cifar10
                                       : !strcmp(dataset, "face")  ? dataset_defaults[d].face
                                       : !strcmp(dataset, "market1501") ||
                                         !strcmp(dataset, "dukemtmc") ? dataset_defaults[d].reid
                                                                   : dataset_defaults[d].fashion_mnist);
    }
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* mode = replay: the finished run's loss parametrisation, one model. */
static void resolve_replay(amlfs_config *c)
{
    const char *src = val(c, "replay_run");
    if (!*src)
        bad(NULL, "mode = replay needs replay_run = a finished run");
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config", src);
    if (!is_file(path))
        bad(src, "not a run directory (replay_run)");
    snprintf(path, sizeof path, "%s/final/checkpoint.h5", src);
    if (!is_file(path))
        bad(src, "not a finished run (no final/checkpoint.h5)");
    char real[PATH_MAX];
    if (!realpath(src, real))
        bad(src, "cannot resolve: %s (replay_run)", strerror(errno));
    snprintf(path, sizeof path, "%s/config", real);
    amlfs_config_file theirs;
    amlfs_config_file_read(&theirs, path, 1);
    if (!strcmp(val(c, "replay_form"), "schedule")) {
        const char *e = amlfs_config_file_get(&theirs, "epochs");
        long src_epochs = e ? strtol(e, NULL, 10) : 0;
        if (strtol(val(c, "epochs"), NULL, 10) > src_epochs)
            bad(NULL, "epochs = %s: the replayed schedule of %s has only %ld epochs",
                val(c, "epochs"), src, src_epochs);
    }
    put(c, "replay_run", real);
    put(c, "samples", "1");
    const char *m = amlfs_config_file_get(&theirs, "intervals");
    const char *s = amlfs_config_file_get(&theirs, "space");
    const char *f = amlfs_config_file_get(&theirs, "form");
    if (m && *m)
        put(c, "intervals", m);
    if (s && *s)
        put(c, "space", s);
    /* a run of before the forms is in the free form */
    put(c, "form", f && *f ? f : "free");
    amlfs_config_file_free(&theirs);
}

void amlfs_config_resolve(amlfs_config *c, int slurm)
{
    int di = amlfs_config_key_index("dataset");
    const char *dataset = c->given[di] && *c->given[di] ? c->given[di] : "fashion-mnist";
    for (int i = 0; i < amlfs_config_nkeys; i++) {
        const amlfs_config_key *k = &amlfs_config_keys[i];
        char value[1024];
        /* an empty value is a default only where the table's default is empty (data,
         * the Slurm limits, ...); elsewhere it is a mistake, refused before anything is
         * written, not a value that fails later in a tool */
        /* a computed default may itself be empty (size for fashion-mnist): then an empty
         * value, as RUN/config records it, is that default */
        char computed[1024] = "";
        if (c->given[i] && !*c->given[i] && !strcmp(k->fallback, "@"))
            fallback_of(c, i, dataset, slurm, computed, sizeof computed);
        if (c->given[i] && !*c->given[i] && *k->fallback &&
            (strcmp(k->fallback, "@") || *computed))
            bad(NULL, "%s: %s = '': empty (give a value, or leave the key out for its "
                      "default%s%s)", c->where[i] ? c->where[i] : "--set", k->key,
                strcmp(k->fallback, "@") ? ", " : "", strcmp(k->fallback, "@") ? k->fallback : "");
        if (c->given[i] && *c->given[i])
            snprintf(value, sizeof value, "%s", c->given[i]);
        else if (!strcmp(k->fallback, "@"))
            fallback_of(c, i, dataset, slurm, value, sizeof value);
        else
            snprintf(value, sizeof value, "%s", k->fallback);
        free(c->value[i]);
        c->value[i] = copy(value);
        check_value(i, value, c->where[i] ? c->where[i] : "default");
    }
    /* what only makes sense together */
    long samples = strtol(val(c, "samples"), NULL, 10);
    if (!strcmp(val(c, "mode"), "replay")) {
        resolve_replay(c);
        samples = 1;
    } else if (strcmp(val(c, "mode"), "fixed") && samples < 2) {
        bad(NULL, "samples = %ld: the search needs B >= 2 (1 only in fixed mode: one model)",
            samples);
    }
    if (strcmp(val(c, "loss"), "searched") &&
        (strcmp(val(c, "mode"), "fixed") || strcmp(val(c, "space"), "cosine")))
        bad(NULL, "loss = %s is an exact margin loss, a baseline: it needs mode = fixed and "
                  "space = cosine (mode %s, space %s)", val(c, "loss"), val(c, "mode"),
            val(c, "space"));
    if (*val(c, "milestones") && strcmp(val(c, "schedule"), "step"))
        bad(NULL, "milestones = %s: for schedule = step (schedule is %s)", val(c, "milestones"),
            val(c, "schedule"));
    if (!strcmp(val(c, "sampler"), "pk")) { /* batch = p x k: its default, or it must equal */
        long p = strtol(val(c, "p"), NULL, 10), k = strtol(val(c, "k"), NULL, 10);
        int bi = amlfs_config_key_index("batch");
        char pk[32];
        snprintf(pk, sizeof pk, "%ld", p * k);
        if (p * k > 65536)
            bad(NULL, "sampler = pk: p = %ld x k = %ld = %ld images a batch, more than 65536",
                p, k, p * k);
        if (c->given[bi] && *c->given[bi] && strtol(c->given[bi], NULL, 10) != p * k)
            bad(NULL, "%s: batch = %s, but sampler = pk trains batches of p x k = %ld x %ld = "
                "%ld", c->where[bi] ? c->where[bi] : "--set", c->given[bi], p, k, p * k);
        put(c, "batch", pk);
    }
    if (!strcmp(val(c, "sampling"), "antithetic") && samples % 2 && strcmp(val(c, "mode"), "fixed"))
        bad(NULL, "sampling = antithetic needs an even samples, not %ld", samples);
    const char *data = val(c, "data");
    /* the sizes fit the data set's training images (a prepared data file has its own) */
    int face = !strcmp(val(c, "dataset"), "face");
    int reid = !strcmp(val(c, "dataset"), "market1501") || !strcmp(val(c, "dataset"), "dukemtmc");
    long total = face || reid ? LONG_MAX : !strcmp(val(c, "dataset"), "cifar10") ? 50000 : 60000;
    long val_size = strtol(val(c, "val_size"), NULL, 10);
    long train_size = strcmp(val(c, "train_size"), "all") ? strtol(val(c, "train_size"), NULL, 10) : 0;
    if (!*data && !train_size && val_size >= total)
        bad(NULL, "val_size = %ld: %s has %ld training images to carve it from (at most %ld)",
            val_size, val(c, "dataset"), total, total - 1);
    if (!*data && train_size && train_size + val_size > total)
        bad(NULL, "train_size = %ld and val_size = %ld: %ld images, but %s has %ld training "
                  "images", train_size, val_size, train_size + val_size, val(c, "dataset"), total);
    if (!strcmp(val(c, "dataset"), "cifar10") && !*val(c, "src") && !*data)
        bad(NULL, "dataset = cifar10 needs src = the cifar-10-batches-bin folder (or data = a "
                  "prepared file)");
    if (face && !*val(c, "src") && !*data)
        bad(NULL, "dataset = face needs src = a folder with train/ and lfw/pairs.txt (amlfs-synth "
                  "face writes one) or data = a file amlfs-prep face wrote");
    if (reid && !*val(c, "src") && !*data)
        bad(NULL, "dataset = %s needs src = the released folder (bounding_box_train/, query/, "
                  "bounding_box_test/; amlfs-synth market writes one) or data = a file "
                  "amlfs-prep %s wrote", val(c, "dataset"), val(c, "dataset"));
    if ((face || reid) && !strcmp(val(c, "space"), "prob"))
        bad(NULL, "dataset = %s trains a cosine head: space = cosine, not prob", val(c, "dataset"));
    const char *metric = val(c, "metric");
    if (!face && !strcmp(metric, "accuracy"))
        bad(NULL, "metric = accuracy is a face metric; dataset = %s rewards %s", val(c, "dataset"),
            reid ? "mAP or rank1" : "top1, top5 or loss");
    if (!face && !reid && !strcmp(metric, "rank1"))
        bad(NULL, "metric = rank1 is a face or re-ID metric; dataset = %s rewards top1, top5 or "
                  "loss", val(c, "dataset"));
    if (!reid && !strcmp(metric, "mAP"))
        bad(NULL, "metric = mAP is a re-ID metric; dataset = %s rewards %s", val(c, "dataset"),
            face ? "accuracy or rank1" : "top1, top5 or loss");
    if (*data) {
        char real[PATH_MAX];
        if (!is_file(data) || !realpath(data, real))
            bad(data, "no such file (data)");
        put(c, "data", real);
    }
    const char *device = val(c, "device");
    long jobs = strtol(val(c, "jobs"), NULL, 10);
    if (strcmp(device, "cpu") && jobs > 1 && jobs > gpus_listed(device))
        bad(NULL, "jobs = %ld but device lists %d GPU(s): one GPU per job", jobs,
            gpus_listed(device));
}

const char *amlfs_config_get(const amlfs_config *c, const char *key)
{
    int i = amlfs_config_key_index(key);
    return i < 0 ? NULL : c->value[i] ? c->value[i] : "";
}

void amlfs_config_free(amlfs_config *c)
{
    for (int i = 0; i < AMLFS_CONFIG_MAX_KEYS; i++) {
        free(c->given[i]);
        free(c->where[i]);
        free(c->value[i]);
    }
    memset(c, 0, sizeof *c);
}
