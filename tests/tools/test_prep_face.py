"""amlfs-prep face on folders written here with PIL, and amlfs-synth face.

Pixels are checked against PIL's decode (Image.open(...).convert("RGB")) resized by the
rule of tools/lib/image.h written literally in numpy (area when an axis shrinks,
bilinear with half-pixel centres when it grows, round half up): at most 1 apart (the
C code sums in another order, which can move a value across a .5), exact for an
image already at the target size; labels and relabelling, the validation pairs, the
LFW pairs.txt in both its forms, each bad input (exit 2, one line, no output file),
--skip-bad counting a truncated JPEG, and amlfs-synth's determinism.
Run with /usr/bin/python3; AMLFS_BIN selects the build."""
import filecmp
import os
import unittest

import h5py
import numpy as np
from PIL import Image

from amlfs_test import ToolTest, attr, read, run

H, W = 112, 96


# ---- the reference resize of image.h, written literally ---------------------------

def axis_weights(n_in, n_out):
    """(n_out, n_in) matrix: out = M @ in along one axis."""
    m = np.zeros((n_out, n_in))
    s = n_in / n_out
    for j in range(n_out):
        if n_in == n_out:
            m[j, j] = 1.0
        elif n_out < n_in:  # area: the overlap of [i, i+1) with [j*s, (j+1)*s), over s
            lo, hi = j * s, (j + 1) * s
            for i in range(n_in):
                ov = min(hi, i + 1.0) - max(lo, float(i))
                if ov > 0:
                    m[j, i] = ov / s
        else:  # bilinear, half-pixel centres, clamped
            x = min(max((j + 0.5) * s - 0.5, 0.0), n_in - 1.0)
            i0 = int(np.floor(x))
            f = x - i0
            if i0 + 1 < n_in:
                m[j, i0] += 1 - f
                m[j, i0 + 1] += f
            else:
                m[j, i0] += 1.0
    return m


def reference(path, h=H, w=W):
    """(3, h, w) uint8: PIL's decode, then the resize of image.h."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    wy, wx = axis_weights(rgb.shape[0], h), axis_weights(rgb.shape[1], w)
    out = np.empty((3, h, w))
    for c in range(3):
        out[c] = wy @ rgb[:, :, c] @ wx.T
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def smooth_image(rng, h, w, mode):
    """A smooth random picture (JPEG keeps it close), as a PIL image of the mode."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3))
    for c in range(3):
        fy, fx, ph = rng.uniform(0.5, 3, 3)
        img[:, :, c] = 128 + 100 * np.sin(fy * yy / h * 6 + ph) * np.cos(fx * xx / w * 6)
    img += rng.normal(0, 8, img.shape)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return pil.convert(mode)


