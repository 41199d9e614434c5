/* amlfs-init: the starts of a search (DESIGN.md 1, the search; 2, the tools), two tools
 * behind one command line: --policy-only writes the epoch-1 policy (write_policy), --model
 * the epoch-1 start checkpoint (write_start). main reads the options and dispatches. */
#include "amlfs_kernels.h"
#include "data.h"
#include "h5io.h"
#include "plain.h"
#include "policy.h"
#include "search.h"
#include "tool.h"
#include "train.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: amlfs-init --policy-only --out policy.h5 [policy options]\n"
    "       amlfs-init --model NAME --data data.h5 --out start.h5 [training options]\n"
    "\n"
    "--policy-only writes the policy that samples epoch 1: mu_1, sigma, the Adam state\n"
    "and the search's settings. mu_1 is the identity (cross-entropy) or the least-squares\n"
    "fit of the form's draw to a classic loss; the fit's maximum error is recorded.\n"
    "--model writes the checkpoint every sample of epoch 1 starts from: the model for the\n"
    "data set's images and classes, initialised from the seed as PyTorch's default\n"
    "(weights and linear biases uniform in +-1/sqrt(fan_in)), and its training\n"
    "settings. sphere20, face-small, resnet50 and reid-small end in a cosine head\n"
    "(normalised weights and features; PReLU slopes 0.25): their checkpoints record the\n"
    "scale s and the embedding width, and their identity theta is of the cosine space.\n"
    "resnet50 and reid-small (re-ID) embed with a BNNeck (batch norm, bias frozen at 0).\n"
    "\n"
    "  --out FILE          the file to write (atomically)\n"
    "\n"
    "Policy options:\n"
    "  --intervals M       intervals of each piecewise-linear transform (default 6)\n"
    "  --space S           prob | cosine (default prob)\n"
    "  --form F            anchored | free (default anchored): anchored transforms are\n"
    "                      continuous, their M slopes and lower-end value searched;\n"
    "                      free (the paper's) draws all 4M slopes and biases\n"
    "  --sigma X           standard deviation of the slopes' draws (default 0.2)\n"
    "  --sigma-intercept X standard deviation of the searched intercepts (default: the\n"
    "                      slopes' sigma; 0: not searched)\n"
    "  --slope-floor X     anchored: drawn slopes below X are raised to it (default 0.05)\n"
    "  --policy-lr X       Adam learning rate of mu (default 0.05)\n"
    "  --init L            identity | focal | gce | cosface | arcface | sphereface\n"
    "                      (default identity; the margins need --space cosine)\n"
    "  --mode X            amlfs | random | fixed | replay (default amlfs)\n"
    "  --loss L            searched | cosface | arcface | sphereface (default searched:\n"
    "                      the loss of the theta drawn); the exact margin losses on\n"
    "                      cosines are baselines: --mode fixed --space cosine only\n"
    "  --from FILE         replay: the finished run's last policy, whose mu is replayed\n"
    "  --sampling X        plain | antithetic (default plain; antithetic needs even B)\n"
    "  --shaping X         zscore | rank (default zscore)\n"
    "  --seed S            the run's seed, 0 to 4294967295 (default 1)\n"
    "\n"
    "Training options (defaults: small-cnn | resnet20 | sphere20 | face-small |\n"
    "resnet50 | reid-small):\n"
    "  --model NAME        small-cnn | resnet20 (option-A shortcuts) | sphere20 (112x96\n"
    "                      faces, cosine head) | face-small (cosine head, for tests) |\n"
    "                      resnet50 (re-ID, 256x128, last stride 1, BNNeck, cosine\n"
    "                      head) | reid-small (re-ID, for tests)\n"
    "  --data FILE         the dataset file (amlfs-prep) the model is for\n"
    "  --batch N           training batch size (100 | 128 | 256 | 64 | 64 | 32)\n"
    "  --lr X              base learning rate (0.05 | 0.1 | 0.1 | 0.1 | 0.05 | 0.1)\n"
    "  --scale S           cosine heads: the scale s of the cosine-space loss (64 face,\n"
    "                      16 re-ID)\n"
    "  --embedding D       cosine heads: the embedding width (512 | 128 | 2048, fixed |\n"
    "                      128)\n"
    "  --momentum X        SGD momentum (0.9)\n"
    "  --nesterov          Nesterov momentum (default plain)\n"
    "  --weight-decay X    L2 weight decay (5e-4)\n"
    "  --schedule S        cosine | step (cosine; sphere20, resnet50: step)\n"
    "  --warmup E          epochs of linear warm-up (0; resnet50: 20)\n"
    "  --epochs E          the run's length, the cosine period (12 | 200 | 15 | 8 |\n"
    "                      140 | 8)\n"
    "  --step E, --gamma G step schedule: decay by G every E epochs (30, 0.1; sphere20:\n"
    "                      8, 0.1)\n"
    "  --milestones E1,E2,...  step schedule: decay by G at these epochs instead\n"
    "                      (increasing, > 0; PyTorch's MultiStepLR; a fraction falls\n"
    "                      inside an epoch, at the first batch that reaches it;\n"
    "                      resnet50: 80,100, dropped by --step)\n"
    "  --augment A         none | crop-flip | flip | reid (none | crop-flip | none |\n"
    "                      none); reid: flip, 10-pixel pad and crop, random erasing\n"
    "  --sampler S         random | pk (random): pk orders each epoch in batches of P\n"
    "                      identities x K images (torchreid's RandomIdentitySampler)\n"
    "  --p P, --k K        pk: identities per batch and images per identity (both\n"
    "                      needed; --batch defaults to P x K and must equal it)\n"
    "  --intervals M, --space S   the identity theta the checkpoint records (6, prob;\n"
    "                      cosine for the cosine heads)\n"
    "  --seed S            initialisation, data order and augmentation (1)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 written, 1 the write failed, 2 bad usage or input.\n";

