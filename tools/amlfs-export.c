/* amlfs-export: a found loss as a small self-contained Python file, for training with it
 * outside amlfs: a PyTorch module (forward gives the loss, autograd the gradient) and a
 * NumPy function (the loss and its gradient), from one theta of a thetas file, from a
 * policy's mu, or from a run's per-epoch schedule of its best samples' thetas
 * (DESIGN.md 1: the two spaces, the clamps, the prob space's log form). The numbers are
 * written with 17 significant digits, so Python reads back the same float64 values. */
#include "amlfs_kernels.h"
#include "atomic_out.h"
#include "policy.h"
#include "search.h"
#include "share.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: amlfs-export --thetas thetas.h5 --index I --out myloss.py [--scale S]\n"
    "       amlfs-export --policy policy.h5 --out myloss.py [--scale S]\n"
    "       amlfs-export --run RUN --out myloss.py [--scale S]\n"
    "\n"
    "Writes a loss as a self-contained Python file (NumPy; PyTorch optional):\n"
    "  from myloss import Loss, loss_numpy\n"
    "  criterion = Loss()                  # a torch.nn.Module (scale=S in the cosine space)\n"
    "  loss = criterion(logits, targets)   # the batch mean; loss.backward() as usual\n"
    "  per_row, grad = loss_numpy(logits, targets)   # grad: of the mean, (N,C)\n"
    "The inputs are logits (prob space) or cosines (cosine space), (N,C), targets (N)\n"
    "classes 0 to C-1. The arithmetic is amlfs-loss's (DESIGN.md 1), computed in\n"
    "float64: it agrees with amlfs-loss to about 1e-7 relative (amlfs's softmax terms\n"
    "are float32).\n"
    "\n"
    "  --thetas FILE    a thetas file (amlfs-sample, or hand-written: /theta (B,4M))\n"
    "  --index I        its row, 0 to B-1\n"
    "  --policy FILE    a policy (amlfs-init, amlfs-update, or hand-written: /mu (4M)):\n"
    "                   the loss of its mu (the slopes and biases mu stands for in its form)\n"
    "  --run RUN        a run directory: the schedule of its epochs' best samples, epoch e\n"
    "                   using row @best (RUN/epoch-NNNN/rewards.h5) of epoch e's thetas,\n"
    "                   for every epoch with a rewards file; the module then takes the\n"
    "                   epoch, 1 to E: Loss(epoch=e), criterion.epoch = e, or\n"
    "                   criterion(logits, targets, epoch=e), loss_numpy(..., epoch=e)\n"
    "  --scale S        cosine space: the cosine head's scale s written as the default\n"
    "                   (else Loss(scale=S) and loss_numpy(..., scale=S) need it)\n"
    "  --out FILE       the Python file to write (atomically)\n"
    "  --share DIR      the folder holding export/loss.py, the module's code (default:\n"
    "                   AMLFS_SHARE, else PREFIX/share/amlfs beside the tools)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

#define PATH_LEN 4096

typedef struct {
    amlfs_space space;
    int64_t intervals;
    int epochs;      /* 0: one theta; else the schedule's length */
    double *thetas;  /* (max(epochs,1), 4M) */
    char source[PATH_LEN + 64];
} export_loss;

/* An exact margin loss is a baseline, not a found loss: its theta is unused. */
static void refuse_exact(const char *path, amlfs_exact_loss loss)
{
    if (loss != AMLFS_EXACT_NONE)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@loss = %s: an exact margin loss (a fixed-mode "
                   "baseline), not a found one; nothing to export (its theta is unused)",
                   amlfs_loss_names[loss]);
}

static void from_thetas(export_loss *x, const char *path, long long index)
{
    amlfs_thetas t;
    amlfs_thetas_read(&t, path);
    refuse_exact(path, t.loss);
    if (index >= t.samples)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "--index %lld, but B = %lld (0 to %lld)", index,
                   (long long)t.samples, (long long)t.samples - 1);
    size_t d = (size_t)(4 * t.intervals);
    x->intervals = t.intervals;
    x->space = t.space;
    x->thetas = amlfs_zalloc(d, sizeof(double));
    memcpy(x->thetas, t.theta + (size_t)index * d, d * sizeof(double));
    snprintf(x->source, sizeof x->source, "%s, row %lld", path, index);
    amlfs_thetas_free(&t);
}

