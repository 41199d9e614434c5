"""amlfs-metric reid against independent computations written here.

The protocol, literally: per query the gallery entries of pid -1 and those of the
query's pid and camera dropped, the rest sorted by (distance, gallery index) with
Python's sort, AP as the mean over the true matches of (matches so far / rank), mAP and
every CMC rank counted in plain Python. The tool must give exactly these numbers on
quantised distance matrices full of ties, with junk entries, same-camera mates and
queries without a true match (float32 and float64 files), and on integer features whose
float32 distances are exact (Euclidean) or on features whose float64 distances are far
apart (cosine: gaps checked to exceed 1e-5, where float32 errs by about 1e-7).

Re-ranking: a NumPy port of torchreid's re_ranking written here (the same steps on
dense arrays: argsort - stable here, the tool's tie rule, where torchreid's quicksort
is not -, the k-reciprocal sets with the 1/2 expansion, Gaussian weights, k2 query
expansion, Jaccard, the lambda mix). The tool's re-ranked distances (--save-distmat on
given matrices) must equal it within 1e-5 (tolerance: the weights' sum, numpy's float32
pairwise sum against the tool's float64 one, and float32 exp), and the metrics on the
tool's distances must equal the literal loop on them exactly.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import os
import unittest

import h5py
import numpy as np

import amlfs_test as T

TOOL = "amlfs-metric"


# ---- the protocol, literally ------------------------------------------------------------

def literal_reid(dist, qp, qc, gp, gc, max_rank=50):
    """(mAP, cmc list of max_rank, evaluated, skipped) in plain Python."""
    nq, ng = len(qp), len(gp)
    aps, firsts, skipped = [], [], 0
    for i in range(nq):
        row = [float(v) for v in dist[i]]
        kept = [j for j in range(ng)
                if int(gp[j]) != -1 and not (int(gp[j]) == int(qp[i]) and int(gc[j]) == int(qc[i]))]
        order = sorted(kept, key=lambda j: (row[j], j))
        matches = [int(gp[j]) == int(qp[i]) for j in order]
        if not any(matches):
            skipped += 1
            continue
        hits, s, first = 0, 0.0, None
        for r, m in enumerate(matches, 1):
            if m:
                hits += 1
                s += hits / r
                if first is None:
                    first = r
        aps.append(s / hits)
        firsts.append(first)
    valid = len(aps)
    total = 0.0
    for a in aps:
        total += a
    cmc = [sum(1 for f in firsts if f <= k + 1) / valid for k in range(max_rank)]
    return total / valid, cmc, valid, skipped


# ---- torchreid's re_ranking, ported to NumPy here -----------------------------------------

def np_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    nq = q_g.shape[0]
    a = np.concatenate([np.concatenate([q_q, q_g], axis=1),
                        np.concatenate([q_g.T, g_g], axis=1)], axis=0)
    a = np.power(a, 2).astype(np.float32)
    orig = np.transpose(1. * a / np.max(a, axis=0))
    n = orig.shape[0]
    rank = np.argsort(orig, axis=1, kind="stable").astype(np.int32)
    V = np.zeros_like(orig, dtype=np.float32)
    half = int(np.around(k1 / 2.)) + 1
    for i in range(n):
        fw = rank[i, :k1 + 1]
        bw = rank[fw, :k1 + 1]
        kr = fw[np.where(bw == i)[0]]
        ex = kr
        for c in kr:
            cf = rank[c, :half]
            cb = rank[cf, :half]
            ckr = cf[np.where(cb == c)[0]]
            if len(np.intersect1d(ckr, kr)) > 2. / 3 * len(ckr):
                ex = np.append(ex, ckr)
        ex = np.unique(ex)
        w = np.exp(-orig[i, ex])
        V[i, ex] = 1. * w / np.sum(w)
    orig = orig[:nq]
    if k2 != 1:
        Vq = np.zeros_like(V, dtype=np.float32)
        for i in range(n):
            Vq[i] = np.mean(V[rank[i, :k2], :], axis=0)
        V = Vq
    inv = [np.where(V[:, c] != 0)[0] for c in range(n)]
    jac = np.zeros_like(orig, dtype=np.float32)
    for i in range(nq):
        t = np.zeros((1, n), dtype=np.float32)
        nz = np.where(V[i] != 0)[0]
        for k in nz:
            t[0, inv[k]] = t[0, inv[k]] + np.minimum(V[i, k], V[inv[k], k])
        jac[i] = 1 - t / (2. - t)
    final = jac * (1 - lam) + orig * lam
    return final[:nq, nq:]


def sq_euclid32(a, b):
    """torchreid's euclidean_squared_distance in float32."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    return ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T).astype(np.float32)


