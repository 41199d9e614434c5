/* reid.h: person re-identification ranking metrics (issue 17), the Market-1501 /
 * DukeMTMC-reID protocol as torchreid's eval_market1501 computes it.
 *
 * Per query: the gallery entries of the query's pid AND camera are removed, and those
 * of pid -1 (junk, as the official Market evaluation ignores them; torchreid's readers
 * drop them at load); the rest is ranked by distance ascending, equal distances in
 * gallery index order (a stable order: torchreid's np.argsort is quicksort, not stable,
 * so on ties its order, and so its numbers, may differ); a query without a true match
 * left (same pid, other camera) is skipped and counted. AP is non-interpolated:
 * (sum over the true matches in rank order of m / rank_m) / M, summed in that order, as
 * torchreid's cumsum / rank times matches; mAP the mean of the APs in query order,
 * summed sequentially; cmc[k] = (valid queries with a true match within the first k + 1)
 * / valid queries, for k < 50 (a query with fewer than 50 kept entries still counts at
 * every rank past its first match), in float64 (torchreid rounds its CMC to float32).
 *
 * Distances: EUCLIDEAN is the squared Euclidean distance |q|^2 + |g|^2 - 2 q.g in
 * float32 (torchreid's euclidean_squared_distance; rankings are those of the plain
 * distance), COSINE is 1 - cos of the rows normalised in float64 and rounded to float32
 * (a zero row stays zero); both by OpenBLAS sgemm over chunks of queries.
 *
 * Re-ranking (rerank = 1): the k-reciprocal encoding of Zhong et al. 2017 as torchreid's
 * utils/rerank.py re_ranking computes it, with k1 = 20, k2 = 6, lambda = 0.3, fed as in
 * torchreid's engine with the distances above (query-gallery, query-query and
 * gallery-gallery; re_ranking squares them, so Euclidean enters as |q - g|^4, as in
 * torchreid): see amlfs_reid_rerank.
 * Depends on: OpenBLAS (cblas.h), OpenMP.
 */
#ifndef AMLFS_REID_H
#define AMLFS_REID_H

#include <stddef.h>
#include <stdint.h>

#define AMLFS_REID_MAX_RANK 50

typedef struct {
    double map, rank1;
    double cmc[AMLFS_REID_MAX_RANK];
    int64_t queries; /* the queries evaluated (with a true match) */
    int64_t skipped; /* the queries without a true match after the removal */
} amlfs_reid_result;

typedef enum { AMLFS_REID_EUCLIDEAN = 0, AMLFS_REID_COSINE = 1 } amlfs_reid_distance;

/* features (n,d) float32 row-major; pids/camids int32. Returns 0, or -1 with err (bad
 * sizes, non-finite features, out of memory, no query with a true match). */
int amlfs_reid_eval(const float *qf, const int32_t *qpids, const int32_t *qcams, int64_t nq,
                    const float *gf, const int32_t *gpids, const int32_t *gcams, int64_t ng,
                    int d, amlfs_reid_distance dist, int rerank, amlfs_reid_result *r,
                    char *err, size_t errlen);

/* The same from a distance matrix (nq, ng) row-major (float32 or float64 as double
 * here); a non-finite entry is an error naming its first position. */
int amlfs_reid_eval_distmat(const double *distmat, const int32_t *qpids, const int32_t *qcams,
                            int64_t nq, const int32_t *gpids, const int32_t *gcams, int64_t ng,
                            amlfs_reid_result *r, char *err, size_t errlen);

/* Beyond the contract: torchreid's re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2,
 * lambda) on given float32 distance matrices qg (nq,ng), qq (nq,nq), gg (ng,ng), row-major,
 * into out (nq,ng) float32. As torchreid: the (N,N) matrix A = [[qq, qg], [qg^T, gg]]
 * (N = nq + ng) squared in float32, original[i][j] = A[j][i] / max_k A[k][i] (float32;
 * the transpose of the column-normalised matrix); initial_rank the rows' orders (stable:
 * ties by index, where np.argsort is not); per row i its k-reciprocal set (the i's
 * k1 + 1 nearest whose own k1 + 1 nearest hold i), expanded by each member's
 * round(k1/2)-reciprocal set holding more than 2/3 of it in common; V[i] the Gaussian
 * weights exp(-original[i][j]) over that set, normalised to sum 1 (the sum in float64,
 * where numpy sums float32 pairwise); with k2 > 1 V[i] the mean of V over i's k2 nearest
 * rows (float32, in rank order); jaccard[i][j] = 1 - t / (2 - t), t the sum over columns
 * k of min(V[i][k], V[j][k]); out = jaccard * (1 - lambda) + original * lambda, float32.
 * V is held sparse; the (N,N) float32 matrix original whole (4 N^2 bytes: 1.5 GB at
 * Market's 19,281). Needs 1 <= k2 <= k1 + 1 <= N. Returns 0, or -1 with err. */
int amlfs_reid_rerank(const float *qg, const float *qq, const float *gg, int64_t nq,
                      int64_t ng, int k1, int k2, double lambda, float *out, char *err,
                      size_t errlen);

/* The query-gallery distances of the features as amlfs_reid_eval uses them, into out
 * (nq,ng) float32 (for re-ranking's three blocks and the tests). 0, or -1 with err. */
int amlfs_reid_distances(const float *a, int64_t na, const float *b, int64_t nb, int d,
                         amlfs_reid_distance dist, float *out, char *err, size_t errlen);

#endif