/* The command line. Both tools use out, intervals, space and seed. */
typedef struct {
    const char *out;
    int intervals, intervals_set, space, space_set;
    long long seed;
    /* the policy's */
    int policy_only, init, mode, sampling, shaping, form, form_set, loss;
    double sigma, lr, sigma_intercept, slope_floor;
    const char *from;
    /* the model's: NAN / -1 / NULL = the model's default */
    const char *model, *data;
    int schedule, augment; /* -1: the model's default */
    int sampler;
    long long p, k; /* pk: 0 = not given */
    long long batch, epochs, embedding;
    int nesterov;
    double scale;
    double train_lr, momentum, wd, warmup, step, gamma;
    int nmilestones;
    double milestones[AMLFS_MAX_MILESTONES];
} init_args;

/* --milestones E1,E2,...: increasing epochs > 0, at most AMLFS_MAX_MILESTONES. */
static void parse_milestones(init_args *a, const char *list)
{
    a->nmilestones = 0;
    const char *s = list;
    for (;;) {
        char one[64];
        size_t len = strcspn(s, ",");
        if (a->nmilestones == AMLFS_MAX_MILESTONES)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--milestones: more than %d epochs",
                       AMLFS_MAX_MILESTONES);
        if (len == 0 || len >= sizeof one)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--milestones: '%s', expected epochs "
                       "separated by commas, e.g. 16,24", list);
        memcpy(one, s, len);
        one[len] = '\0';
        a->milestones[a->nmilestones++] = amlfs_arg_double("--milestones", one, 1e-9, 1e5);
        if (!s[len])
            break;
        s += len + 1;
    }
    amlfs_check_milestones(NULL, a->milestones, a->nmilestones);
}

