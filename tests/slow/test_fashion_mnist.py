"""Learning on the real Fashion-MNIST: small-cnn with the identity loss reaches at least
85% test accuracy after 3 epochs on the full training split (55,000 images), each epoch
one amlfs-train-epoch of a fixed-mode policy's thetas, chained as a run chains them
(amlfs-sample, amlfs-train-epoch, amlfs-eval on val, amlfs-reward, amlfs-update), then
amlfs-eval on test. Prints the accuracies per epoch and the time (about a minute on two
cores).

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import math
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import amlfs_test as T  # noqa: E402
from amlfs_test import ToolTest, attr  # noqa: E402

SRC = "/usr/share/datasets/fashion-mnist"
EPOCHS = 3
THREADS = 2


@unittest.skipUnless(os.path.exists(os.path.join(SRC, "t10k-labels-idx1-ubyte.gz")),
                     "dataset-fashion-mnist is installed by make deps")
class FashionMnist(ToolTest):
    def test_small_cnn_learns(self):
        t0 = time.monotonic()
        p = self.path
        self.ok("amlfs-prep", "fashion-mnist", "--src", SRC, "--val-size", 5000, "--out",
                p("data.h5"))
        self.assertEqual(T.read(p("data.h5"), "train/labels").shape, (55000,))
        self.ok("amlfs-init", "--model", "small-cnn", "--data", p("data.h5"), "--epochs",
                EPOCHS, "--out", p("ckpt-0.h5"))
        policy = p("policy-1.h5")
        self.ok("amlfs-init", "--policy-only", "--mode", "fixed", "--out", policy)
        print(f"\nsmall-cnn on Fashion-MNIST, {THREADS} threads", flush=True)
        for e in range(1, EPOCHS + 1):
            thetas, ckpt, ev = p(f"thetas-{e}.h5"), p(f"ckpt-{e}.h5"), p(f"eval-{e}.h5")
            self.ok("amlfs-sample", "--policy", policy, "--epoch", e, "--samples", 2,
                    "--out", thetas)
            te = time.monotonic()
            self.ok("amlfs-train-epoch", "--checkpoint", p(f"ckpt-{e - 1}.h5"), "--thetas",
                    thetas, "--index", 0, "--data", p("data.h5"), "--out", ckpt,
                    "--threads", THREADS)
            seconds = time.monotonic() - te
            self.ok("amlfs-eval", "--checkpoint", ckpt, "--data", p("data.h5"), "--split",
                    "val", "--out", ev, "--threads", THREADS)
            self.assertEqual(attr(ckpt, "status"), "ok")
            self.assertTrue(math.isfinite(attr(ckpt, "train_loss")))
            print(f"epoch {e}: train loss {attr(ckpt, 'train_loss'):.4f}, train top-1 "
                  f"{attr(ckpt, 'train_top1'):.4f}, val top-1 {attr(ev, 'top1'):.4f}, "
                  f"val loss {attr(ev, 'loss'):.4f} ({seconds:.1f} s)", flush=True)
            # the next epoch's policy: sample 1 was not trained (its eval is missing)
            rewards, nxt = p(f"rewards-{e}.h5"), p(f"policy-{e + 1}.h5")
            self.ok("amlfs-reward", "--thetas", thetas, "--metric", "top1", "--out", rewards,
                    ev, p("not-trained.h5"))
            self.ok("amlfs-update", "--policy", policy, "--thetas", thetas, "--rewards",
                    rewards, "--out", nxt)
            policy = nxt
        test = p("eval-test.h5")
        self.ok("amlfs-eval", "--checkpoint", p(f"ckpt-{EPOCHS}.h5"), "--data", p("data.h5"),
                "--split", "test", "--out", test, "--threads", THREADS)
        top1 = attr(test, "top1")
        print(f"test: top-1 {top1:.4f}, top-5 {attr(test, 'top5'):.4f}, loss "
              f"{attr(test, 'loss'):.4f}; {time.monotonic() - t0:.1f} s in all", flush=True)
        self.assertEqual(attr(test, "images"), 10000)
        self.assertEqual(attr(test, "epoch"), EPOCHS)
        self.assertGreaterEqual(top1, 0.85)


if __name__ == "__main__":
    unittest.main()
