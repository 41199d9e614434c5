"""amlfs-prep market1501|dukemtmc on folders from amlfs-synth market and on a Duke-layout
folder written here with PIL; amlfs-synth market's layout and determinism.

Every expectation is computed here from the file names, parsed literally with regular
expressions (pid, camera), and from PIL's decode resized by test_prep_face's literal
rule of image.h (exact at the same size, at most 1 apart otherwise): labels, pids,
camids, junk dropped, pid 0 kept in the gallery only, training ids relabelled in
sorted pid order, the validation query/gallery's properties (each query has a gallery
mate from another camera, one query per identity and camera at most, and no further
camera could be a query), bad inputs (exit 2, one line naming the problem, no output),
--skip-bad, and the same bytes for the same inputs.
Run with /usr/bin/python3; AMLFS_BIN selects the build."""
import filecmp
import os
import re
import unittest

import h5py
import numpy as np
from PIL import Image

from amlfs_test import ToolTest, attr, read, run
from test_prep_face import reference, smooth_image

MARKET = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.jpg$")
DUKE = re.compile(r"^(\d+)_c(\d+)_f(\d+)\.jpg$")
SUBS = ("bounding_box_train", "query", "bounding_box_test")


def listing(d, pattern):
    """(name, pid, cam) of the images of d in byte order, parsed by pattern."""
    out = []
    for name in sorted(os.listdir(d)):
        if name.startswith(".") or not name.lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        m = pattern.match(name)
        assert m, name
        out.append((name, int(m.group(1)), int(m.group(2))))
    return out


