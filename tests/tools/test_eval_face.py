"""amlfs-eval --task face on a real face dataset (amlfs-synth face, amlfs-prep face) and a
face-small trained one epoch with the exact CosFace loss (the reward path of a face
search): its verification metrics are amlfs-metric verify's on the embeddings it writes
(--features), its rank-1 is a literal per-trial loop's on embeddings of the probe and
distractor images computed by the same tool, streamed and in-memory reads agree byte
for byte, the reward tool takes accuracy as the metric, and the bad inputs exit 2 with
one line: a linear-head checkpoint, --features on classification, a split without pairs,
metric = accuracy on a classification dataset.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import filecmp
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np

from amlfs_test import ToolTest, attr, must, read, write_dataset

FX = None


class Fixtures:
    def __init__(self, d):
        self.dir = d
        p = self.p
        must("amlfs-synth", "face", "--out", p("faces"), "--identities", 16,
             "--images-per-identity", 8, "--heldout", 8, "--probe-identities", 5,
             "--distractors", 40, "--folds", 10, "--pairs-per-fold", 6, "--size", "24x20",
             "--seed", 4)
        must("amlfs-prep", "face", "--train", p("faces/train"), "--lfw-pairs",
             p("faces/lfw/pairs.txt"), "--lfw-dir", p("faces/lfw"), "--probe", p("faces/probe"),
             "--distractors", p("faces/distractors"), "--size", "24x20", "--val-identities", 4,
             "--val-pairs", 60, "--out", p("data.h5"))
        must("amlfs-init", "--model", "face-small", "--data", p("data.h5"), "--batch", 16,
             "--scale", 30, "--out", p("start.h5"))
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--space", "cosine", "--loss",
             "cosface", "--out", p("policy.h5"))
        must("amlfs-sample", "--policy", p("policy.h5"), "--epoch", 1, "--samples", 2, "--out",
             p("thetas.h5"))
        must("amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas", p("thetas.h5"),
             "--index", 0, "--data", p("data.h5"), "--out", p("trained.h5"))
        write_dataset(p("classes.h5"), n=(40, 10, 10), channels=3, size=24)

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-evalface-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


def literal_rank1(probe, ids, distractors):
    """MegaFace rank-1, one trial at a time: for each identity, each of its images in
    turn joins the distractors and each other image of the identity is a probe; a hit
    when the probe's cosine with that mate is at least its best distractor cosine."""
    def unit(v):
        n = np.sqrt((v.astype(np.float64) ** 2).sum())
        return v.astype(np.float64) / n if n > 0 else v.astype(np.float64)
    P = [unit(v) for v in probe]
    D = [unit(v) for v in distractors]
    hits = trials = 0
    for ident in sorted(set(ids.tolist())):
        rows = [i for i in range(len(ids)) if ids[i] == ident]
        for g in rows:
            for q in rows:
                if q == g:
                    continue
                mate = float(np.dot(P[q], P[g]))
                best = max(float(np.dot(P[q], d)) for d in D)
                hits += mate >= best
                trials += 1
    return hits / trials, trials


