/* metric.h: face verification and identification on embeddings (issue 16).
 *
 * Verification follows insightface's verification.py (calculate_roc, calculate_val):
 * rows L2-normalised in float64 (a zero row stays zero, as sklearn's normalize leaves
 * it), the squared L2 distance of each pair (sums in index order), contiguous folds
 * (sklearn's KFold without shuffle: the first P % folds folds hold one pair more;
 * folds = 1 tests on the training pairs, as insightface's LFold does), "same" when the
 * distance is below the threshold.
 *   accuracy: per fold, the first best of the 400 thresholds arange(0, 4, 0.01) (i * 0.01)
 *     on the other folds (np.argmax's tie rule), the fold's accuracy at it; the mean over
 *     the folds, accuracy_std their population std (np.std); threshold the mean of the
 *     folds' chosen thresholds.
 *   TAR at FAR: on the other folds, the FAR of each of the 4,000 thresholds
 *     arange(0, 4, 0.001) (the grid insightface's evaluate() hands calculate_val); when
 *     its largest value reaches the target, the threshold is scipy's
 *     interp1d(far, thresholds, kind='slinear') at the target (its B-spline of degree 1
 *     on the duplicated FARs: the interval [far[j-1], far[j]] with j the first index >= 1
 *     whose FAR exceeds the target, capped at the last; 0 when that interval is empty),
 *     else 0; TAR and FAR of the fold at it; tar_at_far and far the means over the folds.
 *     NaN (not an error) when a fold has no same or no different pair to divide by,
 *     where insightface would fail.
 *
 * Identification is MegaFace's rank-k protocol: for every probe identity with n images,
 * each image in turn is the gallery entry added to the distractors and each of the other
 * n - 1 images a probe; a trial is a hit when the probe's score with its mate is at least
 * its rank-th best distractor score. Scores are cosines of the normalised features. The
 * distractors are screened in chunks with one float32 BLAS sgemm each; every score that
 * could decide a hit (within a rigorous bound of the float32 error of the rank-th best
 * seen) is recomputed in float64 (sums in index order), so the result equals a float64
 * per-probe loop exactly. Memory: the probes, one chunk and its (probes x chunk) scores.
 * Depends on: OpenBLAS (cblas.h), OpenMP.
 */
#ifndef AMLFS_METRIC_H
#define AMLFS_METRIC_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double accuracy, accuracy_std, threshold, tar_at_far, far;
    int folds;
    int64_t pairs;
    double tar_std;       /* np.std of the folds' TAR (calculate_val's val_std) */
    double tar_threshold; /* the mean of the folds' interpolated thresholds */
} amlfs_verify_result;

/* emb (n,d) float32 row-major (normalised inside, squared L2 distance), pairs (p,2),
 * issame (p). insightface's protocol (above). Returns 0, or -1 with err. */
int amlfs_verify(const float *emb, int64_t n, int d, const int32_t *pairs,
                 const uint8_t *issame, int64_t p, int folds, double far_target,
                 amlfs_verify_result *r, char *err, size_t errlen);
/* The same on float64 embeddings (no rounding to float32 on the way). */
int amlfs_verify_f64(const double *emb, int64_t n, int d, const int32_t *pairs,
                     const uint8_t *issame, int64_t p, int folds, double far_target,
                     amlfs_verify_result *r, char *err, size_t errlen);
/* The protocol on given squared distances dist (p), each finite and >= 0. */
int amlfs_verify_dist(const double *dist, const uint8_t *issame, int64_t p, int folds,
                      double far_target, amlfs_verify_result *r, char *err, size_t errlen);

/* Row x (d) normalised into out (float64 sums in index order; a zero row stays zero). */
void amlfs_normalize_row(const double *x, int d, double *out);

/* in-memory MegaFace-style rank-k identification over probes (np,d) with ids and
 * distractors (nd,d); cosine similarity of normalised features. */
int amlfs_identify(const float *probe, const int32_t *probe_ids, int64_t np,
                   const float *distractors, int64_t nd, int d, int rank,
                   double *rank_k, int64_t *trials, char *err, size_t errlen);

/* The streaming form: begin with the probes (float64, (np,d) row-major), add the
 * distractors chunk by chunk in any sizes, end with the CMC: cmc[j] (rank values) the
 * fraction of trials that are hits at rank j + 1 (cmc[rank - 1] is rank-k). begin
 * returns NULL with err on bad arguments; end frees the state and returns 0, or -1 with
 * err when there is no trial (no identity with two images). */
typedef struct amlfs_identify_state amlfs_identify_state;
amlfs_identify_state *amlfs_identify_begin(const double *probe, const int32_t *probe_ids,
                                           int64_t np, int d, int rank, char *err,
                                           size_t errlen);
void amlfs_identify_add(amlfs_identify_state *s, const double *distractors, int64_t nd);
int amlfs_identify_end(amlfs_identify_state *s, double *cmc, int64_t *trials, char *err,
                       size_t errlen);
/* The distractors added so far. */
int64_t amlfs_identify_count(const amlfs_identify_state *s);
/* The rows per add that keep every worker busy (workers x chunk rows). The workers are
 * OpenMP's threads at begin; with more than one, begin sets OpenBLAS to one thread. */
int64_t amlfs_identify_block(const amlfs_identify_state *s);

/* Largest rank accepted. */
#define AMLFS_IDENTIFY_MAX_RANK 10000

#endif
