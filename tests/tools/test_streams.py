"""amlfs-prep's random streams, exactly: the stratified validation and training splits
(largest remainder, a tied remainder to the lower class, each class's images shuffled by
a literal Fisher-Yates on stream (seed, 0, 1000 draw + class, SPLIT = 6)) and the label
noise (stream (seed, 0, 0, NOISE = 5): uniform 2i decides, uniform 2i + 1 picks the new
class), recomputed here from the separate Python Philox reference (philox_ref.py).
(The data order and the augmentation: tests/unit/test_streams.c.)"""
import math
import os
import unittest

import numpy as np

from amlfs_test import ToolTest, read  # puts tests/fixtures on the path
import philox_ref  # noqa: E402
from test_prep import write_idx  # noqa: E402

SPLIT, NOISE = 6, 5


def below(name, k, n):
    return min(int(philox_ref.uniform(name, k) * n), n - 1)


def fisher_yates(items, name):
    idx = list(items)
    n = len(idx)
    for i in range(n - 1, 0, -1):
        j = below(name, n - 1 - i, i + 1)
        idx[i], idx[j] = idx[j], idx[i]
    return idx


def quotas(labels, pool, classes, want):
    """DESIGN.md 2: class c gets want n_c / n, rounded by largest remainder, a tie to the
    lower class."""
    count = [sum(1 for i in pool if labels[i] == c) for c in range(classes)]
    n = len(pool)
    exact = [want * count[c] / n for c in range(classes)]
    quota = [math.floor(e) for e in exact]
    # largest remainder first; among equal remainders the lower class (sorted is stable)
    order = sorted(range(classes), key=lambda c: -(exact[c] - quota[c]))
    order = [c for c in order if quota[c] < count[c]]
    for c in order[:want - sum(quota)]:
        quota[c] += 1
    return quota


def stratified(labels, pool, classes, want, seed, draw):
    quota = quotas(labels, pool, classes, want)
    chosen, rest = [], []
    for c in range(classes):
        members = fisher_yates([i for i in pool if labels[i] == c],
                               (seed, 0, draw * 1000 + c, SPLIT))
        chosen += members[:quota[c]]
        rest += members[quota[c]:]
    return sorted(chosen), sorted(rest)


def noisy(labels, ratio, classes, pair, seed):
    name = (seed, 0, 0, NOISE)
    out = list(labels)
    for i, y in enumerate(labels):
        if philox_ref.uniform(name, 2 * i) >= ratio:
            continue
        if pair:
            out[i] = (y + 1) % classes
        else:
            k = below(name, 2 * i + 1, classes - 1)
            out[i] = k + 1 if k >= y else k
    return out


def fake(d, labels, n_test=20):
    """Fashion-MNIST idx files whose first two pixels encode the image's index."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(4)
    for prefix, lab in (("train", np.asarray(labels)), ("t10k", np.arange(n_test) % 10)):
        n = len(lab)
        img = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        img[:, 0, 0], img[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
        write_idx(f"{d}/{prefix}-images-idx3-ubyte.gz", img)
        write_idx(f"{d}/{prefix}-labels-idx1-ubyte.gz", lab)
    return d


def ids(images):
    return list(images[:, 0, 0, 0].astype(int) * 256 + images[:, 0, 0, 1])


class Streams(ToolTest):
    def prep(self, src, *args, out="data.h5"):
        self.ok("amlfs-prep", "fashion-mnist", "--src", src, *args, "--out", self.path(out))
        return self.path(out)

    def check_split(self, labels, val, train, seed):
        src = fake(self.path(f"fm-{seed}-{val}-{train}"), labels)
        d = self.prep(src, "--val-size", val, "--train-size", train, "--seed", seed,
                      out=f"d-{seed}.h5")
        want_val, rest = stratified(labels, range(len(labels)), 10, val, seed, 0)
        want_train, _ = stratified(labels, rest, 10, train, seed, 1)
        self.assertEqual(ids(read(d, "val/images")), want_val)
        self.assertEqual(ids(read(d, "train/images")), want_train)
        self.assertEqual(list(read(d, "val/labels")), [labels[i] for i in want_val])
        self.assertEqual(list(read(d, "train/labels")), [labels[i] for i in want_train])
        return want_val, want_train

    def test_remainder_ties_go_to_the_lower_class(self):
        """60 images of each class, 105 for validation: every class's exact share is
        10.5, so the five tied remainders go to classes 0-4, exactly; the 495 left give
        300 training images as 29.69 for classes 0-4 (49 left each) and 30.30 for 5-9:
        the larger remainders, 0-4, get the five more."""
        labels = [i % 10 for i in range(600)]
        val, train = self.check_split(labels, 105, 300, 1)
        self.assertEqual(list(np.bincount([labels[i] for i in val], minlength=10)),
                         [11] * 5 + [10] * 5)
        self.assertEqual(list(np.bincount([labels[i] for i in train], minlength=10)),
                         [30] * 10)

    def test_uneven_classes_other_seed(self):
        labels = [(i * 7 % 13) % 10 for i in range(700)]
        self.check_split(labels, 133, 401, 12345)

    def test_noise_exactly(self):
        labels = [(i * 7 % 13) % 10 for i in range(900)]
        src = fake(self.path("fm"), labels)
        _, rest = stratified(labels, range(900), 10, 100, 3, 0)
        kept, _ = stratified(labels, rest, 10, 800, 3, 1)
        clean = [labels[i] for i in kept]
        for kind in ("symmetric", "pair"):
            with self.subTest(kind=kind):
                d = self.prep(src, "--val-size", 100, "--noise", 0.3, "--noise-kind", kind,
                              "--seed", 3, out=f"{kind}.h5")
                self.assertEqual(ids(read(d, "train/images")), kept)
                self.assertEqual(list(read(d, "train/clean_labels")), clean)
                want = noisy(clean, 0.3, 10, kind == "pair", 3)
                got = list(read(d, "train/labels"))
                self.assertEqual(got, want, f"{sum(a != b for a, b in zip(got, want))} of "
                                 f"{len(want)} labels differ")
                self.assertGreater(sum(a != b for a, b in zip(want, clean)), 150)


if __name__ == "__main__":
    unittest.main()
