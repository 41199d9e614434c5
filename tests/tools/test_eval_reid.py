"""amlfs-eval --task reid on a real re-ID dataset (amlfs-synth market, amlfs-prep
market1501) and a reid-small trained one epoch (the reward path of a re-ID search): its
mAP and CMC are a literal per-query loop's (written here, torchreid's protocol: same
identity and camera removed, junk ignored, ties in gallery order, queries without a true
match skipped) on the embeddings it writes (--features) and amlfs-metric reid's on the
same files; streamed and in-memory reads agree byte for byte; the reward tool takes mAP;
bad inputs exit 2 with one line.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import filecmp
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np

from amlfs_test import ToolTest, attr, must, read

FX = None
MODEL = os.environ.get("AMLFS_TEST_REID_MODEL", "reid-small")


class Fixtures:
    def __init__(self, d):
        self.dir = d
        p = self.p
        must("amlfs-synth", "market", "--out", p("market"), "--identities", 24,
             "--test-identities", 12, "--size", "64x32", "--seed", 5)
        must("amlfs-prep", "market1501", "--src", p("market"), "--size", "64x32",
             "--val-identities", 8, "--out", p("data.h5"))
        must("amlfs-init", "--model", MODEL, "--data", p("data.h5"), "--batch", 16, "--out",
             p("start.h5"))
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--space", "cosine", "--out",
             p("policy.h5"))
        must("amlfs-sample", "--policy", p("policy.h5"), "--epoch", 1, "--samples", 2, "--out",
             p("thetas.h5"))
        must("amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas", p("thetas.h5"),
             "--index", 0, "--data", p("data.h5"), "--out", p("trained.h5"))

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-evalreid-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


def literal_reid(feats, pids, cams, query, ranks=50):
    """torchreid's Market protocol one query at a time, Euclidean distances in float64."""
    f = feats.astype(np.float64)
    qi = [i for i in range(len(pids)) if query[i]]
    gi = [i for i in range(len(pids)) if not query[i]]
    aps, cmc, skipped = [], np.zeros(ranks), 0
    for q in qi:
        keep = [g for g in gi if pids[g] != -1 and not (pids[g] == pids[q] and cams[g] == cams[q])]
        dist = [(float(((f[q] - f[g]) ** 2).sum()), n, g) for n, g in enumerate(keep)]
        dist.sort()  # by distance, then gallery order
        match = [1 if pids[g] == pids[q] else 0 for _, _, g in dist]
        if sum(match) == 0:
            skipped += 1
            continue
        first = match.index(1)
        for k in range(first, ranks):
            cmc[k] += 1
        hits, precisions = 0, []
        for r, m in enumerate(match):
            if m:
                hits += 1
                precisions.append(hits / (r + 1))
        aps.append(sum(precisions) / len(precisions))
    n = len(qi) - skipped
    return float(np.mean(aps)), cmc / n, n, skipped


class EvalReidTest(ToolTest):
    def evaluate(self, split, out, *more, ckpt=None):
        self.ok("amlfs-eval", "--checkpoint", ckpt or FX.p("trained.h5"), "--data",
                FX.p("data.h5"), "--split", split, "--out", self.path(out), *more)
        return self.path(out)

    def test_against_a_literal_loop_and_amlfs_metric(self):
        for split in ("val", "test"):
            e = self.evaluate(split, "e.h5", "--features", self.path("f.h5"))
            self.ok("amlfs-check", e)
            self.assertEqual(attr(e, "task"), "reid")
            fp = self.path("f.h5")
            feats, pids = read(fp, "features"), read(fp, "labels")
            cams, query = read(fp, "camids"), read(fp, "query")
            with h5py.File(FX.p("data.h5"), "r") as d:
                np.testing.assert_array_equal(pids, d[split + "/labels"][...])
                np.testing.assert_array_equal(query, d[split + "/query"][...])
            mAP, cmc, n, skipped = literal_reid(feats, pids, cams, query)
            self.assertEqual(attr(e, "queries"), n)
            self.assertEqual(attr(e, "skipped"), skipped)
            self.assertAlmostEqual(attr(e, "mAP"), mAP, places=12)
            np.testing.assert_array_equal(read(e, "cmc"), cmc)
            self.assertEqual(attr(e, "rank1"), cmc[0])
            # the same files through amlfs-metric reid
            for name, sel in (("q.h5", query == 1), ("g.h5", query == 0)):
                with h5py.File(self.path(name), "w") as g:
                    g["features"] = feats[sel]
                    g["pids"] = pids[sel]
                    g["camids"] = cams[sel]
            self.ok("amlfs-metric", "reid", "--query", self.path("q.h5"), "--gallery",
                    self.path("g.h5"), "--out", self.path("m.h5"))
            self.assertEqual(attr(self.path("m.h5"), "mAP"), attr(e, "mAP"))
            np.testing.assert_array_equal(read(self.path("m.h5"), "cmc"), read(e, "cmc"))

    def test_streamed_equals_in_memory(self):
        a = self.evaluate("test", "a.h5", "--read", "memory")
        b = self.evaluate("test", "b.h5", "--read", "stream")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))

    def test_reward_takes_map(self):
        e0 = self.evaluate("val", "e0.h5")
        e1 = self.evaluate("val", "e1.h5", ckpt=FX.p("trained.h5"))
        self.ok("amlfs-reward", "--thetas", FX.p("thetas.h5"), "--metric", "mAP", "--out",
                self.path("r.h5"), e0, e1)
        np.testing.assert_array_equal(read(self.path("r.h5"), "raw"),
                                      [attr(e0, "mAP"), attr(e1, "mAP")])

    def test_bad_input(self):
        # a re-ID split without its camids
        with h5py.File(FX.p("data.h5"), "r") as d, h5py.File(self.path("nc.h5"), "w") as g:
            for k, v in d.attrs.items():
                if k not in ("schema", "schema_version", "amlfs_version"):
                    g.attrs[k] = v
            for grp in ("train", "val", "test"):
                g[grp + "/images"] = d[grp + "/images"][...]
                g[grp + "/labels"] = d[grp + "/labels"][...]
        self.fails(2, "amlfs-eval", "--checkpoint", FX.p("trained.h5"), "--data",
                   self.path("nc.h5"), "--split", "val", "--out", self.path("x.h5"),
                   mentions=["/val/camids"])
        self.assertFalse(os.path.exists(self.path("x.h5")))
        self.fails(2, "amlfs-config", "--set", "dataset=face", "--set", "src=/tmp",
                   "--set", "metric=mAP", mentions=["re-ID metric"])


if __name__ == "__main__":
    unittest.main()