class EvalFaceTest(ToolTest):
    def evaluate(self, split, out, *more, ckpt=None):
        self.ok("amlfs-eval", "--checkpoint", ckpt or FX.p("trained.h5"), "--data",
                FX.p("data.h5"), "--split", split, "--out", self.path(out), *more)
        return self.path(out)

    def test_verification_is_amlfs_metric_on_its_features(self):
        for split in ("val", "test"):
            for flip in ((), ("--flip",)):
                e = self.evaluate(split, "e.h5", "--features", self.path("f.h5"), *flip)
                self.ok("amlfs-check", e)
                self.assertEqual(attr(e, "task"), "face")
                self.assertEqual(attr(e, "flip"), 1 if flip else 0)
                self.assertTrue(np.isnan(attr(e, "top1")))
                with h5py.File(FX.p("data.h5"), "r") as d:
                    np.testing.assert_array_equal(read(self.path("f.h5"), "pairs"),
                                                  d[split + "/pairs"][...])
                    self.assertEqual(read(self.path("f.h5"), "features").shape[0],
                                     d[split + "/images"].shape[0])
                self.assertEqual(attr(e, "pairs"), len(read(self.path("f.h5"), "issame")))
                self.ok("amlfs-metric", "verify", "--features", self.path("f.h5"), "--out",
                        self.path("m.h5"))
                for k in ("accuracy", "accuracy_std", "threshold", "tar_at_far", "far"):
                    a, b = attr(e, k), attr(self.path("m.h5"), k)
                    self.assertFalse(np.isnan(a), f"{split} {k}")
                    self.assertEqual(a, b, f"{split} {k}")
                self.assertTrue(0.0 <= attr(e, "accuracy") <= 1.0)
        # the mirrored embeddings are summed in: other features than without --flip
        self.evaluate("val", "a.h5", "--features", self.path("fa.h5"))
        self.evaluate("val", "b.h5", "--features", self.path("fb.h5"), "--flip")
        self.assertFalse(np.array_equal(read(self.path("fa.h5"), "features"),
                                        read(self.path("fb.h5"), "features")))

    def test_rank1_against_a_literal_loop(self):
        e = self.evaluate("test", "e.h5")  # the test split identifies by default
        self.assertFalse(np.isnan(attr(e, "rank1")))
        # the probe and distractor embeddings, by the same tool: a dataset whose val
        # split holds them (pairs of no consequence)
        with h5py.File(FX.p("data.h5"), "r") as d, h5py.File(self.path("g.h5"), "w") as g:
            for k, v in d.attrs.items():
                g.attrs[k] = v
            d.copy("train", g)
            for grp, name in (("probe", "val"), ("distractors", "test")):
                g[name + "/images"] = d[grp + "/images"][...]
                g[name + "/labels"] = d[grp + "/labels"][...]
                # pairs of no consequence: eval needs some to run
                g[name + "/pairs"] = np.tile(np.array([[0, 1]], np.int32), (20, 1))
                g[name + "/issame"] = np.arange(20, dtype=np.uint8) % 2
        feats = {}
        for split in ("val", "test"):
            self.ok("amlfs-eval", "--checkpoint", FX.p("trained.h5"), "--data", self.path("g.h5"),
                    "--split", split, "--out", self.path("x.h5"), "--features",
                    self.path(f"{split}.h5"))
            feats[split] = read(self.path(f"{split}.h5"), "features")
        ids = read(FX.p("data.h5"), "probe/labels")
        want, trials = literal_rank1(feats["val"], ids, feats["test"])
        self.assertEqual(attr(e, "trials"), trials)
        self.assertEqual(attr(e, "rank1"), want)

    def test_streamed_equals_in_memory(self):
        a = self.evaluate("test", "a.h5", "--read", "memory")
        b = self.evaluate("test", "b.h5", "--read", "stream")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))

    def test_reward_takes_accuracy(self):
        e0 = self.evaluate("val", "e0.h5")
        self.ok("amlfs-train-epoch", "--checkpoint", FX.p("start.h5"), "--thetas",
                FX.p("thetas.h5"), "--index", 1, "--data", FX.p("data.h5"), "--out",
                self.path("t1.h5"))
        e1 = self.evaluate("val", "e1.h5", ckpt=self.path("t1.h5"))
        self.ok("amlfs-reward", "--thetas", FX.p("thetas.h5"), "--metric", "accuracy", "--out",
                self.path("r.h5"), e0, e1)
        raw = read(self.path("r.h5"), "raw")
        np.testing.assert_array_equal(raw, [attr(e0, "accuracy"), attr(e1, "accuracy")])
        self.assertEqual(attr(self.path("r.h5"), "metric"), "accuracy")

    def test_bad_input(self):
        # a linear head cannot be evaluated as a face model
        self.ok("amlfs-init", "--model", "small-cnn", "--data", FX.p("data.h5"), "--out",
                self.path("cnn.h5"))
        self.fails(2, "amlfs-eval", "--checkpoint", self.path("cnn.h5"), "--data",
                   FX.p("data.h5"), "--split", "val", "--out", self.path("x.h5"),
                   mentions=["cosine-head"])
        # embeddings are a face evaluation's
        self.ok("amlfs-init", "--model", "small-cnn", "--data", FX.p("classes.h5"), "--out",
                self.path("cls.h5"))
        self.fails(2, "amlfs-eval", "--checkpoint", self.path("cls.h5"), "--data",
                   FX.p("classes.h5"), "--split", "val", "--out", self.path("x.h5"),
                   "--features", self.path("f.h5"), mentions=["--features"])
        # a face split without pairs
        with h5py.File(FX.p("data.h5"), "r") as d, h5py.File(self.path("np.h5"), "w") as g:
            for k, v in d.attrs.items():
                if k not in ("schema", "schema_version", "amlfs_version"):
                    g.attrs[k] = v
            for grp in ("train", "val", "test"):
                g[grp + "/images"] = d[grp + "/images"][...]
                g[grp + "/labels"] = d[grp + "/labels"][...]
        self.fails(2, "amlfs-eval", "--checkpoint", FX.p("trained.h5"), "--data",
                   self.path("np.h5"), "--split", "val", "--out", self.path("x.h5"),
                   mentions=["/val/pairs"])
        for p in ("x.h5", "f.h5"):
            self.assertFalse(os.path.exists(self.path(p)), p)
        # a face metric on a classification dataset
        self.fails(2, "amlfs-config", "--set", "metric=accuracy", mentions=["face metric"])


if __name__ == "__main__":
    unittest.main()