static void from_policy(export_loss *x, const char *path)
{
    amlfs_policy p;
    amlfs_policy_read(&p, path);
    refuse_exact(path, p.loss);
    size_t d = (size_t)(4 * p.intervals);
    x->intervals = p.intervals;
    x->space = p.space;
    x->thetas = amlfs_zalloc(d, sizeof(double));
    /* mu is in the draw's coordinates: the loss is the theta it stands for */
    amlfs_form_theta(p.form, p.space, (int)p.intervals, p.mu, p.slope_floor, x->thetas);
    snprintf(x->source, sizeof x->source, "%s, mu of epoch %lld (%s form)", path,
             (long long)p.epoch, amlfs_form_names[p.form]);
    amlfs_policy_free(&p);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Epochs 1, 2, ... while RUN/epoch-NNNN/rewards.h5 exists and names a best sample. */
static void from_run(export_loss *x, const char *run)
{
    struct stat st;
    if (stat(run, &st) != 0 || !S_ISDIR(st.st_mode))
        amlfs_fail(AMLFS_EXIT_USAGE, run, "not a run directory");
    size_t cap = 0;
    for (int e = 1;; e++) {
        char rpath[PATH_LEN], tpath[PATH_LEN];
        snprintf(rpath, sizeof rpath, "%s/epoch-%04d/rewards.h5", run, e);
        snprintf(tpath, sizeof tpath, "%s/epoch-%04d/thetas.h5", run, e);
        if (!is_file(rpath))
            break;
        amlfs_rewards r;
        amlfs_rewards_read(&r, rpath);
        if (r.best < 0) { /* no finite reward: the run stopped here */
            amlfs_note("%s: no best sample (%s): the schedule ends at epoch %d", rpath,
                       r.update_skipped, e - 1);
            amlfs_rewards_free(&r);
            break;
        }
        amlfs_thetas t;
        amlfs_thetas_read(&t, tpath);
        refuse_exact(tpath, t.loss);
        if (r.epoch != e || t.epoch != e)
            amlfs_fail(AMLFS_EXIT_USAGE, r.epoch != e ? rpath : tpath,
                       "/@epoch: %lld, expected %d as its folder says",
                       (long long)(r.epoch != e ? r.epoch : t.epoch), e);
        if (r.samples != t.samples)
            amlfs_fail(AMLFS_EXIT_USAGE, rpath, "has B = %lld, %s has B = %lld",
                       (long long)r.samples, tpath, (long long)t.samples);
        if (e == 1) {
            x->intervals = t.intervals;
            x->space = t.space;
        } else if (t.intervals != x->intervals || t.space != x->space) {
            amlfs_fail(AMLFS_EXIT_USAGE, tpath, "M = %lld in space %s, epoch 1's thetas have "
                       "M = %lld in space %s", (long long)t.intervals,
                       amlfs_space_names[t.space], (long long)x->intervals,
                       amlfs_space_names[x->space]);
        }
        size_t d = (size_t)(4 * t.intervals);
        if ((size_t)e > cap) {
            cap = cap ? 2 * cap : 16;
            double *grown = realloc(x->thetas, cap * d * sizeof(double));
            if (!grown)
                amlfs_fail(AMLFS_EXIT_FAILED, NULL, "out of memory");
            x->thetas = grown;
        }
        memcpy(x->thetas + (size_t)(e - 1) * d, t.theta + (size_t)r.best * d,
               d * sizeof(double));
        x->epochs = e;
        amlfs_thetas_free(&t);
        amlfs_rewards_free(&r);
    }
    if (x->epochs == 0)
        amlfs_fail(AMLFS_EXIT_USAGE, run, "no epoch with a best sample (no "
                   "epoch-0001/rewards.h5, or it has none)");
    snprintf(x->source, sizeof x->source, "%s, the best sample's theta of epochs 1 to %d",
             run, x->epochs);
}

/* The generated module's code after its numbers (SPACE, INTERVALS, SCALE, EPOCHS,
 * THETAS): share/export/loss.py, one definition of the loss in NumPy and one in PyTorch,
 * read whole before anything is written. */
static char *read_body(const char *share_opt)
{
    char dir[4096], path[4200];
    amlfs_share_dir(dir, sizeof dir, share_opt, "export");
    snprintf(path, sizeof path, "%s/export/loss.py", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read: %s (the module's code)", strerror(errno));
    size_t cap = 1 << 14, len = 0;
    char *buf = amlfs_zalloc(cap + 1, 1);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = amlfs_zalloc(2 * cap + 1, 1);
            memcpy(bigger, buf, len);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || len == 0) {
        free(buf);
        amlfs_fail(AMLFS_EXIT_USAGE, path, "cannot read (empty or unreadable)");
    }
    buf[len] = 0;
    return buf;
}

/* Text inside the module's docstring: backslashes and quotes escaped, so that no path
 * can end the docstring or make an escape sequence. */
static void put_doc_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void write_module(FILE *f, const export_loss *x, double scale, const char *out,
                         const char *body)
{
    int m = (int)x->intervals;
    /* the module's name, for the usage in its docstring: the file's, less .py */
    const char *slash = strrchr(out, '/'), *base = slash ? slash + 1 : out;
    size_t len = strlen(base);
    if (len > 3 && !strcmp(base + len - 3, ".py"))
        len -= 3;
    fprintf(f, "\"\"\"A loss found by amlfs (AM-LFS), exported by amlfs-export %s from\n",
            AMLFS_VERSION);
    put_doc_text(f, x->source);
    fprintf(f, ".\n\n");
    if (x->space == AMLFS_SPACE_COSINE)
        fprintf(f, "Cosine space: f'_y = s t(cos_y), f'_j = s cos_j (j != y), "
                   "L = -log tau(softmax(f')_y);\nt on [-1, 1], tau on [0, 1] clamped to "
                   "[1e-300, inf).\n");
    else
        fprintf(f, "Prob space: L = -log tau(t(p_y)), p_y = softmax(f)_y; t and tau on "
                   "[0, 1],\nt clamped to [1e-300, 1], tau to [1e-300, inf); where both "
                   "pass through 0 the\nfirst interval is computed in log form.\n");
    fprintf(f, "t and tau are piecewise linear in M = %d equal intervals; theta = [a_t, b_t, "
               "a_tau, b_tau],\nM slopes or biases each (DESIGN.md 1). A clamp gives its "
               "sample no gradient.\n\n"
               "    from %.*s import Loss, loss_numpy\n"
               "    criterion = Loss(%s)    # torch.nn.Module; forward(inputs, targets%s)\n"
               "    per_row, grad = loss_numpy(inputs, targets%s)  # NumPy, grad of the mean\n"
               "\"\"\"\n",
            m, (int)len, base, x->space == AMLFS_SPACE_COSINE && !(scale > 0) ? "scale=S" : "",
            x->epochs ? ", epoch" : "", x->epochs ? ", epoch=e" : "");
    fprintf(f, "import math\n\nimport numpy as np\n\n");
    fprintf(f, "SPACE = \"%s\"\nINTERVALS = %d\n", amlfs_space_names[x->space], m);
    if (scale > 0)
        fprintf(f, "SCALE = %.17g\n", scale);
    else
        fprintf(f, "SCALE = None\n");
    if (x->epochs)
        fprintf(f, "EPOCHS = %d\n", x->epochs);
    else
        fprintf(f, "EPOCHS = None\n");
    fprintf(f, "# [a_t (M), b_t (M), a_tau (M), b_tau (M)]%s\nTHETAS = [\n",
            x->epochs ? ", one row per epoch from 1" : "");
    int rows = x->epochs ? x->epochs : 1;
    for (int r = 0; r < rows; r++) {
        const double *th = x->thetas + (size_t)r * 4 * m;
        fprintf(f, "    [");
        for (int j = 0; j < 4 * m; j++)
            fprintf(f, "%s%.17g", j ? ", " : "", th[j]);
        fprintf(f, "],\n");
    }
    fprintf(f, "]\n\n");
    fputs(body, f);
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-export");
    amlfs_help_version(argc, argv, usage);
    static const struct option opts[] = {{"thetas", required_argument, 0, 't'},
                                         {"index", required_argument, 0, 'i'},
                                         {"policy", required_argument, 0, 'p'},
                                         {"run", required_argument, 0, 'r'},
                                         {"scale", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"share", required_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    const char *thetas_path = NULL, *policy_path = NULL, *run = NULL, *out = NULL;
    const char *share = NULL;
    long long index = -1;
    double scale = 0.0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': thetas_path = optarg; break;
        case 'i': index = amlfs_arg_int("--index", optarg, 0, 1 << 30); break;
        case 'p': policy_path = optarg; break;
        case 'r': run = optarg; break;
        case 's':
            scale = amlfs_arg_double("--scale", optarg, 0, 1e6);
            if (!(scale > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--scale: %g, expected s > 0", scale);
            break;
        case 'o': out = optarg; break;
        case 'S': share = optarg; break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
    if (!out || (thetas_path != NULL) + (policy_path != NULL) + (run != NULL) != 1)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--out and one of --thetas (with --index), --policy, --run are required");
    if ((thetas_path != NULL) != (index >= 0))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--thetas and --index go together");

    export_loss x;
    memset(&x, 0, sizeof x);
    if (thetas_path)
        from_thetas(&x, thetas_path, index);
    else if (policy_path)
        from_policy(&x, policy_path);
    else
        from_run(&x, run);
    if (scale > 0 && x.space != AMLFS_SPACE_COSINE)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--scale: the loss is of the %s space, which has "
                   "no scale", amlfs_space_names[x.space]);

    char *body = read_body(share);
    const char *tmp = amlfs_out_begin(out);
    FILE *f = fopen(tmp, "w");
    if (!f)
        amlfs_fail(AMLFS_EXIT_FAILED, out, "cannot write: %s", strerror(errno));
    write_module(f, &x, scale, out, body);
    free(body);
    errno = 0;
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        int e = errno;
        amlfs_out_abandon(tmp);
        amlfs_fail(AMLFS_EXIT_FAILED, out, "cannot write: %s", e ? strerror(e) : "write error");
    }
    amlfs_out_commit(tmp);
    printf("%s\n", out);
    free(x.thetas);
    return AMLFS_EXIT_OK;
}