static void parse_args(int argc, char **argv, init_args *a)
{
    enum { O_POLICY_ONLY = 256, O_OUT, O_INTERVALS, O_SPACE, O_SIGMA, O_LR, O_INIT, O_MODE,
           O_FROM, O_SAMPLING, O_SHAPING, O_SEED, O_MODEL, O_DATA, O_BATCH, O_TRAIN_LR,
           O_MOMENTUM, O_NESTEROV, O_WD, O_SCHEDULE, O_WARMUP, O_EPOCHS, O_STEP, O_GAMMA,
           O_AUGMENT, O_FORM, O_SIGMA_INTERCEPT, O_SLOPE_FLOOR, O_LOSS, O_MILESTONES, O_SCALE,
           O_EMBEDDING, O_SAMPLER, O_P, O_K };
    static const struct option opts[] = {
        {"policy-only", no_argument, 0, O_POLICY_ONLY},
        {"out", required_argument, 0, O_OUT},
        {"intervals", required_argument, 0, O_INTERVALS},
        {"space", required_argument, 0, O_SPACE},
        {"sigma", required_argument, 0, O_SIGMA},
        {"form", required_argument, 0, O_FORM},
        {"sigma-intercept", required_argument, 0, O_SIGMA_INTERCEPT},
        {"slope-floor", required_argument, 0, O_SLOPE_FLOOR},
        {"policy-lr", required_argument, 0, O_LR},
        {"init", required_argument, 0, O_INIT},
        {"mode", required_argument, 0, O_MODE},
        {"loss", required_argument, 0, O_LOSS},
        {"from", required_argument, 0, O_FROM},
        {"sampling", required_argument, 0, O_SAMPLING},
        {"shaping", required_argument, 0, O_SHAPING},
        {"seed", required_argument, 0, O_SEED},
        {"model", required_argument, 0, O_MODEL},
        {"data", required_argument, 0, O_DATA},
        {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_TRAIN_LR},
        {"momentum", required_argument, 0, O_MOMENTUM},
        {"nesterov", no_argument, 0, O_NESTEROV},
        {"weight-decay", required_argument, 0, O_WD},
        {"schedule", required_argument, 0, O_SCHEDULE},
        {"warmup", required_argument, 0, O_WARMUP},
        {"epochs", required_argument, 0, O_EPOCHS},
        {"step", required_argument, 0, O_STEP},
        {"gamma", required_argument, 0, O_GAMMA},
        {"milestones", required_argument, 0, O_MILESTONES},
        {"augment", required_argument, 0, O_AUGMENT},
        {"scale", required_argument, 0, O_SCALE},
        {"embedding", required_argument, 0, O_EMBEDDING},
        {"sampler", required_argument, 0, O_SAMPLER},
        {"p", required_argument, 0, O_P},
        {"k", required_argument, 0, O_K},
        {0, 0, 0, 0}};
    *a = (init_args){.intervals = 6, .seed = 1, .mode = MODE_AMLFS, .sampling = SAMPLING_PLAIN,
                     .shaping = SHAPING_ZSCORE, .form = AMLFS_FORM_ANCHORED, .sigma = 0.2,
                     .lr = 0.05, .sigma_intercept = NAN, .slope_floor = AMLFS_SLOPE_FLOOR,
                     .schedule = -1, .augment = -1, .batch = -1, .epochs = -1,
                     .train_lr = NAN, .momentum = NAN, .wd = NAN,
                     .warmup = NAN, .step = NAN, .gamma = NAN};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_POLICY_ONLY: a->policy_only = 1; break;
        case O_OUT: a->out = optarg; break;
        case O_INTERVALS:
            /* M < 1 has no transform; the bound above keeps files and fits small */
            a->intervals = (int)amlfs_arg_int("--intervals", optarg, 1, 4096);
            a->intervals_set = 1;
            break;
        case O_SPACE:
            a->space = amlfs_arg_choice("--space", optarg, amlfs_space_names);
            a->space_set = 1;
            break;
        case O_SIGMA:
            a->sigma = amlfs_arg_double("--sigma", optarg, 0, 1e6);
            if (!(a->sigma > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--sigma: %g, expected sigma > 0", a->sigma);
            break;
        case O_FORM:
            a->form = amlfs_arg_choice("--form", optarg, amlfs_form_names);
            a->form_set = 1;
            break;
        case O_SIGMA_INTERCEPT:
            a->sigma_intercept = amlfs_arg_double("--sigma-intercept", optarg, 0, 1e6);
            break;
        case O_SLOPE_FLOOR:
            a->slope_floor = amlfs_arg_double("--slope-floor", optarg, 0, 1e6);
            break;
        case O_LR:
            a->lr = amlfs_arg_double("--policy-lr", optarg, 0, 1e6);
            if (!(a->lr > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--policy-lr: %g, expected > 0", a->lr);
            break;
        case O_INIT: a->init = amlfs_arg_choice("--init", optarg, amlfs_init_names); break;
        case O_MODE: a->mode = amlfs_arg_choice("--mode", optarg, amlfs_mode_names); break;
        case O_LOSS: a->loss = amlfs_arg_choice("--loss", optarg, amlfs_loss_names); break;
        case O_FROM: a->from = optarg; break;
        case O_SAMPLING:
            a->sampling = amlfs_arg_choice("--sampling", optarg, amlfs_sampling_names);
            break;
        case O_SHAPING:
            a->shaping = amlfs_arg_choice("--shaping", optarg, amlfs_shaping_names);
            break;
        case O_SEED: a->seed = amlfs_arg_int("--seed", optarg, 0, 0xffffffffLL); break;
        case O_MODEL: a->model = optarg; break;
        case O_DATA: a->data = optarg; break;
        case O_BATCH: a->batch = amlfs_arg_int("--batch", optarg, 1, 1 << 16); break;
        case O_TRAIN_LR: a->train_lr = amlfs_arg_double("--lr", optarg, 0, 1e3); break;
        case O_MOMENTUM: a->momentum = amlfs_arg_double("--momentum", optarg, 0, 0.9999); break;
        case O_NESTEROV: a->nesterov = 1; break;
        case O_WD: a->wd = amlfs_arg_double("--weight-decay", optarg, 0, 1); break;
        case O_SCHEDULE:
            a->schedule = amlfs_arg_choice("--schedule", optarg, amlfs_schedule_names);
            break;
        case O_WARMUP: a->warmup = amlfs_arg_double("--warmup", optarg, 0, 1e4); break;
        case O_EPOCHS: a->epochs = amlfs_arg_int("--epochs", optarg, 1, 100000); break;
        case O_STEP: a->step = amlfs_arg_double("--step", optarg, 1e-3, 1e5); break;
        case O_GAMMA: a->gamma = amlfs_arg_double("--gamma", optarg, 0, 1); break;
        case O_MILESTONES: parse_milestones(a, optarg); break;
        case O_AUGMENT:
            a->augment = amlfs_arg_choice("--augment", optarg, amlfs_augment_names);
            break;
        case O_SCALE:
            a->scale = amlfs_arg_double("--scale", optarg, 0, 1e4);
            if (!(a->scale > 0))
                amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--scale: %g, expected s > 0", a->scale);
            break;
        case O_EMBEDDING: a->embedding = amlfs_arg_int("--embedding", optarg, 1, 65536); break;
        case O_SAMPLER:
            a->sampler = amlfs_arg_choice("--sampler", optarg, amlfs_sampler_names);
            break;
        case O_P: a->p = amlfs_arg_int("--p", optarg, 1, 65536); break;
        case O_K: a->k = amlfs_arg_int("--k", optarg, 1, 65536); break;
        default:
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unknown or incomplete option '%s' (see --help)",
                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind]);
}

/* ---- --model: the epoch-1 start checkpoint ------------------------------------------ */

/* The model's training settings: its defaults, then what the command line sets. */
static void training_settings(amlfs_train_state *st, const init_args *a)
{
    memset(st, 0, sizeof *st);
    if (amlfs_model_defaults(st, a->model) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--model: unknown model '%s' (small-cnn, resnet20, "
                   "sphere20, face-small, resnet50, reid-small)", a->model);
    int cosine = st->shape.scale > 0; /* the defaults give the cosine heads their scale */
    if (!cosine && a->space == AMLFS_SPACE_COSINE)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--space cosine needs a cosine head; %s has a "
                   "linear head (prob space)", a->model);
    if (cosine && a->space_set && a->space != AMLFS_SPACE_COSINE)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--space %s: %s has a cosine head (cosine space)",
                   amlfs_space_names[a->space], a->model);
    if (!cosine && (a->scale > 0 || a->embedding > 0))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--%s: only the cosine heads (sphere20, face-small, "
                   "resnet50, reid-small) have it; %s has a linear head", a->scale > 0 ? "scale" : "embedding",
                   a->model);
    if (a->scale > 0) st->shape.scale = a->scale;
    if (a->embedding > 0) st->shape.embedding = (int)a->embedding;
    if (a->batch > 0) st->shape.batch = (int)a->batch;
    if (a->epochs > 0) st->epochs = a->epochs;
    if (!isnan(a->train_lr)) st->lr = a->train_lr;
    if (!isnan(a->momentum)) st->momentum = a->momentum;
    if (!isnan(a->wd)) st->weight_decay = a->wd;
    if (!isnan(a->warmup)) st->warmup = a->warmup;
    if (!isnan(a->step)) st->step = a->step;
    if (!isnan(a->gamma)) st->gamma = a->gamma;
    if (a->schedule >= 0) st->schedule = (amlfs_schedule_kind)a->schedule;
    if (a->augment >= 0) st->augment = (amlfs_augment)a->augment;
    st->sampler = (amlfs_sampler)a->sampler;
    if (st->sampler != AMLFS_SAMPLER_PK && (a->p || a->k))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--%s is for --sampler pk", a->p ? "p" : "k");
    if (st->sampler == AMLFS_SAMPLER_PK) {
        if (!a->p || !a->k)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--sampler pk needs --p P and --k K");
        st->p = a->p;
        st->k = a->k;
        if (a->p * a->k > 65536)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--p %lld x --k %lld = %lld images a batch, "
                       "expected at most 65536", a->p, a->k, a->p * a->k);
        if (a->batch < 1)
            st->shape.batch = (int)(a->p * a->k);
        if ((long long)st->shape.batch != a->p * a->k)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--batch %d, but --sampler pk trains batches of "
                       "P x K = %lld x %lld = %lld", st->shape.batch, a->p, a->k, a->p * a->k);
    }
    st->nesterov = a->nesterov;
    if (a->nmilestones && st->schedule != AMLFS_SCHEDULE_STEP)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--milestones is for --schedule step (the schedule "
                   "is %s)", amlfs_schedule_names[st->schedule]);
    if (a->nmilestones) {
        st->nmilestones = a->nmilestones;
        memcpy(st->milestones, a->milestones, sizeof st->milestones);
    } else if (st->schedule != AMLFS_SCHEDULE_STEP || !isnan(a->step)) {
        st->nmilestones = 0; /* a default's milestones (resnet50) give way to --step E */
    }
    if (st->schedule == AMLFS_SCHEDULE_COSINE && st->warmup >= st->epochs)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--warmup %g must be below --epochs %lld",
                   st->warmup, (long long)st->epochs);
}

