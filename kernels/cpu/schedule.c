/* schedule.c: the learning-rate schedules (amlfs_layers.h, part 3). Host code for every
 * device: the rate is one double per batch, passed to amlfs_sgd_step. */
#include "amlfs_layers.h"

#include <math.h>

double amlfs_lr_at(const amlfs_schedule *s, double t)
{
    if (!(t > 0.0)) t = 0.0; /* also NaN */
    if (t < s->warmup) return s->base_lr * t / s->warmup;
    switch (s->kind) {
    case AMLFS_SCHEDULE_COSINE: {
        double span = s->epochs - s->warmup;
        double frac = span > 0.0 ? (t - s->warmup) / span : 1.0;
        if (frac >= 1.0) return 0.0;
        return s->base_lr * 0.5 * (1.0 + cos(M_PI * frac));
    }
    case AMLFS_SCHEDULE_STEP: {
        if (s->nmilestones <= 0)
            return s->base_lr * pow(s->gamma, floor(t / s->step));
        int passed = 0; /* milestones are increasing: count those at or before t */
        while (passed < s->nmilestones && passed < AMLFS_MAX_MILESTONES &&
               s->milestones[passed] <= t)
            passed++;
        return s->base_lr * pow(s->gamma, passed);
    }
    }
    return NAN; /* an unknown kind: loud downstream */
}
