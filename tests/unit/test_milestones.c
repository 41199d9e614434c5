/* test_milestones: the step schedule with milestones (kernels/cpu/schedule.c) against
 *   - tests/fixtures/milestones.h5, torch.optim.lr_scheduler.MultiStepLR stepped once per
 *     epoch (tests/fixtures/make_schedule_fixtures.py): the rate of every batch of epoch e
 *     must be MultiStepLR's for that epoch, for several batch counts per epoch;
 *   - a literal count of the milestones at or before t, with fractional milestones (an
 *     iteration count over the batches per epoch) and a warm-up;
 *   - the training state's schedule (tools/lib/train.c amlfs_state_schedule), which must
 *     carry the checkpoint's milestones, and the rates amlfs_train_batch's epoch and batch
 *     positions give.
 * Tolerance: 1e-14 relative (PyTorch multiplies by gamma at each milestone, amlfs takes
 * one power: the two round differently in the last bit). */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlfs_layers.h"
#include "check.h"
#include "train.h"

static void test_torch(const char *name)
{
    const char *root = getenv("AMLFS_ROOT");
    char path[4096], ds[128];
    snprintf(path, sizeof path, "%s/tests/fixtures/milestones.h5", root ? root : ".");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open %s (tests/fixtures/make_schedule_fixtures.py)", path);
    if (f < 0)
        return;
    char g[64];
    snprintf(g, sizeof g, "/%s", name);
    amlfs_schedule s = {.kind = AMLFS_SCHEDULE_STEP, .step = 30};
    hsize_t dm[1] = {0}, de[1] = {0};
    H5LTget_attribute_double(f, g, "base_lr", &s.base_lr);
    H5LTget_attribute_double(f, g, "gamma", &s.gamma);
    snprintf(ds, sizeof ds, "%s/milestones", g);
    H5LTget_dataset_info(f, ds, dm, NULL, NULL);
    long long ms[AMLFS_MAX_MILESTONES];
    CHECK(dm[0] >= 1 && dm[0] <= AMLFS_MAX_MILESTONES, "%s: %llu milestones", ds,
          (unsigned long long)dm[0]);
    H5LTread_dataset(f, ds, H5T_NATIVE_LLONG, ms);
    s.nmilestones = (int)dm[0];
    for (int i = 0; i < s.nmilestones; i++)
        s.milestones[i] = (double)ms[i];
    snprintf(ds, sizeof ds, "%s/lr", g);
    H5LTget_dataset_info(f, ds, de, NULL, NULL);
    double *want = malloc(sizeof(double) * de[0]);
    H5LTread_dataset_double(f, ds, want);
    H5Fclose(f);
    double worst = 0.0;
    int bad = 0;
    for (int batches = 1; batches <= 13; batches += 4)
        for (size_t e = 1; e <= de[0]; e++)
            for (int b = 0; b < batches; b++) {
                double got = amlfs_lr_at(&s, (double)(e - 1) + (double)b / batches);
                double err = fabs(got - want[e - 1]) / want[e - 1];
                worst = err > worst ? err : worst;
                if (!check_close(got, want[e - 1], 0, 1e-14) && bad++ < 3)
                    fprintf(stderr, "%s: epoch %zu batch %d/%d: lr %.17g, MultiStepLR %.17g\n",
                            name, e, b, batches, got, want[e - 1]);
            }
    printf("  %-8s vs MultiStepLR: %llu epochs, max rel err %.3g\n", name,
           (unsigned long long)de[0], worst);
    CHECK(bad == 0, "%s: %d rates differ from MultiStepLR", name, bad);
    free(want);
}

/* lr = base gamma^#{m_i <= t} after the warm-up, written out */
static double literal(double base, double gamma, double warmup, const double *m, int k,
                      double t)
{
    if (t < warmup)
        return base * t / warmup;
    double lr = base;
    for (int i = 0; i < k; i++)
        if (m[i] <= t)
            lr *= gamma;
    return lr;
}

static void test_literal(void)
{
    amlfs_schedule s = {.kind = AMLFS_SCHEDULE_STEP, .base_lr = 0.4, .warmup = 0.5,
                        .step = 1, .gamma = 0.25, .nmilestones = 3,
                        .milestones = {0.75, 2.25, 3}};
    int bad = 0;
    for (int b = 0; b <= 4 * 5; b++) { /* 4 batches per epoch, 5 epochs */
        double t = b / 4.0;
        double got = amlfs_lr_at(&s, t), want = literal(0.4, 0.25, 0.5, s.milestones, 3, t);
        if (!check_close(got, want, 0, 1e-15) && bad++ < 3)
            fprintf(stderr, "t %g: lr %.17g, want %.17g\n", t, got, want);
    }
    CHECK(bad == 0, "fractional milestones: %d rates differ from the literal count", bad);
    /* the points themselves */
    CHECK(amlfs_lr_at(&s, 0.5) == 0.4, "after the warm-up, before 0.75: base");
    CHECK(amlfs_lr_at(&s, 0.74) == 0.4, "just before the first milestone: base");
    CHECK(amlfs_lr_at(&s, 0.75) == 0.1, "at the first milestone: base gamma");
    CHECK_CLOSE(amlfs_lr_at(&s, 2.25), 0.025, 0, 1e-15, "at the second: base gamma^2");
    CHECK_CLOSE(amlfs_lr_at(&s, 2.9999), 0.025, 0, 1e-15, "before the third");
    CHECK_CLOSE(amlfs_lr_at(&s, 3.0), 0.00625, 0, 1e-15, "at the third: base gamma^3");
    CHECK_CLOSE(amlfs_lr_at(&s, 1e6), 0.00625, 0, 1e-15, "and ever after");
    /* no milestones: the step every `step` epochs, as before */
    s.nmilestones = 0;
    s.warmup = 0;
    CHECK_CLOSE(amlfs_lr_at(&s, 2.5), 0.4 * 0.25 * 0.25, 0, 1e-15, "no milestones: every step");
}

static void test_state(void)
{
    amlfs_train_state st;
    memset(&st, 0, sizeof st);
    st.schedule = AMLFS_SCHEDULE_STEP;
    st.lr = 0.1;
    st.epochs = 30;
    st.step = 30;
    st.gamma = 0.1;
    st.nmilestones = 2;
    st.milestones[0] = 16;
    st.milestones[1] = 24;
    amlfs_schedule s = amlfs_state_schedule(&st);
    CHECK(s.nmilestones == 2 && s.milestones[0] == 16 && s.milestones[1] == 24,
          "amlfs_state_schedule: milestones not carried (%d)", s.nmilestones);
    /* amlfs_train_batch's position of batch b of B in epoch e: (e - 1) + b / B */
    int batches = 1931; /* CASIA-WebFace at batch 256 */
    CHECK(amlfs_lr_at(&s, 15.0 + 1930.0 / batches) == 0.1, "epoch 16's last batch: 0.1");
    CHECK_CLOSE(amlfs_lr_at(&s, 16.0), 0.01, 0, 1e-15, "epoch 17's first batch: 0.01");
    CHECK_CLOSE(amlfs_lr_at(&s, 24.0), 0.001, 0, 1e-15, "epoch 25's first batch: 0.001");
}

int main(void)
{
    printf("step schedule with milestones\n");
    test_torch("paper");
    test_torch("dense");
    test_torch("late");
    test_literal();
    test_state();
    return check_done("test_milestones");
}
