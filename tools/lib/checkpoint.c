/* checkpoint.c: checkpoints in and out.
 * Depends on: h5io (and h5get), model (the tensors), search (the space's names), tool. */
#include "checkpoint.h"
#include "h5io.h"
#include "search.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const amlfs_status_names[] = {"ok", "diverged", NULL};
const char *const amlfs_schedule_names[] = {"cosine", "step", NULL};
const char *const amlfs_augment_names[] = {"none", "crop-flip", "flip", "reid", NULL};
const char *const amlfs_sampler_names[] = {"random", "pk", NULL};

void amlfs_state_read(amlfs_train_state *st, const char *path)
{
    memset(st, 0, sizeof *st);
    hid_t f = amlfs_h5_open(path, "checkpoint");
    st->shape.model = amlfs_attr_enum(f, "/", "model", amlfs_model_names);
    st->shape.classes = (int)amlfs_attr_i64(f, "/", "classes");
    st->shape.channels = (int)amlfs_attr_i64(f, "/", "channels");
    st->shape.height = (int)amlfs_attr_i64(f, "/", "height");
    st->shape.width = (int)amlfs_attr_i64(f, "/", "width");
    st->shape.batch = (int)amlfs_attr_i64(f, "/", "batch");
    /* the cosine head's: optional (absent for linear heads; the model's defaults else) */
    int cosine = amlfs_model_kind_is_cosine(st->shape.model);
    int has_scale = amlfs_attr_exists(f, "/", "scale"),
        has_embedding = amlfs_attr_exists(f, "/", "embedding");
    if (!cosine && (has_scale || has_embedding))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@%s: only cosine-head models have it (this is a %s)",
                   has_scale ? "scale" : "embedding", amlfs_model_names[st->shape.model]);
    if (has_scale) {
        st->shape.scale = amlfs_attr_f64(f, "/", "scale");
        if (!(st->shape.scale > 0) || !isfinite(st->shape.scale))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@scale: %g, expected a finite s > 0",
                       st->shape.scale);
    }
    if (has_embedding) {
        int64_t e = amlfs_attr_i64(f, "/", "embedding");
        if (e < 1 || e > 65536)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/@embedding: %lld, expected 1 to 65536",
                       (long long)e);
        st->shape.embedding = (int)e;
    }
    amlfs_attr_str(f, "/", "dataset", st->dataset, sizeof st->dataset);
    st->schedule = amlfs_attr_enum(f, "/", "schedule", amlfs_schedule_names);
    st->augment = amlfs_attr_enum(f, "/", "augment", amlfs_augment_names);
    /* optional: the identity sampler (absent: random) and its P and K */
    if (amlfs_attr_exists(f, "/", "sampler"))
        st->sampler = amlfs_attr_enum(f, "/", "sampler", amlfs_sampler_names);
    int has_p = amlfs_attr_exists(f, "/", "p"), has_k = amlfs_attr_exists(f, "/", "k");
    if (st->sampler == AMLFS_SAMPLER_PK && (!has_p || !has_k))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@%s: missing, the pk sampler needs /@p and /@k",
                   has_p ? "k" : "p");
    if (st->sampler != AMLFS_SAMPLER_PK && (has_p || has_k))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@%s: only the pk sampler has it (the sampler is "
                   "random)", has_p ? "p" : "k");
    if (has_p && has_k) {
        st->p = amlfs_attr_i64(f, "/", "p");
        st->k = amlfs_attr_i64(f, "/", "k");
    }
    st->status = amlfs_attr_enum(f, "/", "status", amlfs_status_names);
    st->space = amlfs_attr_enum(f, "/", "space", amlfs_space_names);
    amlfs_attr_str(f, "/", "device", st->device, sizeof st->device);
    st->epoch = amlfs_attr_i64(f, "/", "epoch");
    st->epochs = amlfs_attr_i64(f, "/", "epochs");
    st->seed = amlfs_attr_i64(f, "/", "seed");
    st->optim_steps = amlfs_attr_i64(f, "/", "optim_steps");
    st->nesterov = amlfs_attr_i64(f, "/", "nesterov");
    st->intervals = amlfs_attr_i64(f, "/", "intervals");
    st->threads = amlfs_attr_i64(f, "/", "threads");
    st->lr = amlfs_attr_f64(f, "/", "lr");
    st->momentum = amlfs_attr_f64(f, "/", "momentum");
    st->weight_decay = amlfs_attr_f64(f, "/", "weight_decay");
    st->warmup = amlfs_attr_f64(f, "/", "warmup");
    st->step = amlfs_attr_f64(f, "/", "step");
    st->gamma = amlfs_attr_f64(f, "/", "gamma");
    st->train_loss = amlfs_attr_f64(f, "/", "train_loss");
    st->train_top1 = amlfs_attr_f64(f, "/", "train_top1");
    st->clamp_fraction = amlfs_attr_f64(f, "/", "clamp_fraction");
    if (st->intervals < 1 || st->intervals > 4096)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@intervals: %lld, expected 1 to 4096",
                   (long long)st->intervals);
    st->theta = amlfs_zalloc((size_t)(4 * st->intervals), sizeof(double));
    amlfs_h5_read(f, "/theta", H5T_NATIVE_DOUBLE, st->theta);
    if (amlfs_h5_exists(f, "/milestones")) { /* optional: the step schedule's milestones */
        size_t k = amlfs_h5_count(f, "/milestones");
        if (k < 1 || k > AMLFS_MAX_MILESTONES)
            amlfs_fail(AMLFS_EXIT_USAGE, path, "/milestones: %zu values, expected 1 to %d", k,
                       AMLFS_MAX_MILESTONES);
        st->nmilestones = (int)k;
        amlfs_h5_read(f, "/milestones", H5T_NATIVE_DOUBLE, st->milestones);
    }
    H5Fclose(f);
    if (st->sampler == AMLFS_SAMPLER_PK &&
        (st->p < 1 || st->k < 1 || st->p > 65536 || st->k > 65536 ||
         st->p * st->k != st->shape.batch))
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/@p %lld, /@k %lld: expected P, K >= 1 with P x K = "
                   "/@batch (%d)", (long long)st->p, (long long)st->k, st->shape.batch);
    if (st->nmilestones && st->schedule != AMLFS_SCHEDULE_STEP)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "/milestones: given, but the schedule is %s "
                   "(milestones are the step schedule's)", amlfs_schedule_names[st->schedule]);
    amlfs_check_milestones(path, st->milestones, st->nmilestones);
    if (st->shape.batch < 1 || st->epoch < 0 || st->epochs < 1 || st->optim_steps < 0 ||
        st->seed < 0 || st->seed > 0xffffffffLL || !(st->lr >= 0) || !(st->momentum >= 0) ||
        !(st->weight_decay >= 0) || !(st->warmup >= 0) || !(st->step > 0) ||
        !isfinite(st->gamma) || st->shape.classes < 2)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "training settings out of range (batch %d, epoch "
                   "%lld of %lld, lr %g, momentum %g, weight decay %g, warm-up %g, step %g)",
                   st->shape.batch, (long long)st->epoch, (long long)st->epochs, st->lr,
                   st->momentum, st->weight_decay, st->warmup, st->step);
}