static int write_start(const init_args *a)
{
    if (!a->data)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--model needs --data data.h5");
    amlfs_train_state st;
    training_settings(&st, a);
    int plain = 0;
    hid_t f = amlfs_h5_open_or_plain(a->data, "dataset", &plain);
    if (plain) { /* a hand-written dataset: its shape from its training split */
        H5Fclose(f);
        amlfs_split s;
        amlfs_split_read(&s, a->data, "train");
        snprintf(st.dataset, sizeof st.dataset, "%s", s.name);
        st.shape.classes = s.classes;
        st.shape.channels = s.channels;
        st.shape.height = s.height;
        st.shape.width = s.width;
        amlfs_split_free(&s);
    } else {
        amlfs_attr_str(f, "/", "name", st.dataset, sizeof st.dataset);
        st.shape.classes = (int)amlfs_attr_i64(f, "/", "classes");
        st.shape.channels = (int)amlfs_attr_i64(f, "/", "channels");
        st.shape.height = (int)amlfs_attr_i64(f, "/", "height");
        st.shape.width = (int)amlfs_attr_i64(f, "/", "width");
        H5Fclose(f);
    }
    st.seed = a->seed;
    st.epoch = 0;
    st.optim_steps = 0;
    st.status = AMLFS_STATUS_OK;
    st.train_loss = st.train_top1 = NAN;
    st.clamp_fraction = 0;
    st.intervals = a->intervals;
    st.space = st.shape.scale > 0 ? AMLFS_SPACE_COSINE : AMLFS_SPACE_PROB;
    st.theta = amlfs_zalloc((size_t)(4 * a->intervals), sizeof(double));
    for (int j = 0; j < a->intervals; j++)
        st.theta[j] = st.theta[2 * a->intervals + j] = 1.0; /* the identity */
    amlfs_context *ctx = amlfs_open_device("cpu", 1);
    st.threads = 1;
    snprintf(st.device, sizeof st.device, "%s", amlfs_context_describe(ctx));
    char err[256];
    amlfs_model *m = amlfs_model_create(ctx, &st.shape, (uint32_t)a->seed, err, sizeof err);
    if (!m)
        amlfs_fail(AMLFS_EXIT_USAGE, a->data, "%s", err);
    amlfs_checkpoint_write(&st, m, ctx, a->out);
    printf("%s\n", a->out);
    if (amlfs_model_head_is_cosine(m))
        amlfs_note("%s for %s (%d classes): %zu parameters, cosine head (s %g, embedding %d)",
                   a->model, st.dataset, st.shape.classes, amlfs_model_parameters(m),
                   st.shape.scale, st.shape.embedding);
    else
        amlfs_note("%s for %s (%d classes): %zu parameters", a->model, st.dataset,
                   st.shape.classes, amlfs_model_parameters(m));
    amlfs_model_destroy(m);
    amlfs_context_destroy(ctx);
    amlfs_state_free(&st);
    return AMLFS_EXIT_OK;
}

