"""amlfs-metric against independent computations written here.

verify: a literal per-pair implementation (plain Python loops: normalisation, squared
distance, KFold's contiguous folds, the 400 thresholds tried one by one) gives accuracy,
its std and the threshold, which must equal the tool's exactly; a NumPy port of
insightface's calculate_roc and calculate_val (with a small literal slinear interp, and
scipy's interp1d beside it when scipy is installed) gives TAR and FAR, equal within 1e-12.
identify: a literal per-trial implementation of MegaFace's protocol (float64 scores
summed in index order; the distractors handled as a vector, each one's sum still taken
term by term) must give the same rank-k hits exactly, on quantised features full of ties.
Then bad inputs (exit 2, one line, no output), float64 input, several distractor files,
MegaFace feature files.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import math
import os
import struct
import unittest

import h5py
import numpy as np

import amlfs_test as T

try:
    from scipy import interpolate as scipy_interpolate
except ImportError:  # the literal interp alone
    scipy_interpolate = None

TOOL = "amlfs-metric"


# ---- verification, literally ------------------------------------------------------------

def literal_normalize(row):
    ss = 0.0
    for v in row:
        ss += v * v
    norm = math.sqrt(ss)
    if norm == 0.0:
        norm = 1.0
    return [v / norm for v in row]


def literal_dist(features, pairs):
    e = [literal_normalize([float(v) for v in row]) for row in features]
    out = []
    for a, b in pairs:
        s = 0.0
        for x, y in zip(e[a], e[b]):
            s += (x - y) * (x - y)
        out.append(s)
    return out


def kfold(p, folds):
    """sklearn's KFold(folds, shuffle=False) test ranges; LFold's one fold is all."""
    base, extra = divmod(p, folds)
    start, out = 0, []
    for f in range(folds):
        size = base + (1 if f < extra else 0)
        out.append(list(range(start, start + size)))
        start += size
    return out


def literal_accuracy(dist, issame, folds):
    p = len(dist)
    thresholds = [i * 0.01 for i in range(400)]
    accs, chosen = [], []
    for test in kfold(p, folds):
        train = [j for j in range(p) if j not in set(test)] if folds > 1 else test
        best, best_t = None, None
        for t in thresholds:
            correct = 0
            for j in train:
                if (dist[j] < t) == bool(issame[j]):
                    correct += 1
            if best is None or correct > best:
                best, best_t = correct, t
        correct = 0
        for j in test:
            if (dist[j] < best_t) == bool(issame[j]):
                correct += 1
        accs.append(correct / len(test))
        chosen.append(best_t)
    mean = 0.0
    for a in accs:
        mean += a
    mean /= folds
    var = 0.0
    for a in accs:
        var += (a - mean) * (a - mean)
    thr = 0.0
    for t in chosen:
        thr += t
    return mean, math.sqrt(var / folds), thr / folds, accs


# ---- insightface's calculate_roc / calculate_val, in NumPy -------------------------------

def slinear(x, y, xv):
    """scipy.interpolate.interp1d(x, y, kind='slinear')(xv) for sorted x with repeats:
    a B-spline of degree 1 on the knots [x0, x0, x1, ..., x_last, x_last]; the interval
    found as scipy's find_interval finds it (the last knot <= xv, the final interval at
    the end), evaluated as its de Boor step does (an empty interval has a zero basis)."""
    m = len(x)
    j = 1
    while j < m - 1 and x[j] <= xv:
        j += 1
    xa, xb = x[j - 1], x[j]
    if xb == xa:
        return 0.0
    w = 1.0 / (xb - xa)
    return (0.0 + y[j - 1] * (0.0 + w * (xb - xv))) + y[j] * (w * (xv - xa))


def np_accuracy(threshold, dist, issame):
    predict = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict, issame))
    tn = np.sum(np.logical_and(~predict, ~issame))
    return float(tp + tn) / dist.size


def np_val_far(threshold, dist, issame):
    predict = np.less(dist, threshold)
    ta = np.sum(np.logical_and(predict, issame))
    fa = np.sum(np.logical_and(predict, ~issame))
    return float(ta) / float(np.sum(issame)), float(fa) / float(np.sum(~issame))


def np_folds(p, folds):
    idx = np.arange(p)
    for test in kfold(p, folds):
        test = np.array(test)
        train = np.setdiff1d(idx, test) if folds > 1 else test
        yield train, test


def insightface_roc(dist, issame, folds):
    thresholds = np.arange(0, 4, 0.01)
    acc = np.zeros(folds)
    for f, (train, test) in enumerate(np_folds(len(dist), folds)):
        acc_train = np.array([np_accuracy(t, dist[train], issame[train]) for t in thresholds])
        acc[f] = np_accuracy(thresholds[np.argmax(acc_train)], dist[test], issame[test])
    return acc


def insightface_val(dist, issame, far_target, folds, interp=slinear):
    thresholds = np.arange(0, 4, 0.001)
    val, far, thr = np.zeros(folds), np.zeros(folds), np.zeros(folds)
    for f, (train, test) in enumerate(np_folds(len(dist), folds)):
        far_train = np.array([np_val_far(t, dist[train], issame[train])[1] for t in thresholds])
        t = interp(far_train, thresholds, far_target) if np.max(far_train) >= far_target else 0.0
        val[f], far[f] = np_val_far(t, dist[test], issame[test])
        thr[f] = t
    return np.mean(val), np.std(val), np.mean(far), np.mean(thr)


def scipy_slinear(x, y, xv):
    """scipy's own code for interp1d(x, y, kind='slinear') as of scipy 1.8, the version
    insightface's numbers come from (1.9 on refuses the repeated FARs, insightface issues
    #2152 and #2290): the BSpline make_interp_spline built for k = 1, evaluated by scipy."""
    t = np.r_[x[0], x, x[-1]]
    return float(scipy_interpolate.BSpline(t, np.asarray(y, float), 1)(xv))