void amlfs_check_milestones(const char *path, const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!(v[i] > (i ? v[i - 1] : 0.0)) || !isfinite(v[i]))
            amlfs_fail(AMLFS_EXIT_USAGE, path, "%s[%d] is %g, expected increasing epochs > 0",
                       path ? "/milestones" : "--milestones", i, v[i]);
}

void amlfs_state_free(amlfs_train_state *st)
{
    free(st->theta);
    st->theta = NULL;
}

static void tensor_path(const amlfs_tensor *t, const char *group, char *buf, size_t n)
{
    snprintf(buf, n, "/%s/%s", group, t->name);
}

struct count_walk {
    int n;
};

static herr_t count_member(hid_t g, const char *name, const H5L_info_t *li, void *data)
{
    (void)g;
    (void)name;
    (void)li;
    ((struct count_walk *)data)->n++;
    return 0;
}

static int members(hid_t f, const char *group)
{
    struct count_walk w = {0};
    H5Literate_by_name(f, group, H5_INDEX_NAME, H5_ITER_INC, NULL, count_member, &w,
                       H5P_DEFAULT);
    return w.n;
}

void amlfs_checkpoint_load(amlfs_model *m, amlfs_context *ctx, const char *path)
{
    hid_t f = amlfs_h5_open(path, "checkpoint");
    int nparams = 0, nbuffers = 0;
    for (int i = 0; i < amlfs_model_tensor_count(m); i++) {
        amlfs_tensor *t = amlfs_model_tensor(m, i);
        const char *groups[2] = {t->kind == TENSOR_PARAM ? "params" : "buffers", "optim"};
        int parts = t->kind == TENSOR_PARAM ? 2 : 1;
        nparams += t->kind == TENSOR_PARAM;
        nbuffers += t->kind == TENSOR_BUFFER;
        for (int part = 0; part < parts; part++) {
            char p[160];
            tensor_path(t, groups[part], p, sizeof p);
            if (!amlfs_h5_exists(f, p))
                amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: missing (the model has this tensor)", p);
            hsize_t dims[8];
            int rank = amlfs_h5_dims(f, p, dims);
            int same = rank == t->rank;
            for (int d = 0; same && d < rank; d++)
                same = (int64_t)dims[d] == t->dims[d];
            if (!same) {
                char want[64] = "", got[64] = "";
                for (int d = 0; d < t->rank; d++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld",
                             d ? "," : "", (long long)t->dims[d]);
                for (int d = 0; d < rank; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu",
                             d ? "," : "", (unsigned long long)dims[d]);
                amlfs_fail(AMLFS_EXIT_USAGE, path, "%s: shape (%s), the model needs (%s)", p,
                           got, want);
            }
            float *host = amlfs_zalloc(t->size, sizeof(float));
            amlfs_h5_read(f, p, H5T_NATIVE_FLOAT, host);
            amlfs_upload(ctx, part ? t->momentum : t->data, host, t->size * sizeof(float));
            free(host);
        }
    }
    if (members(f, "/params") != nparams || members(f, "/buffers") != nbuffers ||
        members(f, "/optim") != nparams)
        amlfs_fail(AMLFS_EXIT_USAGE, path, "holds tensors the model does not have (%d "
                   "parameters, %d buffers, %d momenta; the model has %d, %d, %d)",
                   members(f, "/params"), members(f, "/buffers"), members(f, "/optim"), nparams,
                   nbuffers, nparams);
    H5Fclose(f);
}