def structured(rng, nq, ng, pids, cams, junk=0):
    qp = rng.integers(0, pids, nq)
    qc = rng.integers(0, cams, nq)
    gp = rng.integers(0, pids, ng)
    gc = rng.integers(0, cams, ng)
    if junk:
        gp[rng.choice(ng, junk, replace=False)] = -1
    return qp, qc, gp, gc


class ReidTest(T.ToolTest):
    def ids_file(self, name, pids, cams, features=None, pid_dtype=np.int32):
        path = self.path(name)
        with h5py.File(path, "w") as f:
            f["pids"] = np.asarray(pids).astype(pid_dtype)
            f["camids"] = np.asarray(cams).astype(np.int64)
            if features is not None:
                f["features"] = features
        return path

    def run_reid(self, q, g, *extra, out_name="r.h5"):
        out = self.path(out_name)
        p = self.ok(TOOL, "reid", "--query", q, "--gallery", g, "--out", out, *extra)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)
        self.assertTrue(p.stdout.startswith("reid: mAP "), p.stdout)
        self.ok("amlfs-check", out)
        return out

    def assert_exact(self, out, want):
        m, cmc, valid, skipped = want
        self.assertEqual(T.attr(out, "mAP"), m)
        self.assertEqual(T.attr(out, "rank1"), cmc[0])
        self.assertEqual(T.read(out, "/cmc").tolist(), cmc)
        self.assertEqual(T.attr(out, "queries"), valid)
        self.assertEqual(T.attr(out, "skipped"), skipped)
        self.assertEqual(T.attr(out, "task"), "reid")

    # -- distance matrices --

    def test_distmat_ties_junk_and_skipped(self):
        for seed, (nq, ng, levels, dtype) in enumerate([(40, 200, 6, np.float32),
                                                         (25, 80, 3, np.float64),
                                                         (60, 300, 12, np.float32),
                                                         (7, 30, 2, np.float64)]):
            with self.subTest(seed=seed):
                rng = np.random.default_rng(100 + seed)
                qp, qc, gp, gc = structured(rng, nq, ng, 12, 4, junk=ng // 10)
                qp[0] = 99                      # no gallery entry at all: skipped
                qp[1], qc[1] = 98, 0            # only same-camera mates: skipped
                gp[:3], gc[:3] = 98, 0
                qp[2] = -1                      # a junk query: nothing to match
                # quantised distances: ties everywhere (a literal level grid)
                d = (rng.integers(0, levels, (nq, ng)) * 0.25).astype(dtype)
                q = self.ids_file("q.h5", qp, qc, pid_dtype=np.int64)
                g = self.ids_file("g.h5", gp, gc, pid_dtype=np.int16)
                dm = self.path("d.h5")
                with h5py.File(dm, "w") as f:
                    f["distmat"] = d
                out = self.run_reid(q, g, "--distmat", dm)
                want = literal_reid(d, qp, qc, gp, gc)
                self.assertGreaterEqual(want[3], 3)
                self.assert_exact(out, want)
                self.assertEqual(T.attr(out, "distance"), "given")

    def test_gallery_shorter_than_50(self):
        rng = np.random.default_rng(7)
        qp, qc, gp, gc = structured(rng, 10, 12, 3, 2)
        d = rng.integers(0, 4, (10, 12)).astype(np.float32)
        q, g = self.ids_file("q.h5", qp, qc), self.ids_file("g.h5", gp, gc)
        dm = self.path("d.h5")
        with h5py.File(dm, "w") as f:
            f["distmat"] = d
        self.assert_exact(self.run_reid(q, g, "--distmat", dm), literal_reid(d, qp, qc, gp, gc))

    # -- features --

    def test_euclidean_integer_features_exact(self):
        # integer features: float32 squared distances are exact integers, ties and all
        for seed, dtype in ((1, np.float32), (2, np.float64)):
            with self.subTest(seed=seed):
                rng = np.random.default_rng(seed)
                nq, ng, dim = 50, 400, 8
                qp, qc, gp, gc = structured(rng, nq, ng, 20, 6, junk=30)
                qf = rng.integers(-2, 3, (nq, dim)).astype(dtype)
                gf = rng.integers(-2, 3, (ng, dim)).astype(dtype)
                q = self.ids_file("q.h5", qp, qc, qf)
                g = self.ids_file("g.h5", gp, gc, gf)
                out = self.run_reid(q, g)
                d64 = ((qf.astype(np.float64)[:, None, :] - gf[None, :, :]) ** 2).sum(2)
                self.assert_exact(out, literal_reid(d64, qp, qc, gp, gc))
                self.assertEqual(T.attr(out, "distance"), "euclidean")

    def test_cosine_features_separated(self):
        # the first seed whose float64 distances are at least 1e-5 apart in every row
        # (float32 errs by about 1e-7 there, so it cannot reorder them)
        for seed in range(5, 500):
            rng = np.random.default_rng(seed)
            nq, ng, dim = 30, 45, 6
            qp, qc, gp, gc = structured(rng, nq, ng, 10, 3, junk=5)
            qf = rng.standard_normal((nq, dim))
            gf = rng.standard_normal((ng, dim))
            qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
            gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
            d64 = 1 - qn @ gn.T
            if np.diff(np.sort(d64, axis=1), axis=1).min() > 1e-5:
                break
        self.assertGreater(np.diff(np.sort(d64, axis=1), axis=1).min(), 1e-5)
        q = self.ids_file("q.h5", qp, qc, qf.astype(np.float32))
        g = self.ids_file("g.h5", gp, gc, gf)
        out = self.run_reid(q, g, "--distance", "cosine")
        self.assert_exact(out, literal_reid(d64, qp, qc, gp, gc))
        self.assertEqual(T.attr(out, "distance"), "cosine")

    # -- re-ranking --

    def rerank_data(self, seed, nq=30, ng=130, dim=12, pids=20):
        rng = np.random.default_rng(seed)
        qp, qc, gp, gc = structured(rng, nq, ng, pids, 6)
        tpl = rng.standard_normal((pids, dim))
        qf = (tpl[qp] + 0.9 * rng.standard_normal((nq, dim))).astype(np.float32)
        gf = (tpl[gp] + 0.9 * rng.standard_normal((ng, dim))).astype(np.float32)
        return qp, qc, gp, gc, qf, gf

    def test_rerank_distmat_against_numpy_port(self):
        for seed in (21, 22):
            with self.subTest(seed=seed):
                qp, qc, gp, gc, qf, gf = self.rerank_data(seed)
                qg, qq, gg = sq_euclid32(qf, gf), sq_euclid32(qf, qf), sq_euclid32(gf, gf)
                q, g = self.ids_file("q.h5", qp, qc), self.ids_file("g.h5", gp, gc)
                dm = self.path("d.h5")
                with h5py.File(dm, "w") as f:
                    f["distmat"], f["distmat_qq"], f["distmat_gg"] = qg, qq, gg
                out = self.run_reid(q, g, "--distmat", dm, "--rerank", "--save-distmat")
                got = T.read(out, "/distmat")
                want = np_re_ranking(qg, qq, gg)
                self.assertEqual(got.shape, want.shape)
                self.assertLessEqual(float(np.abs(got.astype(np.float64) - want).max()), 1e-5)
                # it changed the distances, and the metrics are the protocol's on them
                self.assertGreater(float(np.abs(want - qg / qg.max()).max()), 0.05)
                self.assert_exact(out, literal_reid(got, qp, qc, gp, gc))
                self.assertEqual(T.attr(out, "rerank"), 1)
                # the port's own distances give the same ranking metrics here
                m, _, _, _ = literal_reid(want, qp, qc, gp, gc)
                self.assertLessEqual(abs(T.attr(out, "mAP") - m), 1e-12)

    def test_rerank_features_against_numpy_port(self):
        qp, qc, gp, gc, qf, gf = self.rerank_data(23)
        q = self.ids_file("q.h5", qp, qc, qf)
        g = self.ids_file("g.h5", gp, gc, gf)
        out = self.run_reid(q, g, "--rerank")
        plain = self.run_reid(q, g, out_name="plain.h5")
        want = np_re_ranking(sq_euclid32(qf, gf), sq_euclid32(qf, qf), sq_euclid32(gf, gf))
        m, cmc, valid, skipped = literal_reid(want, qp, qc, gp, gc)
        # the tool's float32 sgemm distances and NumPy's differ in the last bits: the
        # metrics within 1e-3 (equal unless two re-ranked distances within ~1e-6 swap)
        self.assertLessEqual(abs(T.attr(out, "mAP") - m), 1e-3)
        self.assertLessEqual(float(np.abs(T.read(out, "/cmc") - np.array(cmc)).max()), 1e-3 + 1 / valid)
        self.assertEqual(T.attr(out, "queries"), valid)
        self.assertNotEqual(T.attr(out, "mAP"), T.attr(plain, "mAP"))

    # -- bad input --

    def test_bad_inputs(self):
        rng = np.random.default_rng(9)
        qp, qc, gp, gc = structured(rng, 5, 20, 3, 2)
        qf, gf = rng.standard_normal((5, 4)), rng.standard_normal((20, 4))
        out = self.path("r.h5")
        g = self.ids_file("g.h5", gp, gc, gf)
        # features and pids of different lengths
        q = self.ids_file("q.h5", qp, qc, qf[:4])
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--out", out,
                   mentions=["q.h5", "/features", "4 rows", "5 entries"])
        # D mismatch
        q = self.ids_file("q.h5", qp, qc, rng.standard_normal((5, 3)))
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--out", out,
                   mentions=["g.h5", "dimension 4", "3"])
        # missing datasets
        q = self.ids_file("q.h5", qp, qc)
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--out", out,
                   mentions=["q.h5", "/features"])
        with h5py.File(self.path("nocam.h5"), "w") as f:
            f["pids"] = qp
            f["features"] = qf
        self.fails(2, TOOL, "reid", "--query", self.path("nocam.h5"), "--gallery", g,
                   "--out", out, mentions=["/camids", "missing"])
        # a distance matrix with NaN: its first position named
        q = self.ids_file("q.h5", qp, qc)
        d = rng.random((5, 20))
        d[2, 7] = np.nan
        d[3, 1] = np.nan
        dm = self.path("d.h5")
        with h5py.File(dm, "w") as f:
            f["distmat"] = d
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--distmat", dm,
                   "--out", out, mentions=["d.h5", "/distmat[2][7]"])
        # a distance matrix of the wrong shape; --rerank without the blocks
        with h5py.File(dm, "w") as f:
            f["distmat"] = rng.random((5, 19))
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--distmat", dm,
                   "--out", out, mentions=["(5,19)", "(5,20)"])
        with h5py.File(dm, "w") as f:
            f["distmat"] = rng.random((5, 20))
        self.fails(2, TOOL, "reid", "--query", q, "--gallery", g, "--distmat", dm,
                   "--rerank", "--out", out, mentions=["/distmat_qq"])
        # NaN features, an unknown distance, no query with a true match
        bad = qf.copy()
        bad[1, 2] = np.inf
        qb = self.ids_file("qb.h5", qp, qc, bad)
        self.fails(2, TOOL, "reid", "--query", qb, "--gallery", g, "--out", out,
                   mentions=["/features[1][2]"])
        qn = self.ids_file("qn.h5", qp, qc, qf)
        self.fails(2, TOOL, "reid", "--query", qn, "--gallery", g, "--distance", "l1",
                   mentions=["l1"])
        qx = self.ids_file("qx.h5", np.full(5, 77), qc, qf)
        self.fails(2, TOOL, "reid", "--query", qx, "--gallery", g, "--out", out,
                   mentions=["no query has a true match"])
        self.assertFalse(os.path.exists(out))
        self.assertEqual(os.listdir(self.dir).count("r.h5"), 0)


if __name__ == "__main__":
    unittest.main()