# ---- identification, literally -----------------------------------------------------------

def seq_normalize(x):
    """Rows of x (float64) normalised with each row's sum taken term by term."""
    x = np.asarray(x, np.float64)
    ss = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        ss = ss + x[:, k] * x[:, k]
    norm = np.sqrt(ss)
    norm[norm == 0.0] = 1.0
    return x / norm[:, None]


def seq_scores(p, dn):
    """p (d,) against every row of dn: each sum in index order, as a loop over k."""
    s = np.zeros(dn.shape[0])
    for k in range(dn.shape[1]):
        s = s + p[k] * dn[:, k]
    return s


def literal_identify(probe, ids, distractors, rank):
    """MegaFace's protocol, trial by trial: hits[j] counts trials whose mate scores at
    least the (j+1)-th best distractor."""
    pn = seq_normalize(probe)
    dn = seq_normalize(distractors) if len(distractors) else np.zeros((0, probe.shape[1]))
    kth = []
    for i in range(len(pn)):
        s = sorted(seq_scores(pn[i], dn).tolist(), reverse=True)
        kth.append([s[j] if j < len(s) else -math.inf for j in range(rank)])
    hits, trials = [0] * rank, 0
    for ident in sorted(set(ids)):
        members = [i for i in range(len(ids)) if ids[i] == ident]
        for g in members:
            for q in members:
                if q == g:
                    continue
                mate = 0.0
                for a, b in zip(pn[q], pn[g]):
                    mate += a * b
                for j in range(rank):
                    if mate >= kth[q][j]:
                        hits[j] += 1
                trials += 1
    return [h / trials for h in hits], trials


def write_megaface(path, vec, header=4, dtype=np.float32):
    """A devkit feature file: int32 rows (D), cols (1), stride (cols * 4), type (5 or 6),
    then the values; header=3 leaves out the stride (OpenCV's plain dump)."""
    vec = np.asarray(vec, dtype)
    cv_type = 5 if dtype == np.float32 else 6
    with open(path, "wb") as f:
        if header == 4:
            f.write(struct.pack("4i", len(vec), 1, 4, cv_type))
        else:
            f.write(struct.pack("3i", len(vec), 1, cv_type))
        f.write(vec.tobytes())