class ReidPrep(ToolTest):
    SYNTH = ("--identities", 14, "--test-identities", 6, "--cameras", 4,
             "--images-per-camera", 3, "--distractors", 5, "--junk", 4, "--size", "64x32")

    def synth(self, name="m", *extra):
        self.ok("amlfs-synth", "market", "--out", self.path(name), *self.SYNTH, *extra)
        return self.path(name)

    def prep(self, src, *args, out="r.h5", kind="market1501"):
        self.ok("amlfs-prep", kind, "--src", src, "--out", self.path(out), *args)
        return self.path(out)

    def expected(self, src, f, pattern):
        """The rows each split should hold, from the file names alone."""
        train = listing(os.path.join(src, SUBS[0]), pattern)
        ids = sorted({p for _, p, _ in train if p >= 1})
        kept = set(read(f, "/train/pids").tolist())
        held = set(ids) - kept
        train_ids = sorted(kept)
        rows = {
            "train": [(os.path.join(src, SUBS[0], n), train_ids.index(p), p, c - 1, 0)
                      for n, p, c in train if p in kept],
            "val": [(os.path.join(src, SUBS[0], n), p, p, c - 1, None)
                    for n, p, c in train if p in held],
            "test": [(os.path.join(src, SUBS[1], n), p, p, c - 1, 1)
                     for n, p, c in listing(os.path.join(src, SUBS[1]), pattern) if p >= 1] +
                    [(os.path.join(src, SUBS[2], n), p, p, c - 1, 0)
                     for n, p, c in listing(os.path.join(src, SUBS[2]), pattern) if p >= 0]}
        return ids, held, train_ids, rows

    def check_rows(self, f, rows, h, w, exact, prefix=False):
        """The rows of each split against rows (all of them, or its first ones)."""
        for split, want in rows.items():
            images, labels = read(f, f"/{split}/images"), read(f, f"/{split}/labels")
            camids = read(f, f"/{split}/camids")
            if prefix:
                images, labels, camids = images[:len(want)], labels[:len(want)], camids[:len(want)]
            self.assertEqual(len(images), len(want), split)
            np.testing.assert_array_equal(labels, [r[1] for r in want], split)
            np.testing.assert_array_equal(camids, [r[3] for r in want], split)
            if split == "train":
                np.testing.assert_array_equal(read(f, "/train/pids"), [r[2] for r in want])
            else:
                q = read(f, f"/{split}/query")[:len(want)]
                if split == "test":
                    np.testing.assert_array_equal(q, [r[4] for r in want])
            self.assertEqual(images.shape[1:], (3, h, w))
            for row, r in enumerate(want):
                ref = reference(r[0], h, w)
                if exact:
                    np.testing.assert_array_equal(images[row], ref, r[0])
                else:
                    diff = np.abs(images[row].astype(int) - ref.astype(int))
                    self.assertLessEqual(diff.max(), 1, r[0])

    def check_val_queries(self, f):
        pids, cams, q = read(f, "/val/labels"), read(f, "/val/camids"), read(f, "/val/query")
        self.assertGreater(q.sum(), 0)
        for pid in np.unique(pids):
            mine = pids == pid
            qcams = cams[mine & (q == 1)]
            self.assertEqual(len(qcams), len(set(qcams.tolist())),
                             f"pid {pid}: two queries on one camera")
            gal = cams[mine & (q == 0)]
            for c in qcams:  # a gallery mate from another camera
                self.assertTrue(np.any(gal != c), f"pid {pid} camera {c}: no mate")
            seen = set(cams[mine].tolist())
            if len(seen) >= 2:
                self.assertGreater(len(qcams), 0, f"pid {pid}: seen by {seen}, no query")
            for c in seen - set(qcams.tolist()):  # maximal: one more query breaks a mate
                g = gal.tolist()
                g.remove(c)
                qs = list(qcams) + [c]
                self.assertTrue(any(all(x == qc for x in g) for qc in qs),
                                f"pid {pid}: camera {c} could have had a query")

    def test_market_labels_pixels_and_queries(self):
        src = self.synth()
        f = self.prep(src, "--val-identities", 4, "--size", "64x32")
        self.assertEqual(run("amlfs-check", f).returncode, 0)
        self.assertEqual(attr(f, "task"), "reid")
        self.assertEqual(attr(f, "name"), "market1501")
        ids, held, train_ids, rows = self.expected(src, f, MARKET)
        self.assertEqual(len(ids), 14)
        self.assertEqual(len(held), 4)
        self.assertEqual(attr(f, "classes"), 10)
        self.assertEqual(len(train_ids), 10)
        self.assertNotEqual(train_ids, list(range(1, 11)), "the synthetic pids have no gaps")
        self.check_rows(f, rows, 64, 32, exact=True)
        self.check_val_queries(f)
        tl, tq = read(f, "/test/labels"), read(f, "/test/query")
        self.assertNotIn(-1, tl.tolist())
        self.assertEqual(int(np.sum(tl == 0)), 5, "the distractors kept")
        self.assertTrue(np.all(tq[tl == 0] == 0), "a distractor among the queries")
        junk = [n for n in os.listdir(os.path.join(src, SUBS[2])) if n.startswith("-1_")]
        self.assertEqual(len(junk), 4)
        tr = read(f, "/train/images").astype(np.float64) / 255
        np.testing.assert_allclose(attr(f, "mean"), tr.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(attr(f, "std"), tr.std(axis=(0, 2, 3)), rtol=0, atol=1e-9)
        from test_schemas import compare, h5dump_header, load_schemas
        self.assertEqual(compare(f, load_schemas()["dataset"], h5dump_header(f)), [])

    def test_resized(self):
        src = self.synth()
        for size in ("32x16", "80x40"):
            with self.subTest(size):
                h, w = (int(x) for x in size.split("x"))
                f = self.prep(src, "--val-identities", 3, "--size", size, out=f"{size}.h5")
                _, _, _, rows = self.expected(src, f, MARKET)
                self.check_rows(f, {"test": rows["test"][:12]}, h, w, exact=False, prefix=True)

    def test_same_bytes_threads_and_seed(self):
        src = self.synth()
        a = self.prep(src, "--val-identities", 4, out="a.h5")
        b = self.prep(src, "--val-identities", 4, "--threads", 1, out="b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "--threads 1 gives other bytes")
        held = [set(read(self.prep(src, "--val-identities", 4, "--seed", s, out=f"s{s}.h5"),
                         "/val/labels").tolist()) for s in (1, 2, 3)]
        self.assertTrue(held[0] != held[1] or held[0] != held[2], "the seed changes nothing")

    def duke_folder(self):
        """A DukeMTMC-reID folder: cameras up to 8, images of several sizes, a distractor
        (pid 0) in the gallery, a junk-free query; non-image files beside."""
        rng = np.random.default_rng(4)
        d = self.path("duke")
        names = {SUBS[0]: ["0001_c1_f0046182.jpg", "0001_c8_f0046190.jpg", "0005_c2_f0000012.jpg",
                           "0005_c2_f0000013.jpg", "0005_c7_f1234567.jpg", "0012_c3_f0000001.jpg",
                           "0012_c4_f0000002.jpg", "0003_c5_f0000100.jpg", "0003_c6_f0000101.jpg"],
                 SUBS[1]: ["0020_c1_f0000500.jpg", "0021_c8_f0000600.jpg"],
                 SUBS[2]: ["0020_c2_f0000501.jpg", "0020_c1_f0000502.jpg", "0021_c3_f0000601.jpg",
                           "0000_c5_f0000700.jpg"]}
        shapes = [(130, 60), (256, 128), (300, 90), (64, 32), (40, 20)]
        k = 0
        for sub, ns in names.items():
            os.makedirs(os.path.join(d, sub))
            for n in ns:
                h, w = shapes[k % len(shapes)]
                smooth_image(rng, h, w, "L" if k % 4 == 3 else "RGB").save(
                    os.path.join(d, sub, n), quality=92)
                k += 1
            with open(os.path.join(d, sub, "Thumbs.db"), "wb") as fh:
                fh.write(b"\0" * 10)
        return d

    def test_duke_layout(self):
        d = self.duke_folder()
        f = self.prep(d, "--val-identities", 1, kind="dukemtmc")
        self.assertEqual(run("amlfs-check", f).returncode, 0)
        self.assertEqual(attr(f, "name"), "dukemtmc")
        ids, held, train_ids, rows = self.expected(d, f, DUKE)
        self.assertEqual(ids, [1, 3, 5, 12])
        self.assertEqual(len(held), 1)
        self.assertEqual(attr(f, "classes"), 3)
        self.check_rows(f, rows, 256, 128, exact=False)
        self.assertIn(7, read(f, "/train/camids").tolist() + read(f, "/val/camids").tolist())
        self.check_val_queries(f)
        np.testing.assert_array_equal(read(f, "/test/labels"), [20, 21, 0, 20, 20, 21])
        np.testing.assert_array_equal(read(f, "/test/query"), [1, 1, 0, 0, 0, 0])
        # at the stored size, exact
        g = self.prep(d, "--val-identities", 1, "--size", "64x32", kind="dukemtmc", out="s.h5")
        self.check_rows(g, {"test": self.expected(d, g, DUKE)[3]["test"]}, 64, 32, exact=False)
        at_size = os.path.join(d, SUBS[2], "0021_c3_f0000601.jpg")  # written at 64x32
        with Image.open(at_size) as im:
            self.assertEqual(im.size, (32, 64))
        row = [r[0] for r in self.expected(d, g, DUKE)[3]["test"]].index(at_size)
        np.testing.assert_array_equal(read(g, "/test/images")[row], reference(at_size, 64, 32))

    # -- bad input: exit 2, one line, nothing written --

    def bad(self, src, *args, mentions=(), kind="market1501"):
        line = self.fails(2, "amlfs-prep", kind, "--src", src, "--out", self.path("bad.h5"),
                          *args, mentions=list(mentions))
        self.assertFalse(os.path.exists(self.path("bad.h5")), "an output was left")
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".")], [],
                         "a temporary was left")
        return line

    def test_bad_names(self):
        src = self.synth()
        first = sorted(os.listdir(os.path.join(src, SUBS[1])))[0]
        for bad_name in ("foo.jpg", "0001_c0s1_000001_01.jpg", "-2_c1s1_000001_01.jpg",
                         "0001_c1s1_000001.jpg", "0001_c1_f0000001.jpg", "0001_c1s1_00001_01.jpg.x.jpg",
                         "12a_c1s1_000001_01.jpg"):
            with self.subTest(bad_name):
                p = os.path.join(src, SUBS[1], bad_name)
                os.link(os.path.join(src, SUBS[1], first), p)
                self.bad(src, "--val-identities", 2, mentions=[p, "outside", "layout"])
                os.remove(p)
        # a Market folder read as Duke: its first name is outside that layout
        d = self.bad(src, "--val-identities", 2, kind="dukemtmc", mentions=["DukeMTMC-reID"])
        self.assertIn(os.path.join(src, SUBS[0]), d)

    def test_missing_and_empty_folders(self):
        src = self.synth()
        os.rename(os.path.join(src, SUBS[1]), self.path("q"))
        self.bad(src, mentions=[os.path.join(src, SUBS[1]), "missing"])
        os.makedirs(os.path.join(src, SUBS[1]))
        with open(os.path.join(src, SUBS[1], "notes.txt"), "w") as fh:
            fh.write("no images\n")
        self.bad(src, mentions=[os.path.join(src, SUBS[1]), "empty"])
        self.bad(self.path("nowhere"), mentions=["nowhere"])
        src2 = self.synth("m2")
        self.bad(src2, "--val-identities", 14, mentions=["14 identities"])

    def test_unreadable_image_and_skip_bad(self):
        src = self.synth()
        ok = self.prep(src, "--val-identities", 4, out="ok.h5")
        names = sorted(os.listdir(os.path.join(src, SUBS[0])))
        kept = set(read(ok, "/train/pids").tolist())
        victim_name = next(n for n in names if int(MARKET.match(n).group(1)) in kept)
        victim = os.path.join(src, SUBS[0], victim_name)
        with open(victim, "rb") as fh:
            data = fh.read()
        with open(victim, "wb") as fh:
            fh.write(data[:len(data) // 2])
        self.bad(src, "--val-identities", 4, mentions=[victim])
        p = run("amlfs-prep", "market1501", "--src", src, "--val-identities", 4, "--skip-bad",
                "--out", self.path("skip.h5"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("skipped 1 unreadable images", p.stderr)
        f = self.path("skip.h5")
        self.assertEqual(run("amlfs-check", f).returncode, 0)
        row = 0  # the victim is the first training row
        for name in ("/train/images", "/train/labels", "/train/pids", "/train/camids"):
            np.testing.assert_array_equal(read(f, name), np.delete(read(ok, name), row, axis=0))
        for name in ("/val/images", "/val/labels", "/val/query", "/test/images", "/test/query"):
            np.testing.assert_array_equal(read(f, name), read(ok, name), name)

    def test_schema_companions(self):
        src = self.synth()
        f = self.prep(src, "--val-identities", 4)
        for name in ("/val/query", "/train/pids", "/test/camids"):
            g = self.path("edited.h5")
            with open(f, "rb") as s, open(g, "wb") as t:
                t.write(s.read())
            with h5py.File(g, "a") as h:
                del h[name]
            with self.subTest(name):
                p = run("amlfs-check", g)
                self.assertEqual(p.returncode, 2, p.stdout)
                self.assertIn(name, p.stderr)
        g = self.path("edited.h5")
        with open(f, "rb") as s, open(g, "wb") as t:
            t.write(s.read())
        with h5py.File(g, "a") as h:
            h.attrs["task"] = np.bytes_("classification")
        p = run("amlfs-check", g)
        self.assertEqual(p.returncode, 2)
        self.assertIn("reid", p.stderr)


class SynthMarket(ToolTest):
    def tree(self, d):
        out = {}
        for root, _, files in os.walk(d):
            for fn in files:
                p = os.path.join(root, fn)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, d)] = fh.read()
        return out

    def test_layout_and_determinism(self):
        args = ("--identities", 8, "--test-identities", 5, "--cameras", 6,
                "--images-per-camera", 3, "--distractors", 7, "--junk", 3, "--size", "64x32")
        for name, extra in (("a", ()), ("b", ()), ("c", ("--seed", 2))):
            self.ok("amlfs-synth", "market", "--out", self.path(name), *args, *extra)
        a, b, c = (self.tree(self.path(x)) for x in "abc")
        self.assertEqual(a, b, "same seed, different bytes")
        self.assertNotEqual(sorted(a), sorted(c), "another seed, the same layout")
        self.assertEqual(set(os.path.dirname(k) for k in a), set(SUBS))
        parsed = {s: [MARKET.match(os.path.basename(k)) for k in a if k.startswith(s + "/")]
                  for s in SUBS}
        for s, ms in parsed.items():
            self.assertTrue(all(ms), f"{s}: a name outside the layout")
        train = [(int(m.group(1)), int(m.group(2))) for m in parsed[SUBS[0]]]
        query = [(int(m.group(1)), int(m.group(2))) for m in parsed[SUBS[1]]]
        gallery = [(int(m.group(1)), int(m.group(2))) for m in parsed[SUBS[2]]]
        tr_ids = {p for p, _ in train}
        te_ids = {p for p, _ in query + gallery if p > 0}
        self.assertEqual(len(tr_ids), 8)
        self.assertEqual(len(te_ids), 5)
        self.assertEqual(tr_ids & te_ids, set(), "train and test share a pid")
        self.assertTrue((tr_ids | te_ids) <= set(range(1, 14)))
        self.assertEqual(sum(p == 0 for p, _ in gallery), 7)
        self.assertEqual(sum(p == -1 for p, _ in gallery), 3)
        self.assertTrue(all(1 <= c <= 6 for _, c in train + query + gallery))
        for pid in tr_ids:
            cams = {c for p, c in train if p == pid}
            self.assertGreaterEqual(len(cams), 2, f"pid {pid} seen by one camera")
            for cam in cams:
                self.assertLessEqual(train.count((pid, cam)), 3)
        for pid, cam in query:  # one query per camera, chosen where a camera has two or more
            self.assertEqual(query.count((pid, cam)), 1)
            self.assertIn((pid, cam), gallery)
        frames = [m.group(4) for ms in parsed.values() for m in ms]
        self.assertEqual(len(frames), len(set(frames)), "a frame number twice")
        k = next(k for k in a if k.startswith(SUBS[0]))
        with Image.open(self.path("a/" + k)) as im:
            self.assertEqual(im.size, (32, 64))
        # images of one identity look more alike than those of two (the body's centre)
        def load(rel):
            with Image.open(self.path("a/" + rel)) as im:
                return np.asarray(im, float)[16:56, 8:24]
        by_pid = {}
        for key in sorted(a):
            if key.startswith(SUBS[0]):
                by_pid.setdefault(int(MARKET.match(os.path.basename(key)).group(1)), []).append(key)
        pids = sorted(by_pid)
        same = np.mean([np.abs(load(by_pid[p][0]) - load(by_pid[p][1])).mean() for p in pids])
        diff = np.mean([np.abs(load(by_pid[p][0]) - load(by_pid[q][1])).mean()
                        for p, q in zip(pids, pids[1:] + pids[:1])])
        self.assertLess(same, diff)
        self.fails(2, "amlfs-synth", "market", "--out", self.path("a"), *args,
                   mentions=["not empty"])
        self.fails(2, "amlfs-synth", "market", "--out", self.path("d"), "--cameras", 10,
                   mentions=["--cameras"])


if __name__ == "__main__":
    unittest.main()
