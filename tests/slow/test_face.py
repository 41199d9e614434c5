"""A face search end to end on a generated folder: amlfs-synth face writes a CASIA-layout
training folder, an LFW-style test set with pairs.txt, probe identities and distractors;
amlfs-run prepares it (amlfs-prep face), searches in the cosine space from the CosFace
fit rewarded by the verification accuracy of held-out identities' pairs, and evaluates
the best model once on the test pairs (verification) and the probes against the
distractors (rank-1); beside it the exact CosFace baseline (mode = fixed, loss = cosface,
the best of B kept each epoch) on the same prepared file. Checks the files say what
they should (the reward metric, the exact loss, the face metrics of the test eval, which
amlfs-metric verify repeats on the final model's embeddings), the report, and prints both
results (about 2 minutes on two cores).

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import math
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import amlfs_test as T  # noqa: E402
from amlfs_test import ToolTest, attr, read  # noqa: E402

CONFIG = os.path.join(T.ROOT, "configs", "face-small.conf")


class FaceSearch(ToolTest):
    def run_search(self, out, *sets):
        args = ["--config", CONFIG, "--set", "epochs=5", "--set", "samples=4"]
        for s in sets:
            args += ["--set", s]
        p = T.run_workflow("amlfs-run", *args, "--out", out, env=T.driver_env(), timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        return p

    def test_search_and_cosface_baseline(self):
        t0 = time.monotonic()
        faces = self.path("faces")
        self.ok("amlfs-synth", "face", "--out", faces, "--identities", 40,
                "--images-per-identity", 24, "--heldout", 16, "--probe-identities", 8,
                "--distractors", 300, "--size", "48x40", "--seed", 11)
        run, base = self.path("search"), self.path("cosface")
        self.run_search(run, f"src={faces}")
        data = os.path.join(run, "data", "data.h5")
        self.ok("amlfs-check", data)
        self.assertEqual(attr(data, "task"), "face")
        self.run_search(base, f"src={faces}", f"data={data}", "mode=fixed", "loss=cosface")

        results = {}
        for name, d in (("search", run), ("cosface", base)):
            ev = os.path.join(d, "final", "eval-test.h5")
            self.ok("amlfs-check", ev)
            self.assertEqual(attr(ev, "task"), "face")
            self.assertEqual(attr(ev, "split"), "test")
            for k in ("accuracy", "tar_at_far", "rank1"):
                self.assertTrue(math.isfinite(attr(ev, k)), f"{name}: {k}")
            self.assertGreater(attr(ev, "trials"), 0)
            for e in range(1, 6):
                r = os.path.join(d, f"epoch-{e:04d}", "rewards.h5")
                self.assertEqual(attr(r, "metric"), "accuracy")
                self.assertTrue(all(0.0 <= v <= 1.0 for v in read(r, "raw")))
            # the test eval again, by amlfs-metric on the final model's embeddings
            feats = self.path(f"{name}-features.h5")
            self.ok("amlfs-eval", "--checkpoint", os.path.join(d, "final", "checkpoint.h5"),
                    "--data", data, "--split", "test", "--out", self.path(f"{name}-eval.h5"),
                    "--features", feats)
            self.ok("amlfs-metric", "verify", "--features", feats, "--out",
                    self.path(f"{name}-metric.h5"))
            self.assertEqual(attr(self.path(f"{name}-metric.h5"), "accuracy"), attr(ev, "accuracy"))
            results[name] = (attr(ev, "accuracy"), attr(ev, "tar_at_far"), attr(ev, "rank1"))

        # the baseline trained the exact loss; the search moved mu from the CosFace fit
        self.assertEqual(attr(os.path.join(base, "epoch-0001", "thetas.h5"), "loss"), "cosface")
        mu1 = read(os.path.join(run, "policy", "epoch-0001.h5"), "mu")
        mu6 = read(os.path.join(run, "policy", "epoch-0006.h5"), "mu")
        self.assertGreater(float(abs(mu6 - mu1).max()), 0.0)
        self.ok("amlfs-report", run, "--control", base)
        with open(os.path.join(run, "report", "index.html")) as f:
            html = f.read()
        self.assertIn("verification accuracy", html)
        self.assertIn("rank-1", html)
        print(f"\nface-small on a generated folder, 5 epochs, B = 4 "
              f"({time.monotonic() - t0:.0f} s):")
        for name, (acc, tar, r1) in results.items():
            print(f"  {name:8s} test verification {acc:.4f}, TAR at FAR 1e-3 {tar:.4f}, "
                  f"rank-1 {r1:.4f}")


if __name__ == "__main__":
    unittest.main()