class MetricTest(T.ToolTest):
    def verify_file(self, name, features, pairs=None, issame=None, flip=None):
        path = self.path(name)
        with h5py.File(path, "w") as f:
            f["features"] = features
            if flip is not None:
                f["features_flip"] = flip
            if pairs is not None:
                f["pairs"] = pairs
            if issame is not None:
                f["issame"] = issame
        return path

    def check_verify(self, features, pairs, issame, folds=10, far=1e-3, flip=None,
                     literal_features=None):
        path = self.verify_file("v.h5", features, pairs, issame, flip)
        out = self.path("v-out.h5")
        args = ["verify", "--features", path, "--folds", folds, "--far", far, "--out", out]
        if flip is not None:
            args.append("--flip")
        p = self.ok(TOOL, *args)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)
        got = {k: T.attr(out, k) for k in ("accuracy", "accuracy_std", "threshold",
                                            "tar_at_far", "far", "folds", "pairs")}
        feats = literal_features if literal_features is not None else features
        pl = [tuple(int(v) for v in r) for r in pairs]
        dist = literal_dist(feats, pl)
        same = np.asarray(issame).astype(bool)
        acc, std, thr, accs = literal_accuracy(dist, same.tolist(), folds)
        self.assertEqual(got["accuracy"], acc)
        self.assertLessEqual(abs(got["accuracy_std"] - std), 1e-12)
        self.assertLessEqual(abs(got["threshold"] - thr), 1e-12)
        self.assertEqual(got["folds"], folds)
        self.assertEqual(got["pairs"], len(pl))
        d = np.array(dist)
        # insightface's own code on the same distances: the same folds' accuracies
        self.assertEqual(insightface_roc(d, same, folds).tolist(), accs)
        val, val_std, far_mean, thr_mean = insightface_val(d, same, far, folds)
        self.assertLessEqual(abs(got["tar_at_far"] - val), 1e-12, (got, val))
        self.assertLessEqual(abs(got["far"] - far_mean), 1e-12)
        self.assertLessEqual(abs(T.attr(out, "tar_std") - val_std), 1e-12)
        self.assertLessEqual(abs(T.attr(out, "tar_threshold") - thr_mean), 1e-12)
        if scipy_interpolate is not None:
            sval, _, sfar, sthr = insightface_val(d, same, far, folds, scipy_slinear)
            self.assertLessEqual(abs(got["tar_at_far"] - sval), 1e-12)
            self.assertLessEqual(abs(got["far"] - sfar), 1e-12)
            self.assertLessEqual(abs(T.attr(out, "tar_threshold") - sthr), 1e-12)
        return got

    # -- verification --

    def test_verify_random_embeddings(self):
        for seed, (n, dim, p) in enumerate([(120, 8, 300), (90, 5, 257), (60, 16, 613)]):
            with self.subTest(seed=seed):
                rng = np.random.default_rng(seed)
                x = rng.standard_normal((n, dim)).astype(np.float32)
                pairs = rng.integers(0, n, (p, 2)).astype(np.int64)
                # same pairs closer: pairs of neighbouring templates
                issame = rng.integers(0, 2, p).astype(np.uint8)
                for i in np.nonzero(issame)[0]:
                    x[pairs[i, 1]] = x[pairs[i, 0]] + np.float32(0.6) * rng.standard_normal(dim)
                self.check_verify(x, pairs, issame)

    def test_verify_quantised_ties_and_folds(self):
        # features of a few integer levels: many equal distances, distances on the
        # threshold grid, zero distances (a row with itself), a zero row
        for seed, folds, far in ((3, 10, 1e-3), (4, 7, 0.05), (5, 1, 0.01), (6, 2, 1e-3),
                                (10, 5, 1.0)):  # the last: the interval of zero width
            with self.subTest(seed=seed, folds=folds):
                rng = np.random.default_rng(seed)
                x = rng.integers(-1, 2, (40, 4)).astype(np.float32)
                x[0] = 0
                p = 203
                pairs = rng.integers(0, 40, (p, 2)).astype(np.int32)
                pairs[:5, 1] = pairs[:5, 0]
                issame = (rng.random(p) < 0.5).astype(np.int8)
                self.check_verify(x, pairs, issame, folds=folds, far=far)

    def test_verify_float64_and_flip(self):
        rng = np.random.default_rng(11)
        x = rng.standard_normal((50, 6))          # float64: read as it is
        fl = rng.standard_normal((50, 6))
        pairs = rng.integers(0, 50, (120, 2))
        issame = rng.integers(0, 2, 120).astype(bool)  # h5py's bool enum
        self.check_verify(x, pairs, issame, flip=fl, literal_features=x + fl)
        self.check_verify(x, pairs, issame)

    def test_verify_pairs_file_and_bin_layout(self):
        rng = np.random.default_rng(12)
        x = rng.standard_normal((60, 4)).astype(np.float32)
        issame = rng.integers(0, 2, 30).astype(np.uint8)
        # no /pairs: rows 2i, 2i+1 (insightface's .bin), against explicit pairs elsewhere
        a = self.verify_file("bin.h5", x, issame=issame)
        pfile = self.path("pairs.h5")
        with h5py.File(pfile, "w") as f:
            f["pairs"] = np.arange(60).reshape(30, 2).astype(np.uint16)
            f["issame"] = issame
        b = self.verify_file("feat.h5", x)
        self.ok(TOOL, "verify", "--features", a, "--out", self.path("a.h5"))
        self.ok(TOOL, "verify", "--features", b, "--pairs", pfile, "--out", self.path("b.h5"))
        acc, std, thr, _ = literal_accuracy(
            literal_dist(x, [(2 * i, 2 * i + 1) for i in range(30)]), issame.tolist(), 10)
        for out in ("a.h5", "b.h5"):
            self.assertEqual(T.attr(self.path(out), "accuracy"), acc)

    # -- identification --

    def identify_file(self, name, probe=None, ids=None, distractors=None):
        path = self.path(name)
        with h5py.File(path, "w") as f:
            if probe is not None:
                f["probe"] = probe
            if ids is not None:
                f["probe_ids"] = ids
            if distractors is not None:
                f["distractors"] = distractors
        return path

    def check_identify(self, probe, ids, distractors, rank=1, files=1):
        pfile = self.identify_file("probe.h5", probe, ids)
        parts = np.array_split(np.arange(len(distractors)), files)
        dfiles = []
        for i, rows in enumerate(parts):
            part = distractors[rows]
            if i % 2 == 1:
                part = part.astype(np.float64)
            dfiles.append(self.identify_file(f"distractors-{i}.h5", distractors=part))
        out = self.path("i-out.h5")
        p = self.ok(TOOL, "identify", "--probe", pfile, "--distractors", *dfiles,
                    "--rank", rank, "--out", out)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)
        cmc, trials = literal_identify(probe, list(ids), distractors, rank)
        self.assertEqual(T.attr(out, "trials"), trials)
        self.assertEqual(T.read(out, "cmc").tolist(), cmc)
        self.assertEqual(T.attr(out, "rank1"), cmc[0])
        self.assertEqual(T.attr(out, "rank_k"), cmc[-1])
        self.assertEqual(T.attr(out, "distractors"), len(distractors))
        return cmc, trials

    def planted(self, rng, identities, per, nd, dim, noise, quantise=None):
        """Probe identities as templates plus noise, distractors of the same spread."""
        templates = rng.standard_normal((identities, dim))
        ids = np.repeat(np.arange(identities) * 7 - 20, per)  # ids need not be 0..K-1
        probe = templates[np.repeat(np.arange(identities), per)] + \
            noise * rng.standard_normal((identities * per, dim))
        distractors = rng.standard_normal((nd, dim))
        if quantise:
            probe, distractors = np.round(probe * quantise), np.round(distractors * quantise)
        return probe.astype(np.float32), ids, distractors.astype(np.float32)

    def test_identify_random(self):
        for seed, (k, per, nd, dim, noise, rank) in enumerate(
                [(6, 4, 3000, 16, 1.2, 1), (5, 3, 9000, 8, 0.3, 3), (8, 5, 500, 32, 1.5, 10),
                 (4, 3, 40000, 4, 0.1, 2)]):  # the last: several blocks read
            with self.subTest(seed=seed):
                rng = np.random.default_rng(100 + seed)
                probe, ids, dis = self.planted(rng, k, per, nd, dim, noise)
                cmc, trials = self.check_identify(probe, ids, dis, rank=rank)
                self.assertEqual(trials, k * per * (per - 1))
                self.assertTrue(0 < cmc[0] < 1, cmc)  # neither trivial nor hopeless

    def test_identify_ties(self):
        # features of three integer levels: scores tie often, distractors repeat the
        # mates exactly (a tie with the mate is a hit)
        for seed, rank in ((7, 1), (8, 2), (9, 5)):
            with self.subTest(seed=seed):
                rng = np.random.default_rng(seed)
                probe, ids, dis = self.planted(rng, 5, 4, 5000, 6, 0.6, quantise=1)
                dis[:40] = probe[rng.integers(0, len(probe), 40)]
                dis[40] = 0  # a zero row: cosine 0 with everything
                cmc, _ = self.check_identify(probe, ids, dis, rank=rank, files=3)

    def test_identify_fewer_distractors_than_rank(self):
        rng = np.random.default_rng(13)
        probe, ids, dis = self.planted(rng, 3, 3, 2, 5, 2.0)
        cmc, _ = self.check_identify(probe, ids, dis, rank=4)
        self.assertEqual(cmc[2:], [1.0, 1.0])

    def test_megaface_files(self):
        rng = np.random.default_rng(14)
        probe, ids, dis = self.planted(rng, 4, 3, 700, 12, 1.0)
        folder = self.path("mf")
        lines = []
        for i, v in enumerate(dis):
            name = f"d/{i // 100}/img{i}.jpg_feat.bin"
            os.makedirs(os.path.join(folder, os.path.dirname(name)), exist_ok=True)
            write_megaface(os.path.join(folder, name), v, header=4 if i % 3 else 3,
                           dtype=np.float32 if i % 2 else np.float64)
            lines.append(name if i % 5 else os.path.join(folder, name))
        with open(os.path.join(folder, "list.txt"), "w") as f:
            f.write("# distractors\n" + "\n".join(lines) + "\n\n")
        plines = []
        for i, v in enumerate(probe):
            name = f"facescrub/person_{ids[i]}/p{i}.png_feat.bin"
            os.makedirs(os.path.join(folder, os.path.dirname(name)), exist_ok=True)
            write_megaface(os.path.join(folder, name), v)
            plines.append(name)
        with open(os.path.join(folder, "probes.txt"), "w") as f:
            f.write("\n".join(plines) + "\n")
        # the round trip: the files read back give the HDF5 inputs' result exactly
        cmc, trials = self.check_identify(probe, ids, dis, rank=2)
        out = self.path("mf-out.h5")
        self.ok(TOOL, "identify", "--megaface-probe", os.path.join(folder, "probes.txt"),
                "--megaface-features", os.path.join(folder, "list.txt"), "--rank", 2,
                "--out", out)
        self.assertEqual(T.read(out, "cmc").tolist(), cmc)
        self.assertEqual(T.attr(out, "trials"), trials)
        self.assertEqual(T.attr(out, "identities"), 4)
        # HDF5 probes with MegaFace distractors and more HDF5 distractors at once
        pfile = self.identify_file("p.h5", probe, ids)
        extra = self.identify_file("extra.h5", distractors=dis[:50])
        self.ok(TOOL, "identify", "--probe", pfile, "--distractors", extra,
                "--megaface-features", os.path.join(folder, "list.txt"), "--rank", 2,
                "--out", out)
        want, _ = literal_identify(probe, list(ids), np.concatenate([dis[:50], dis]), 2)
        self.assertEqual(T.read(out, "cmc").tolist(), want)
        # a bad feature file is named
        bad = os.path.join(folder, "d/0/img1.jpg_feat.bin")
        with open(bad, "r+b") as f:
            f.truncate(30)
        self.fails(2, TOOL, "identify", "--probe", pfile, "--megaface-features",
                   os.path.join(folder, "list.txt"), "--out", out + "2", mentions=["img1.jpg"])
        self.assertFalse(os.path.exists(out + "2"))

    # -- bad input --

    def bad(self, *args, mentions=()):
        out = self.path("bad-out.h5")
        line = self.fails(2, TOOL, *args, "--out", out, mentions=list(mentions))
        self.assertFalse(os.path.exists(out), line)
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp." in n], [])
        return line

    def test_bad_verify_input(self):
        rng = np.random.default_rng(20)
        x = rng.standard_normal((20, 4)).astype(np.float32)
        pairs = rng.integers(0, 20, (30, 2))
        issame = rng.integers(0, 2, 30)
        ok = self.verify_file("ok.h5", x, pairs, issame)
        self.bad("verify", "--features", self.path("missing.h5"), mentions=["missing.h5"])
        self.bad("verify", "--features", self.verify_file("nofeat.h5", np.zeros((20, 0)), pairs,
                                                          issame), mentions=["/features"])
        with h5py.File(self.path("nof.h5"), "w") as f:
            f["pairs"] = pairs
            f["issame"] = issame
        self.bad("verify", "--features", self.path("nof.h5"), mentions=["/features", "missing"])
        p2 = pairs.copy()
        p2[7, 1] = 20
        self.bad("verify", "--features", self.verify_file("range.h5", x, p2, issame),
                 mentions=["/pairs[7][1] = 20"])
        i2 = issame.copy()
        i2[3] = 2
        self.bad("verify", "--features", self.verify_file("same2.h5", x, pairs, i2),
                 mentions=["/issame[3] = 2"])
        self.bad("verify", "--features", self.verify_file("short.h5", x, pairs, issame[:29]),
                 mentions=["/issame"])
        self.bad("verify", "--features", self.verify_file("noissame.h5", x, pairs),
                 mentions=["/issame", "missing"])
        self.bad("verify", "--features", self.verify_file("p3.h5", x, np.zeros((30, 3), int),
                                                          issame), mentions=["/pairs", "(P,2)"])
        x2 = x.copy()
        x2[5, 2] = np.nan
        self.bad("verify", "--features", self.verify_file("nan.h5", x2, pairs, issame),
                 mentions=["/features[5][2] = nan"])
        self.bad("verify", "--features", self.verify_file("flipd.h5", x, pairs, issame,
                                                          flip=x[:, :3]), "--flip",
                 mentions=["/features_flip", "(20,3)"])
        self.bad("verify", "--features", ok, "--flip", mentions=["/features_flip", "missing"])
        self.bad("verify", "--features", ok, "--folds", 31, mentions=["30 pairs"])
        self.bad("verify", "--features", ok, "--far", 0, mentions=["--far"])
        self.bad("verify", "--features", ok, "--pairs", self.path("nope.h5"),
                 mentions=["nope.h5"])
        self.bad("verify", mentions=["--features"])
        self.bad("frobnicate", mentions=["frobnicate"])

    def test_bad_identify_input(self):
        rng = np.random.default_rng(21)
        probe, ids, dis = self.planted(rng, 3, 3, 5000, 8, 1.0)
        pfile = self.identify_file("p.h5", probe, ids)
        dfile = self.identify_file("d.h5", distractors=dis)
        wide = self.identify_file("d9.h5", distractors=rng.standard_normal((10, 9)))
        self.bad("identify", "--probe", pfile, "--distractors", dfile, wide,
                 mentions=["d9.h5", "dimension 9", "8"])
        d2 = dis.copy()
        d2[4500, 1] = np.inf  # in the second chunk read
        self.bad("identify", "--probe", pfile, "--distractors",
                 self.identify_file("dinf.h5", distractors=d2), mentions=["[4500][1] = inf"])
        self.bad("identify", "--probe", self.identify_file("noids.h5", probe),
                 "--distractors", dfile, mentions=["/probe_ids", "missing"])
        self.bad("identify", "--probe", self.identify_file("shortids.h5", probe, ids[:-1]),
                 "--distractors", dfile, mentions=["/probe_ids"])
        p2 = probe.copy()
        p2[0, 0] = np.nan
        self.bad("identify", "--probe", self.identify_file("pnan.h5", p2, ids),
                 "--distractors", dfile, mentions=["/probe[0][0] = nan"])
        self.bad("identify", "--probe", pfile, "--distractors", pfile,
                 mentions=["/distractors", "missing"])
        self.bad("identify", "--probe", self.identify_file("single.h5", probe, np.arange(9)),
                 "--distractors", dfile, mentions=["no trial"])
        self.bad("identify", "--probe", pfile, mentions=["--distractors"])
        self.bad("identify", "--probe", pfile, "--distractors", dfile, "--rank", 0,
                 mentions=["--rank"])
        mf = self.path("short.bin")
        write_megaface(mf, np.ones(5))
        with open(self.path("list.txt"), "w") as f:
            f.write("short.bin\n")
        self.bad("identify", "--probe", pfile, "--megaface-features", self.path("list.txt"),
                 mentions=["short.bin", "5 values"])

    def test_help(self):
        p = self.ok(TOOL, "--help")
        self.assertIn("amlfs-metric verify", p.stdout)
        self.assertIn("amlfs-metric identify", p.stdout)


if __name__ == "__main__":
    unittest.main()