/* ---- --policy-only: the epoch-1 policy ---------------------------------------------- */

/* mu_1 (allocating p) for replay: the finished run's final mu, whose M, space and form
 * the run takes. */
static void replayed_mu(amlfs_policy *p, init_args *a)
{
    amlfs_policy src;
    amlfs_policy_read(&src, a->from);
    if (a->intervals_set && a->intervals != src.intervals)
        amlfs_fail(AMLFS_EXIT_USAGE, a->from, "has M = %lld, --intervals says %d",
                   (long long)src.intervals, a->intervals);
    if (a->space_set && (amlfs_space)a->space != src.space)
        amlfs_fail(AMLFS_EXIT_USAGE, a->from, "has space %s, --space says %s",
                   amlfs_space_names[src.space], amlfs_space_names[a->space]);
    if (a->form_set && (amlfs_form)a->form != src.form)
        amlfs_fail(AMLFS_EXIT_USAGE, a->from, "is in the %s form, --form says %s",
                   amlfs_form_names[src.form], amlfs_form_names[a->form]);
    a->intervals = (int)src.intervals;
    a->space = src.space;
    a->form = src.form;
    amlfs_policy_alloc(p, a->intervals);
    memcpy(p->mu, src.mu, sizeof(double) * 4 * (size_t)a->intervals);
    p->init = src.init;
    p->init_max_error = src.init_max_error;
    a->slope_floor = src.slope_floor; /* the replayed mu's theta as the source made it */
    amlfs_policy_free(&src);
}