class PrepFace(ToolTest):
    # sizes: shrink both axes, grow both, exact, shrink one and grow the other
    SHAPES = [(150, 130), (60, 50), (H, W), (200, 70), (113, 97), (250, 250)]

    def write_image(self, path, rng, k):
        h, w = self.SHAPES[k % len(self.SHAPES)]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        kind = k % 4
        if path.endswith(".png"):
            smooth_image(rng, h, w, "L" if kind == 1 else "P" if kind == 2 else "RGB").save(path)
        else:
            smooth_image(rng, h, w, "L" if kind == 3 else "RGB").save(path, quality=92)

    def train_folder(self, name="train", ids=("zeta", "alpha", "m10", "m2", "beta", "Kappa"),
                     per=(3, 4, 2, 5, 3, 2), seed=0):
        """Identity folders in unsorted creation order, .jpg/.jpeg/.png mixed; also a
        non-image file and a hidden file that the listing ignores."""
        rng = np.random.default_rng(seed)
        d = self.path(name)
        k = 0
        for ident, n in zip(ids, per):
            for i in range(n):
                ext = (".jpg", ".png", ".jpeg", ".JPG", ".png")[k % 5]
                self.write_image(os.path.join(d, ident, f"img{i:02d}{ext}"), rng, k)
                k += 1
            with open(os.path.join(d, ident, "notes.txt"), "w") as f:
                f.write("not an image\n")
            with open(os.path.join(d, ident, ".hidden.jpg"), "w") as f:
                f.write("hidden\n")
        return d

    def lfw_folder(self, names=("Ann_B", "Carl_D", "Eve_F"), per=3, seed=1):
        rng = np.random.default_rng(seed)
        d = self.path("lfw")
        for k, nm in enumerate(names):
            for i in range(1, per + 1):
                self.write_image(os.path.join(d, nm, f"{nm}_{i:04d}.jpg"), rng, k + i)
        return d

    PAIRS = [("Ann_B", 1, 2), ("Eve_F", 3, 1), ("Ann_B", 2, "Carl_D", 1),
             ("Carl_D", 3, "Eve_F", 2), ("Carl_D", 1, 3), ("Eve_F", 1, "Ann_B", 3)]

    def pairs_file(self, name, header, pairs=None):
        pairs = self.PAIRS if pairs is None else pairs
        p = self.path(name)
        with open(p, "w") as f:
            if header:
                f.write(header + "\n")
            for t in pairs:
                f.write("\t".join(str(x) for x in t) + "\n")
        return p

    def prep(self, *args, out="face.h5", train=None, pairs=None, lfw=None):
        train = train or self.train_folder()
        lfw = lfw or self.lfw_folder()
        if pairs is None:
            pairs = self.pairs_file("pairs.txt", "2 1", self.PAIRS[:4])
        self.ok("amlfs-prep", "face", "--train", train, "--lfw-pairs", pairs, "--lfw-dir", lfw,
                "--out", self.path(out), *args)
        return self.path(out)

    def sorted_images(self, d):
        return sorted(f for f in os.listdir(d) if not f.startswith(".") and
                      os.path.splitext(f)[1].lower() in (".jpg", ".jpeg", ".png"))

    # -- the training and validation splits --

    def test_pixels_labels_and_relabelling(self):
        train = self.train_folder()
        f = self.prep("--val-identities", 2, "--val-pairs", 40, train=train,
                      pairs=self.pairs_file("p.txt", "", self.PAIRS))
        p = run("amlfs-check", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(attr(f, "task"), "face")
        names = [n.decode() for n in read(f, "/train/identities")]
        all_ids = sorted(os.listdir(train))  # byte order: 'Kappa' before 'alpha'
        self.assertEqual(all_ids[0], "Kappa")
        held = sorted(set(all_ids) - set(names))
        self.assertEqual(len(held), 2)
        self.assertEqual(names, sorted(names), "identities relabelled in sorted name order")
        self.assertEqual(attr(f, "classes"), 4)
        worst = 0
        exact_checked = 0
        for split, idents in (("train", names), ("val", held)):
            images, labels = read(f, f"/{split}/images"), read(f, f"/{split}/labels")
            row = 0
            for k, ident in enumerate(idents):
                for fn in self.sorted_images(os.path.join(train, ident)):
                    path = os.path.join(train, ident, fn)
                    ref = reference(path)
                    got = images[row]
                    diff = np.abs(got.astype(int) - ref.astype(int))
                    worst = max(worst, diff.max())
                    self.assertLessEqual(diff.max(), 1, f"{path}: pixels differ by {diff.max()}")
                    self.assertLess((diff > 0).mean(), 1e-3, f"{path}: too many off by one")
                    with Image.open(path) as im:
                        at_size = im.size == (W, H)
                    if at_size:
                        np.testing.assert_array_equal(got, ref, f"{path}: not exact at size")
                        exact_checked += 1
                    self.assertEqual(labels[row], k, path)
                    row += 1
            self.assertEqual(row, len(images), f"{split}: {len(images)} images, listed {row}")
        self.assertGreater(exact_checked, 0)
        # mean and std of the training images, [0,1] units, population std
        tr = read(f, "/train/images").astype(np.float64) / 255
        np.testing.assert_allclose(attr(f, "mean"), tr.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(attr(f, "std"), tr.std(axis=(0, 2, 3)), rtol=0, atol=1e-9)
        # the validation pairs: even rows same, odd rows different, within range
        vp, vs, vl = read(f, "/val/pairs"), read(f, "/val/issame"), read(f, "/val/labels")
        self.assertEqual(vp.shape, (40, 2))
        np.testing.assert_array_equal(vs, np.arange(40) % 2 == 0)
        self.assertTrue(np.all((vp >= 0) & (vp < len(vl))))
        np.testing.assert_array_equal(vl[vp[:, 0]] == vl[vp[:, 1]], vs.astype(bool))
        self.assertTrue(np.all(vp[vs == 1, 0] != vp[vs == 1, 1]), "a same pair of one image")

    def test_seeded_and_same_bytes(self):
        train = self.train_folder()
        lfw = self.lfw_folder()
        pairs = self.pairs_file("p.txt", "", self.PAIRS)
        a = self.prep("--val-identities", 2, train=train, lfw=lfw, pairs=pairs, out="a.h5")
        b = self.prep("--val-identities", 2, train=train, lfw=lfw, pairs=pairs, out="b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "same inputs, different bytes")
        t1 = self.prep("--val-identities", 2, "--threads", 1, train=train, lfw=lfw, pairs=pairs,
                       out="t1.h5")
        self.assertTrue(filecmp.cmp(a, t1, shallow=False), "--threads 1 gives other bytes")
        c = self.prep("--val-identities", 2, "--seed", 7, train=train, lfw=lfw, pairs=pairs,
                      out="c.h5")
        self.assertFalse(np.array_equal(read(a, "/val/pairs"), read(c, "/val/pairs")))

    def test_size_112x112(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        f = self.prep("--size", "112x112", "--val-identities", 2, train=train)
        im = read(f, "/train/images")
        self.assertEqual(im.shape, (2, 3, 112, 112))
        ident = read(f, "/train/identities")[0].decode()
        first = self.sorted_images(os.path.join(train, ident))[0]
        ref = reference(os.path.join(train, ident, first), 112, 112)
        self.assertLessEqual(np.abs(im[0].astype(int) - ref).max(), 1)

    # -- the LFW test set --

    def test_lfw_pairs_both_forms(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        lfw = self.lfw_folder()
        header = self.pairs_file("header.txt", "3 1", [self.PAIRS[i] for i in (0, 2, 1, 3, 4, 5)])
        plain = self.pairs_file("plain.txt", "", [self.PAIRS[i] for i in (0, 2, 1, 3, 4, 5)])
        a = self.prep("--val-identities", 2, train=train, lfw=lfw, pairs=header, out="a.h5")
        b = self.prep("--val-identities", 2, train=train, lfw=lfw, pairs=plain, out="b.h5")
        for name in ("/test/pairs", "/test/issame", "/test/images", "/test/labels"):
            np.testing.assert_array_equal(read(a, name), read(b, name), name)
        order = [self.PAIRS[i] for i in (0, 2, 1, 3, 4, 5)]
        tp, ts = read(a, "/test/pairs"), read(a, "/test/issame")
        ti, tl = read(a, "/test/images"), read(a, "/test/labels")
        np.testing.assert_array_equal(ts, [len(t) == 3 for t in order])
        keys = sorted({(t[0], t[1]) for t in order} | {(t[0], t[2]) if len(t) == 3 else
                                                        (t[2], t[3]) for t in order})
        self.assertEqual(len(ti), len(keys), "each named image once")
        names = sorted({k[0] for k in keys})
        for i, t in enumerate(order):
            ends = [(t[0], t[1]), (t[0], t[2])] if len(t) == 3 else [(t[0], t[1]), (t[2], t[3])]
            for s, (nm, n) in enumerate(ends):
                row = tp[i, s]
                self.assertEqual(row, keys.index((nm, n)))
                self.assertEqual(tl[row], names.index(nm))
                ref = reference(os.path.join(lfw, nm, f"{nm}_{n:04d}.jpg"))
                self.assertLessEqual(np.abs(ti[row].astype(int) - ref).max(), 1)

    def test_identification_groups(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        probe = self.train_folder(name="probe", ids=("p2", "p1"), per=(2, 3), seed=5)
        rng = np.random.default_rng(9)
        dist = self.path("dist")
        for k, rel in enumerate(("x/b.jpg", "a.png", "x/a.jpg", "y/z/c.jpg")):
            self.write_image(os.path.join(dist, rel), rng, k)
        # transparency is dropped, not composited: RGBA, and a palette with tRNS
        rgba = smooth_image(rng, 90, 80, "RGB").convert("RGBA")
        rgba.putalpha(Image.fromarray(rng.integers(0, 256, (90, 80), dtype=np.uint8)))
        rgba.save(os.path.join(dist, "t.png"))
        smooth_image(rng, 120, 100, "P").save(os.path.join(dist, "p.png"), transparency=5)
        f = self.prep("--val-identities", 2, "--probe", probe, "--distractors", dist,
                      train=train)
        self.assertEqual(run("amlfs-check", f).returncode, 0)
        np.testing.assert_array_equal(read(f, "/probe/labels"), [0, 0, 0, 1, 1])
        np.testing.assert_array_equal(read(f, "/distractors/labels"), [-1] * 6)
        di = read(f, "/distractors/images")
        for row, rel in enumerate(("a.png", "p.png", "t.png", "x/a.jpg", "x/b.jpg",
                                   "y/z/c.jpg")):
            ref = reference(os.path.join(dist, rel))
            self.assertLessEqual(np.abs(di[row].astype(int) - ref).max(), 1, rel)
        pi = read(f, "/probe/images")
        ref = reference(os.path.join(probe, "p1", self.sorted_images(probe + "/p1")[0]))
        self.assertLessEqual(np.abs(pi[0].astype(int) - ref).max(), 1)

    # -- bad input: exit 2, one line, nothing written --

    def no_output(self, out="face.h5"):
        self.assertFalse(os.path.exists(self.path(out)), "an output was left")
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".")], [],
                         "a temporary was left")

    def bad(self, *args, mentions=(), train=None, pairs=None, lfw=None):
        train = train or self.train_folder()
        lfw = lfw or self.lfw_folder()
        pairs = pairs or self.pairs_file("pairs.txt", "", self.PAIRS)
        line = self.fails(2, "amlfs-prep", "face", "--train", train, "--lfw-pairs", pairs,
                          "--lfw-dir", lfw, "--out", self.path("face.h5"), *args,
                          mentions=list(mentions))
        self.no_output()
        return line

    def jpeg_bytes(self):
        train = self.train_folder(name="src", ids=("s",), per=(1,))
        with open(os.path.join(train, "s", "img00.jpg"), "rb") as f:
            return f.read()

    def test_corrupt_and_truncated_jpeg(self):
        data = self.jpeg_bytes()
        for name, content in (("truncated", data[:len(data) * 6 // 10]),
                              ("garbage", data[:200] + bytes(range(256)) * 8),
                              ("not-an-image", b"hello world\n")):
            with self.subTest(name):
                train = self.train_folder(name=f"t-{name}", ids=("a", "b", "c"),
                                          per=(2, 2, 2))
                bad = os.path.join(train, "b", "img01.jpg")
                if os.path.exists(bad):
                    os.remove(bad)
                with open(os.path.join(train, "b", "zz.jpg"), "wb") as f:
                    f.write(content)
                self.bad("--val-identities", 2, train=train,
                         mentions=[os.path.join(train, "b", "zz.jpg")])

    def test_truncated_png(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        p = os.path.join(train, "a", "img09.png")
        self.write_image(p, np.random.default_rng(3), 0)
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(data[:len(data) // 2])
        self.bad("--val-identities", 2, train=train, mentions=[p])

    def test_skip_bad_counts_a_truncated_jpeg(self):
        data = self.jpeg_bytes()
        train = self.train_folder(ids=("a", "b", "c", "d"), per=(3, 3, 3, 3))
        lfw = self.lfw_folder()
        pairs = self.pairs_file("p.txt", "", self.PAIRS)
        ok = self.prep("--val-identities", 2, train=train, lfw=lfw, pairs=pairs, out="ok.h5")
        n_train, n_test = len(read(ok, "/train/labels")), len(read(ok, "/test/labels"))
        def first_jpeg(idents):
            return [(os.path.join(train, i, n), k, j) for k, i in enumerate(idents)
                    for j, n in enumerate(self.sorted_images(os.path.join(train, i)))
                    if n.lower().endswith((".jpg", ".jpeg"))][0]
        names = [i.decode() for i in read(ok, "/train/identities")]
        victim = first_jpeg(names)[0]
        held = sorted(set(os.listdir(train)) - set(names))
        val_victim, vk, vj = first_jpeg(held)
        val_row = sum(len(self.sorted_images(os.path.join(train, i))) for i in held[:vk]) + vj
        for target in (victim, val_victim,
                       os.path.join(lfw, "Carl_D", "Carl_D_0001.jpg")):
            with open(target, "wb") as f:
                f.write(data[:len(data) // 2])
        p = run("amlfs-prep", "face", "--train", train, "--lfw-pairs", pairs, "--lfw-dir", lfw,
                "--val-identities", 2, "--skip-bad", "--out", self.path("skip.h5"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("skipped 3 unreadable images", p.stderr)
        f = self.path("skip.h5")
        self.assertEqual(run("amlfs-check", f).returncode, 0)
        self.assertEqual(len(read(f, "/train/labels")), n_train - 1)
        self.assertEqual(len(read(f, "/test/labels")), n_test - 1)
        # the validation images without the skipped one, its pairs still consistent
        np.testing.assert_array_equal(read(f, "/val/images"),
                                      np.delete(read(ok, "/val/images"), val_row, axis=0))
        np.testing.assert_array_equal(read(f, "/val/labels"),
                                      np.delete(read(ok, "/val/labels"), val_row))
        vp, vs, vl = read(f, "/val/pairs"), read(f, "/val/issame"), read(f, "/val/labels")
        self.assertTrue(np.all((vp >= 0) & (vp < len(vl))))
        np.testing.assert_array_equal(vl[vp[:, 0]] == vl[vp[:, 1]], vs.astype(bool))
        # the test images without Carl_D_0001, the other pairs' rows shifted past it
        keys = sorted({(t[0], t[1]) for t in self.PAIRS} | {(t[0], t[2]) if len(t) == 3 else
                                                            (t[2], t[3]) for t in self.PAIRS})
        gone = keys.index(("Carl_D", 1))
        np.testing.assert_array_equal(read(f, "/test/images"),
                                      np.delete(read(ok, "/test/images"), gone, axis=0))
        okp, oks = read(ok, "/test/pairs"), read(ok, "/test/issame")
        keep = ~np.any(okp == gone, axis=1)
        np.testing.assert_array_equal(read(f, "/test/pairs"), okp[keep] - (okp[keep] > gone))
        np.testing.assert_array_equal(read(f, "/test/issame"), oks[keep])
        dropped = sum(1 for t in self.PAIRS if ("Carl_D", 1) in
                      ([(t[0], t[1]), (t[0], t[2])] if len(t) == 3 else [t[0:2], t[2:4]]))
        self.assertEqual(dropped, 2)
        self.assertEqual(len(read(f, "/test/pairs")), len(self.PAIRS) - dropped)
        self.assertIn(f"{len(self.PAIRS) - (len(self.PAIRS) - dropped)} test pairs dropped",
                      p.stderr)
        # without --skip-bad: the first bad file named, nothing written
        self.bad("--val-identities", 2, train=train, lfw=lfw, pairs=pairs,
                 mentions=[victim])

    def test_held_out_identity_with_one_image(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(1, 1, 1))
        line = self.bad("--val-identities", 2, train=train, mentions=["1 image"])
        self.assertTrue(any(os.path.join(train, x) in line for x in "abc"), line)

    def test_malformed_pairs_line(self):
        for i, text in enumerate(("Ann_B 1 x", "Ann_B 1 Carl_D", "Ann_B", "Ann_B 0 2",
                                  "Ann_B 1 Carl_D 2 7")):
            with self.subTest(text):
                p = self.path(f"bad{i}.txt")
                with open(p, "w") as f:
                    f.write("Ann_B 1 2\n\nEve_F 1 Ann_B 2\n" + text + "\nEve_F 2 3\n")
                self.bad("--val-identities", 2, pairs=p, mentions=[p, "line 4"])

    def test_header_count_mismatch(self):
        p = self.pairs_file("short.txt", "10 300", self.PAIRS)
        self.bad("--val-identities", 2, pairs=p, mentions=[p, "6000"])

    def test_pair_names_missing_image(self):
        p = self.pairs_file("miss.txt", "", self.PAIRS + [("Ann_B", 1, 9)])
        lfw = self.lfw_folder()
        self.bad("--val-identities", 2, pairs=p, lfw=lfw,
                 mentions=[os.path.join(lfw, "Ann_B", "Ann_B_0009.jpg")])

    def test_empty_folders(self):
        empty = self.path("empty")
        os.makedirs(empty)
        self.bad(train=empty, mentions=[empty, "empty"])
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        os.makedirs(os.path.join(train, "d"))
        self.bad("--val-identities", 2, train=train, mentions=[os.path.join(train, "d")])
        train = self.train_folder(name="t2", ids=("a", "b", "c"), per=(2, 2, 2))
        self.bad("--val-identities", 2, "--distractors", empty, train=train, mentions=[empty])
        self.bad("--val-identities", 2, "--probe", empty, train=train, mentions=[empty])
        self.bad("--val-identities", 3, train=train, mentions=["3 identities"])

    def test_schema_companions(self):
        train = self.train_folder(ids=("a", "b", "c"), per=(2, 2, 2))
        f = self.prep("--val-identities", 2, train=train)
        for name in ("/val/issame", "/test/pairs"):
            g = self.path("edited.h5")
            with open(f, "rb") as src, open(g, "wb") as dst:
                dst.write(src.read())
            with h5py.File(g, "a") as h:
                del h[name]
            with self.subTest(name):
                p = run("amlfs-check", g)
                self.assertEqual(p.returncode, 2, p.stdout)
                self.assertIn(name, p.stderr)


class Synth(ToolTest):
    def tree(self, d):
        out = {}
        for root, _, files in os.walk(d):
            for fn in files:
                p = os.path.join(root, fn)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, d)] = f.read()
        return out

    def test_deterministic_and_prepares(self):
        args = ("--identities", 6, "--images-per-identity", 4, "--heldout", 3,
                "--probe-identities", 2, "--distractors", 5, "--folds", 2,
                "--pairs-per-fold", 3)
        self.ok("amlfs-synth", "face", "--out", self.path("a"), *args)
        self.ok("amlfs-synth", "face", "--out", self.path("b"), *args)
        self.ok("amlfs-synth", "face", "--out", self.path("c"), "--seed", 2, *args)
        a, b, c = (self.tree(self.path(x)) for x in "abc")
        self.assertEqual(sorted(a), sorted(b))
        self.assertEqual(a, b, "same seed, different bytes")
        self.assertEqual(sorted(a), sorted(c))
        self.assertTrue(all(a[k] != c[k] for k in a if k.endswith(".jpg")),
                        "another seed gives the same image")
        self.assertEqual(sum(k.startswith("train/") for k in a), 24)
        self.assertEqual(sum(k.startswith("distractors/") for k in a), 5)
        self.assertIn("train/0000005/004.jpg", a)
        self.assertIn("lfw/Synth_0002/Synth_0002_0004.jpg", a)
        lines = a["lfw/pairs.txt"].decode().splitlines()
        self.assertEqual(lines[0].split(), ["2", "3"])
        self.assertEqual(len(lines), 1 + 2 * 2 * 3)
        self.assertEqual([len(l.split()) for l in lines[1:7]], [3] * 3 + [4] * 3)
        with Image.open(self.path("a/train/0000000/001.jpg")) as pil:
            im = np.asarray(pil)
        self.assertEqual(im.shape, (112, 96, 3))
        # images of one identity are closer to each other than to another's
        def load(i, n):  # the face's centre (the background is drawn per image)
            with Image.open(self.path(f"a/train/{i:07d}/{n:03d}.jpg")) as pil:
                im = np.asarray(pil, float)
            return im[36:76, 28:68]
        same = np.mean([np.abs(load(i, 1) - load(i, 2)).mean() for i in range(6)])
        diff = np.mean([np.abs(load(i, 1) - load((i + 1) % 6, 2)).mean() for i in range(6)])
        self.assertLess(same, diff)
        self.fails(2, "amlfs-synth", "face", "--out", self.path("a"), *args,
                   mentions=["not empty"])
        d = self.path("a")
        p = run("amlfs-prep", "face", "--train", d + "/train", "--lfw-pairs",
                d + "/lfw/pairs.txt", "--lfw-dir", d + "/lfw", "--probe", d + "/probe",
                "--distractors", d + "/distractors", "--val-identities", 2, "--val-pairs", 10,
                "--out", self.path("s.h5"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(run("amlfs-check", self.path("s.h5")).returncode, 0)
        # test_schemas.py's own reading of h5dump -H against schemas/dataset.schema
        from test_schemas import compare, h5dump_header, load_schemas
        problems = compare(self.path("s.h5"), load_schemas()["dataset"],
                           h5dump_header(self.path("s.h5")))
        self.assertEqual(problems, [])
        self.assertEqual(read(self.path("s.h5"), "/test/pairs").shape, (12, 2))
        self.assertEqual(read(self.path("s.h5"), "/train/images").shape, (16, 3, 112, 96))


if __name__ == "__main__":
    unittest.main()