void amlfs_checkpoint_write(const amlfs_train_state *st, amlfs_model *m, amlfs_context *ctx,
                            const char *path)
{
    amlfs_h5_out o = amlfs_h5_create(path, "checkpoint");
    hid_t f = o.file;
    amlfs_attr_set_str(f, "/", "model", amlfs_model_names[st->shape.model]);
    amlfs_attr_set_str(f, "/", "dataset", st->dataset);
    amlfs_attr_set_i64(f, "/", "classes", st->shape.classes);
    amlfs_attr_set_i64(f, "/", "channels", st->shape.channels);
    amlfs_attr_set_i64(f, "/", "height", st->shape.height);
    amlfs_attr_set_i64(f, "/", "width", st->shape.width);
    amlfs_attr_set_i64(f, "/", "batch", st->shape.batch);
    if (amlfs_model_head_is_cosine(m)) { /* as built: the defaults filled in */
        amlfs_attr_set_f64(f, "/", "scale", amlfs_model_get_shape(m)->scale);
        amlfs_attr_set_i64(f, "/", "embedding", amlfs_model_get_shape(m)->embedding);
    }
    amlfs_attr_set_f64(f, "/", "lr", st->lr);
    amlfs_attr_set_f64(f, "/", "momentum", st->momentum);
    amlfs_attr_set_i64(f, "/", "nesterov", st->nesterov);
    amlfs_attr_set_f64(f, "/", "weight_decay", st->weight_decay);
    amlfs_attr_set_str(f, "/", "schedule", amlfs_schedule_names[st->schedule]);
    amlfs_attr_set_f64(f, "/", "warmup", st->warmup);
    amlfs_attr_set_i64(f, "/", "epochs", st->epochs);
    amlfs_attr_set_f64(f, "/", "step", st->step);
    amlfs_attr_set_f64(f, "/", "gamma", st->gamma);
    amlfs_attr_set_str(f, "/", "augment", amlfs_augment_names[st->augment]);
    if (st->sampler == AMLFS_SAMPLER_PK) { /* absent: random (the files of before) */
        amlfs_attr_set_str(f, "/", "sampler", amlfs_sampler_names[st->sampler]);
        amlfs_attr_set_i64(f, "/", "p", st->p);
        amlfs_attr_set_i64(f, "/", "k", st->k);
    }
    amlfs_attr_set_i64(f, "/", "seed", st->seed);
    amlfs_attr_set_i64(f, "/", "epoch", st->epoch);
    amlfs_attr_set_i64(f, "/", "optim_steps", st->optim_steps);
    amlfs_attr_set_str(f, "/", "status", amlfs_status_names[st->status]);
    amlfs_attr_set_f64(f, "/", "train_loss", st->train_loss);
    amlfs_attr_set_f64(f, "/", "train_top1", st->train_top1);
    amlfs_attr_set_f64(f, "/", "clamp_fraction", st->clamp_fraction);
    amlfs_attr_set_i64(f, "/", "intervals", st->intervals);
    amlfs_attr_set_str(f, "/", "space", amlfs_space_names[st->space]);
    amlfs_attr_set_i64(f, "/", "threads", st->threads);
    amlfs_attr_set_str(f, "/", "device", st->device);
    hsize_t dt[1] = {(hsize_t)(4 * st->intervals)};
    amlfs_h5_write_f64(f, "/theta", 1, dt, st->theta);
    if (st->nmilestones > 0) {
        hsize_t dm[1] = {(hsize_t)st->nmilestones};
        amlfs_h5_write_f64(f, "/milestones", 1, dm, st->milestones);
    }
    H5Gclose(amlfs_h5_group(f, "/params"));
    H5Gclose(amlfs_h5_group(f, "/buffers"));
    H5Gclose(amlfs_h5_group(f, "/optim"));
    for (int i = 0; i < amlfs_model_tensor_count(m); i++) {
        amlfs_tensor *t = amlfs_model_tensor(m, i);
        hsize_t dims[4];
        for (int d = 0; d < t->rank; d++)
            dims[d] = (hsize_t)t->dims[d];
        float *host = amlfs_zalloc(t->size, sizeof(float));
        const char *groups[2] = {t->kind == TENSOR_PARAM ? "params" : "buffers", "optim"};
        for (int part = 0; part < (t->kind == TENSOR_PARAM ? 2 : 1); part++) {
            char p[160];
            tensor_path(t, groups[part], p, sizeof p);
            amlfs_download(ctx, host, part ? t->momentum : t->data, t->size * sizeof(float));
            amlfs_h5_write(f, p, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->rank, dims, host);
        }
        free(host);
    }
    amlfs_h5_finish(&o);
}