/* mu_1 (allocating p): the identity or the fit of the form's draw to a classic loss. */
static void fitted_mu(amlfs_policy *p, const init_args *a)
{
    amlfs_policy_alloc(p, a->intervals);
    double err = 0.0;
    if (amlfs_fit_draw((amlfs_init_kind)a->init, (amlfs_space)a->space, (amlfs_form)a->form,
                       a->intervals, a->slope_floor, p->mu, &err) != 0)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL,
                   "--init %s is a margin loss, defined in the cosine space only "
                   "(add --space cosine)",
                   amlfs_init_names[a->init]);
    p->init = (amlfs_init_kind)a->init;
    p->init_max_error = err;
}

static int write_policy(init_args *a)
{
    if ((a->mode == MODE_REPLAY) != (a->from != NULL))
        amlfs_fail(AMLFS_EXIT_USAGE, a->from, a->mode == MODE_REPLAY
                                                  ? "--mode replay needs --from POLICY.h5"
                                                  : "--from is for --mode replay only");
    amlfs_check_exact_loss(NULL, (amlfs_exact_loss)a->loss, (amlfs_mode)a->mode,
                           (amlfs_space)a->space);
    amlfs_policy p;
    memset(&p, 0, sizeof p);
    if (a->from) /* replay trains one model on a finished run's final mu: that mu is mu_1 */
        replayed_mu(&p, a);
    else
        fitted_mu(&p, a);
    double sigma_intercept = isnan(a->sigma_intercept) ? a->sigma : a->sigma_intercept;
    p.form = (amlfs_form)a->form;
    p.sigma_intercept = sigma_intercept;
    p.slope_floor = a->form == AMLFS_FORM_ANCHORED ? a->slope_floor : 0.0;
    amlfs_sigma_vector((amlfs_form)a->form, (amlfs_space)a->space, a->intervals, a->sigma,
                       sigma_intercept, p.sigma_of);
    memcpy(p.mu_init, p.mu, sizeof(double) * 4 * (size_t)a->intervals);
    p.epoch = 1;
    p.adam_step = 0;
    p.seed = a->seed;
    p.space = (amlfs_space)a->space;
    p.mode = (amlfs_mode)a->mode;
    p.sampling = (amlfs_sampling)a->sampling;
    p.shaping = (amlfs_shaping)a->shaping;
    p.loss = (amlfs_exact_loss)a->loss;
    snprintf(p.last_update, sizeof p.last_update, "init");
    p.sigma = a->sigma;
    p.lr = a->lr;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.adam_eps = 1e-8;
    amlfs_policy_write(&p, a->out);
    printf("%s\n", a->out);
    amlfs_policy_free(&p);
    return AMLFS_EXIT_OK;
}

int main(int argc, char **argv)
{
    amlfs_tool_start("amlfs-init");
    amlfs_help_version(argc, argv, usage);
    init_args a;
    parse_args(argc, argv, &a);
    if (a.policy_only == (a.model != NULL))
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "give either --policy-only or --model NAME (see --help)");
    if (!a.out)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--out is required");
    return a.model ? write_start(&a) : write_policy(&a);
}
