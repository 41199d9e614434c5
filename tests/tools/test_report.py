"""amlfs-report: a run directory built with the real policy tools (init, sample, reward,
update; evals written in their real format, no training), reported; its CSV tables
against the HDF5 files read with h5py, its PNGs decoded and required to be real plots,
index.html's references, an unfinished run, a path with a space, the report against a
control run, the errors, and the templates of share/report/: found beside the binary
(the source tree's share/ for build/*/bin, PREFIX/share/amlfs once installed) or where
--share and AMLFS_SHARE say, a missing or broken one an input error naming it."""
import csv
import html.parser
import os
import shutil
import struct
import subprocess
import unittest
import zlib

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import BIN, ROOT, ToolTest, run, write_eval

PNGS = ("mu.png", "transforms.png", "weight.png", "rewards.png")
CSVS = ("epochs.csv", "mu.csv", "rewards.csv")
PHASES = ("sample", "train", "reward", "update", "broadcast", "epoch")

# per epoch, the top-1 of each sample (None: no eval file, so the sample is excluded);
# epoch 2's are all equal, so its update is skipped (zero spread)
REWARDS = {
    1: [0.61, 0.72, None, 0.55, 0.70, 0.66],
    2: [0.64, 0.64, 0.64, 0.64, 0.64, 0.64],
    3: [0.58, 0.75, 0.69, 0.75, 0.62, 0.71],
}
# a control run's (every sample rewarded)
CONTROL_REWARDS = {
    1: [0.70, 0.74, 0.71, 0.69, 0.73, 0.72],
    2: [0.76, 0.75, 0.77, 0.74, 0.78, 0.75],
    3: [0.79, 0.80, 0.78, 0.81, 0.79, 0.80],
}


def build_run(test, run_dir, epochs=3, final=True, times=True, init="focal", rewards=REWARDS,
              final_top1=0.7345, model="small-cnn"):
    """A run directory of `epochs` rewarded epochs, each followed by its update."""
    os.makedirs(os.path.join(run_dir, "policy"))
    with open(os.path.join(run_dir, "config"), "w") as f:
        f.write(f"# resolved settings\ndataset = fashion-mnist\nmodel = {model}\n"
                f"epochs = 12\nsamples = 6\nintervals = 6\ninit = {init}\n"
                "note = <b>&\"quoted\"</b>   # escaped in the HTML\n")
    policy = lambda e: os.path.join(run_dir, "policy", f"epoch-{e:04d}.h5")
    test.ok("amlfs-init", "--policy-only", "--out", policy(1), "--init", init,
            "--sigma", 0.3, "--policy-lr", 0.2, "--seed", 7)
    for e in range(1, epochs + 1):
        ed = os.path.join(run_dir, f"epoch-{e:04d}")
        os.makedirs(ed)
        thetas = os.path.join(ed, "thetas.h5")
        test.ok("amlfs-sample", "--policy", policy(e), "--epoch", e, "--samples", 6,
                "--out", thetas)
        evals = []
        for i, top1 in enumerate(rewards[e]):
            sd = os.path.join(ed, f"sample-{i:03d}")
            os.makedirs(sd)
            evals.append(os.path.join(sd, "eval.h5"))
            if top1 is not None:
                write_eval(evals[-1], epoch=e, top1=top1, top5=0.9, loss=1 - top1)
        test.ok("amlfs-reward", "--thetas", thetas, "--metric", "top1", "--out",
                os.path.join(ed, "rewards.h5"), *evals)
        test.ok("amlfs-update", "--policy", policy(e), "--thetas", thetas, "--rewards",
                os.path.join(ed, "rewards.h5"), "--out", policy(e + 1))
    if times:
        os.makedirs(os.path.join(run_dir, "logs"))
        with open(os.path.join(run_dir, "logs", "times.csv"), "w") as f:
            f.write("epoch,phase,seconds\n")
            for e in range(1, epochs + 1):
                for k, phase in enumerate(PHASES):
                    f.write(f"{e},{phase},{e * 10 + k + 0.5}\n")
            f.write("1,train,2.25\n")  # a retried phase: summed
    if final:
        os.makedirs(os.path.join(run_dir, "final"))
        write_eval(os.path.join(run_dir, "final", "eval-test.h5"), epoch=epochs, top1=final_top1,
                   top5=0.9812, loss=0.8123, split="test", images=1000)


def decode_png(path):
    """(width, height, rows of pixel tuples) of an 8-bit PNG: greyscale, RGB, palette,
    grey+alpha or RGBA (what gnuplot's pngcairo and png terminals write)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, palette = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = [tuple(body[i:i + 3]) for i in range(0, n, 3)]
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert depth == 8 and interlace == 0, f"unsupported PNG: depth {depth}, interlace {interlace}"
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        else:
            assert ftype == 0, f"bad filter {ftype}"
        rows.append(bytes(line))
        prev = line
    if ctype == 3:
        pixels = [[palette[v] for v in row] for row in rows]
    else:
        pixels = [[row[i:i + bpp] for i in range(0, stride, bpp)] for row in rows]
    return w, h, pixels


def assert_real_plot(test, path):
    """A PNG of at least 800x500 with many colours, enough drawn, and colour beyond grey
    (the curves, not only the frame and the text)."""
    name = os.path.basename(path)
    size = os.path.getsize(path)
    test.assertGreater(size, 10000, f"{name}: {size} bytes")
    w, h, pixels = decode_png(path)
    test.assertGreaterEqual(w, 800)
    test.assertGreaterEqual(h, 500)
    counts = {}
    for row in pixels:
        for px in row:
            counts[px] = counts.get(px, 0) + 1
    background = max(counts.values())
    drawn = 1 - background / (w * h)
    test.assertGreater(len(counts), 50, f"{name}: {len(counts)} colours")
    test.assertGreater(drawn, 0.015, f"{name}: {drawn:.4f} of the pixels drawn")
    coloured = sum(c for px, c in counts.items() if max(px[:3]) - min(px[:3]) > 60)
    test.assertGreater(coloured / (w * h), 0.002, f"{name}: too little colour")


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Links(html.parser.HTMLParser):
    """The images, links and text of index.html; no scripts or external resources."""

    def __init__(self):
        super().__init__()
        self.img, self.href, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.img.append(a["src"])
        if tag == "a":
            self.href.append(a["href"])
        assert tag not in ("script", "link", "iframe", "object"), f"<{tag}> in index.html"

    def handle_data(self, data):
        self.text.append(data)


class Report(ToolTest):
    def setUp(self):
        super().setUp()
        self.run_dir = self.path("my run")  # a space in the path
        build_run(self, self.run_dir)
        self.report = os.path.join(self.run_dir, "report")
        p = self.ok("amlfs-report", self.run_dir)
        self.assertEqual(p.stdout.strip(), os.path.join(self.report, "index.html"))
        self.stderr = p.stderr

    def policy(self, e):
        return os.path.join(self.run_dir, "policy", f"epoch-{e:04d}.h5")

    def rewards(self, e):
        return os.path.join(self.run_dir, f"epoch-{e:04d}", "rewards.h5")

    def test_csv_tables_match_the_files(self):
        mu = []
        for e in range(1, 5):
            with h5py.File(self.policy(e)) as f:
                mu.append(f["mu"][()])
                last_update = f.attrs["last_update"].decode()
        rows = csv_rows(os.path.join(self.report, "mu.csv"))
        self.assertEqual([int(r["epoch"]) for r in rows], [1, 2, 3, 4])
        names = [f"{g}_{k}" for g in ("a_t", "b_t", "a_tau", "b_tau") for k in range(6)]
        self.assertEqual(list(rows[0].keys()), ["epoch"] + names)
        for r, want in zip(rows, mu):
            np.testing.assert_array_equal([float(r[n]) for n in names], want)  # %.17g: exact
        self.assertFalse(np.array_equal(mu[0], mu[3]), "the updates should have moved mu")
        self.assertEqual(last_update, "applied")

        epochs = csv_rows(os.path.join(self.report, "epochs.csv"))
        self.assertEqual(len(epochs), 3)
        self.assertEqual(list(epochs[0].keys()), [
            "epoch", "samples", "finite", "reward_min", "reward_mean", "reward_max", "best",
            "best_reward", "update", "mu_step_l2"] + [f"seconds_{p}" for p in PHASES])
        updates = ["applied", "skipped", "applied"]
        for e, row in enumerate(epochs, 1):
            with h5py.File(self.rewards(e)) as f:
                raw, excl = f["raw"][()], f["excluded"][()]
                best, best_reward = int(f.attrs["best"]), float(f.attrs["best_reward"])
                finite = int(f.attrs["finite"])
            fin = raw[excl == 0]
            self.assertEqual(int(row["epoch"]), e)
            self.assertEqual(int(row["samples"]), 6)
            self.assertEqual(int(row["finite"]), finite)
            self.assertAlmostEqual(float(row["reward_min"]), fin.min(), places=15)
            self.assertAlmostEqual(float(row["reward_mean"]), fin.mean(), places=15)
            self.assertAlmostEqual(float(row["reward_max"]), fin.max(), places=15)
            self.assertEqual(int(row["best"]), best)
            self.assertEqual(float(row["best_reward"]), best_reward)
            self.assertTrue(row["update"].startswith(updates[e - 1]), row["update"])
            self.assertAlmostEqual(float(row["mu_step_l2"]),
                                   np.linalg.norm(mu[e] - mu[e - 1]), places=14)
            for k, phase in enumerate(PHASES):
                want = e * 10 + k + 0.5 + (2.25 if (e, phase) == (1, "train") else 0)
                self.assertAlmostEqual(float(row[f"seconds_{phase}"]), want)
        self.assertEqual([int(r["finite"]) for r in epochs], [5, 6, 6])
        self.assertEqual(int(epochs[0]["best"]), 1)   # 0.72
        self.assertEqual(int(epochs[2]["best"]), 1)   # 0.75 at 1 and 3: the lower index
        self.assertEqual(float(epochs[1]["mu_step_l2"]), 0.0)  # skipped: mu unchanged

        rewards = csv_rows(os.path.join(self.report, "rewards.csv"))
        self.assertEqual(len(rewards), 18)
        for row in rewards:
            e, i = int(row["epoch"]), int(row["sample"])
            with h5py.File(self.rewards(e)) as f:
                raw, norm = f["raw"][i], f["normalized"][i]
                excl, best = int(f["excluded"][i]), int(f.attrs["best"])
            self.assertEqual(int(row["excluded"]), excl)
            self.assertEqual(int(row["is_best"]), int(i == best))
            self.assertEqual(float(row["normalized"]), norm)
            if excl:
                self.assertEqual(row["reward"], "")
            else:
                self.assertEqual(float(row["reward"]), raw)
                self.assertEqual(raw, REWARDS[e][i])
        self.assertEqual(int(rewards[2]["excluded"]), 1)  # epoch 1 sample 2: no eval file

    def test_pngs_are_real_plots(self):
        for name in PNGS:
            with self.subTest(png=name):
                assert_real_plot(self, os.path.join(self.report, name))

    def test_index_html_references_everything(self):
        with open(os.path.join(self.report, "index.html"), encoding="utf-8") as f:
            text = f.read()
        links = Links()
        links.feed(text)
        self.assertEqual(sorted(set(links.img)), sorted(PNGS))
        for name in CSVS:
            self.assertIn(name, links.href)
        for ref in links.img + links.href:
            self.assertNotIn("://", ref)
            self.assertTrue(os.path.isfile(os.path.join(self.report, ref)), ref)
        body = "".join(links.text)
        self.assertIn("0.7345", body)  # test top-1
        self.assertIn("0.9812", body)  # test top-5
        self.assertIn("0.8123", body)  # test loss
        self.assertIn("0.7500 (top1, epoch 3, sample 1 of 6)", body)
        self.assertIn("3 of 12", body)  # epochs done, of the config's
        self.assertIn('<b>&"quoted"</b>', body)  # the config, escaped as text
        self.assertNotIn("<b>", text.replace("&lt;b&gt;", ""))
        self.assertNotIn("unfinished", body)

    def test_scripts_and_data_kept_no_temporaries(self):
        names = os.listdir(self.report)
        for stem in ("mu", "transforms", "weight", "rewards"):
            self.assertIn(stem + ".gp", names)
            self.assertIn(stem + ".dat", names)
        self.assertEqual([n for n in names if ".tmp." in n], [])
        # the scripts redraw by hand in the report directory (a path with a space)
        out = subprocess.run(["gnuplot", "-e", "out='again.png'", "weight.gp"],
                             cwd=self.report, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertGreater(os.path.getsize(os.path.join(self.report, "again.png")), 10000)
        self.assertEqual(self.stderr.count("gnuplot says"), 0, self.stderr)

    def test_weight_is_the_kernels(self):
        """weight.dat's final-mu curve is -p dL/dp of the final mu, computed here from the
        transforms: w = A p / (A p + B) with the pieces of t and tau in use (DESIGN.md 1)."""
        mu = T.theta_of_policy(self.policy(4))
        m = 6
        a_t, b_t, a_tau, b_tau = mu[:m], mu[m:2 * m], mu[2 * m:3 * m], mu[3 * m:]
        piece = lambda x: min(int(x * m), m - 1)
        with open(os.path.join(self.report, "weight.dat")) as f:
            block = f.read().split("\n\n\n")[0]
        pts = [tuple(map(float, l.split())) for l in block.splitlines()
               if l.strip() and not l.startswith("#")]
        self.assertGreater(len(pts), 1500)
        self.assertAlmostEqual(pts[-1][0], 1.0)
        checked = 0
        for p, w in pts:
            kt = piece(p)
            u = a_t[kt] * p + b_t[kt]
            # through 0 in the first piece: a scaling, never clamped below (the log form)
            through0 = kt == 0 and b_t[0] == 0 and a_t[0] > 0 and u <= 1
            if not (1e-300 <= u <= 1) and not through0:
                self.assertEqual(w, 0.0)
                continue
            ku = piece(u)
            q = a_tau[ku] * u + b_tau[ku]
            want = 0.0 if q < 1e-300 else a_tau[ku] * a_t[kt] * p / q
            # p near a piece boundary may fall on either side: skip those
            if min(abs(p * m - round(p * m)), abs(u * m - round(u * m))) < 1e-6:
                continue
            self.assertAlmostEqual(w, want, delta=1e-6 * max(1, abs(want)), msg=f"p = {p}")
            checked += 1
        self.assertGreater(checked, 1500)

    def test_report_again_replaces(self):
        self.ok("amlfs-report", self.run_dir)
        self.assertEqual(len(csv_rows(os.path.join(self.report, "epochs.csv"))), 3)
        self.assertEqual([n for n in os.listdir(self.report) if ".tmp." in n], [])


class Unfinished(ToolTest):
    def test_unfinished_run_reports_what_exists(self):
        rd = self.path("run")
        build_run(self, rd, epochs=2, final=False, times=False, init="identity")
        # epoch 3 drawn but not rewarded yet
        e3 = os.path.join(rd, "epoch-0003")
        os.makedirs(e3)
        self.ok("amlfs-sample", "--policy", os.path.join(rd, "policy", "epoch-0003.h5"),
                "--epoch", 3, "--samples", 6, "--out", os.path.join(e3, "thetas.h5"))
        self.ok("amlfs-report", rd)
        report = os.path.join(rd, "report")
        epochs = csv_rows(os.path.join(report, "epochs.csv"))
        self.assertEqual([int(r["epoch"]) for r in epochs], [1, 2])
        self.assertNotIn("seconds_epoch", epochs[0])  # no logs/times.csv
        self.assertEqual(len(csv_rows(os.path.join(report, "mu.csv"))), 3)
        # then rewarded, its update not run yet; a times.csv with a setup row
        evals = [os.path.join(e3, f"e{i}.h5") for i in range(6)]
        for i, path in enumerate(evals):
            write_eval(path, epoch=3, top1=0.5 + 0.01 * i)
        self.ok("amlfs-reward", "--thetas", os.path.join(e3, "thetas.h5"), "--metric", "top1",
                "--out", os.path.join(e3, "rewards.h5"), *evals)
        os.makedirs(os.path.join(rd, "logs"))
        with open(os.path.join(rd, "logs", "times.csv"), "w") as f:
            f.write("epoch,phase,seconds\n0,setup,4.5\n3,draw,1.5\n3,train+eval,9\n"
                    "3,epoch,12.25\n")
        p = self.ok("amlfs-report", rd)
        self.assertEqual(p.stderr, "")
        epochs = csv_rows(os.path.join(report, "epochs.csv"))
        self.assertEqual([int(r["epoch"]) for r in epochs], [1, 2, 3])
        self.assertEqual(epochs[2]["update"], "not updated")
        self.assertEqual(epochs[2]["mu_step_l2"], "")
        self.assertEqual(epochs[2]["best"], "5")
        self.assertEqual(list(epochs[2].keys())[-3:],
                         ["seconds_draw", "seconds_train+eval", "seconds_epoch"])
        self.assertEqual(float(epochs[2]["seconds_epoch"]), 12.25)
        self.assertEqual(float(epochs[2]["seconds_train+eval"]), 9.0)
        self.assertEqual(epochs[1]["seconds_epoch"], "")
        self.assertEqual(len(csv_rows(os.path.join(report, "mu.csv"))), 3)
        with open(os.path.join(report, "index.html"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("unfinished", text)
        self.assertNotIn("eval-test.h5)</th>", text)
        for name in PNGS:
            self.assertTrue(os.path.isfile(os.path.join(report, name)), name)

    def test_policy_only_run(self):
        """A run just started: the epoch-1 policy, no rewards yet."""
        rd = self.path("new")
        os.makedirs(os.path.join(rd, "policy"))
        open(os.path.join(rd, "config"), "w").close()
        self.ok("amlfs-init", "--policy-only", "--out", os.path.join(rd, "policy", "epoch-0001.h5"))
        self.ok("amlfs-report", rd)
        report = os.path.join(rd, "report")
        self.assertEqual(len(csv_rows(os.path.join(report, "epochs.csv"))), 0)
        for name in PNGS:
            w, h, _ = decode_png(os.path.join(report, name))
            self.assertGreaterEqual(w, 800, name)

    def test_not_a_run(self):
        self.fails(2, "amlfs-report", self.path("missing"), mentions=["missing"])
        os.makedirs(self.path("empty"))
        self.fails(2, "amlfs-report", self.path("empty"), mentions=["not a run directory"])
        open(self.path("empty/config"), "w").close()
        self.fails(2, "amlfs-report", self.path("empty"), mentions=["policy/epoch-0001.h5"])
        self.fails(2, "amlfs-report")
        self.fails(2, "amlfs-report", "--bogus", self.dir)
        self.fails(2, "amlfs-report", self.dir, self.dir)
        p = run("amlfs-report", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: amlfs-report RUN", p.stdout)

    def test_bad_files_are_input_errors(self):
        rd = self.path("run")
        build_run(self, rd, epochs=1, final=False, times=False)
        with open(os.path.join(rd, "epoch-0001", "rewards.h5"), "w") as f:
            f.write("not hdf5")
        self.fails(2, "amlfs-report", rd, mentions=["rewards.h5"])
        rd2 = self.path("run2")
        build_run(self, rd2, epochs=1, final=True, times=False)
        write_eval(os.path.join(rd2, "final", "eval-test.h5"), split="val")
        self.fails(2, "amlfs-report", rd2, mentions=["eval-test.h5", "split"])
        self.assertFalse(os.path.exists(os.path.join(rd2, "report", "index.html")))

    def test_no_gnuplot_is_exit_1(self):
        rd = self.path("run")
        build_run(self, rd, epochs=1, final=False, times=False)
        env = dict(os.environ, PATH=self.path("nowhere"))
        p = subprocess.run([os.path.join(BIN, "amlfs-report"), rd], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("amlfs-report: error: gnuplot: not found", lines[0])
        names = os.listdir(os.path.join(rd, "report"))
        self.assertNotIn("mu.png", names)
        self.assertNotIn("index.html", names)
        self.assertEqual([n for n in names if ".tmp." in n], [])


class Control(ToolTest):
    """amlfs-report RUN --control RUN2: the search against a control run."""

    def test_report_against_a_control(self):
        rd, cd = self.path("run"), self.path("control run")
        build_run(self, rd)
        build_run(self, cd, rewards=CONTROL_REWARDS, final_top1=0.8012)
        self.ok("amlfs-report", rd, "--control", cd)
        report = os.path.join(rd, "report")
        rows = csv_rows(os.path.join(report, "control.csv"))
        self.assertEqual(list(rows[0].keys()),
                         ["epoch", "run_best_reward", "control_best_reward", "difference"])
        self.assertEqual([int(r["epoch"]) for r in rows], [1, 2, 3])
        for r in rows:
            e = int(r["epoch"])
            run_best = max(v for v in REWARDS[e] if v is not None)
            control_best = max(CONTROL_REWARDS[e])
            self.assertEqual(float(r["run_best_reward"]), run_best)
            self.assertEqual(float(r["control_best_reward"]), control_best)
            self.assertEqual(float(r["difference"]), run_best - control_best)
        assert_real_plot(self, os.path.join(report, "control.png"))
        with open(os.path.join(report, "index.html"), encoding="utf-8") as f:
            text = f.read()
        links = Links()
        links.feed(text)
        self.assertIn("control.png", links.img)
        body = " ".join(links.text)
        self.assertIn("Against the control", body)
        self.assertIn("run 0.7345, control 0.8012: -6.67 points", body)
        self.assertIn("run 0.7500, control 0.8100: -0.0600 (epoch 3, top1)", body)
        # without --control the section and its files are not made anew
        self.ok("amlfs-report", cd)
        self.assertFalse(os.path.exists(os.path.join(cd, "report", "control.csv")))

    def test_control_must_be_comparable(self):
        rd = self.path("run")
        build_run(self, rd, epochs=1, final=False, times=False)
        other = self.path("other")
        build_run(self, other, epochs=1, final=False, times=False, model="resnet20")
        self.fails(2, "amlfs-report", rd, "--control", other,
                   mentions=["not a control of", "model = resnet20"])
        self.fails(2, "amlfs-report", rd, "--control", self.path("missing"),
                   mentions=["missing"])
        self.fails(2, "amlfs-report", rd, "--control")
        self.assertFalse(os.path.exists(os.path.join(rd, "report", "index.html")))


class Share(ToolTest):
    """The templates: where amlfs-report finds them, and what a missing one does."""

    def setUp(self):
        super().setUp()
        self.run_dir = self.path("run")
        build_run(self, self.run_dir, epochs=1, final=False, times=False)
        self.share = self.path("share")
        shutil.copytree(os.path.join(ROOT, "share"), self.share)
        self.env = {k: v for k, v in os.environ.items() if k != "AMLFS_SHARE"}

    def report(self, *args, env=None, binary=None):
        return subprocess.run([binary or os.path.join(BIN, "amlfs-report"), self.run_dir,
                               *args], capture_output=True, text=True, env=env or self.env)

    def one_error(self, p, code, mentions):
        self.assertEqual(p.returncode, code, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("amlfs-report: error: "), lines[0])
        for m in mentions:
            self.assertIn(m, lines[0])

    def test_share_option_and_environment(self):
        # a changed template shows in the output, so the folder given is the one used
        page = os.path.join(self.share, "report", "index.html")
        with open(page, "a") as f:
            f.write("<!-- from the copy -->\n")
        index = os.path.join(self.run_dir, "report", "index.html")
        for p in (self.report("--share", self.share),
                  self.report(env=dict(self.env, AMLFS_SHARE=self.share))):
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(index, encoding="utf-8") as f:
                self.assertTrue(f.read().endswith("</html>\n<!-- from the copy -->\n"))
        p = self.report()  # the source tree's share/, beside build/*/bin
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(index, encoding="utf-8") as f:
            self.assertNotIn("from the copy", f.read())

    def test_missing_template_is_exit_2_naming_it(self):
        for name in ("weight.gp", "head.gp", "index.html"):
            shutil.rmtree(self.share)
            shutil.copytree(os.path.join(ROOT, "share"), self.share)
            missing = os.path.join(self.share, "report", name)
            os.remove(missing)
            shutil.rmtree(os.path.join(self.run_dir, "report"), ignore_errors=True)
            self.one_error(self.report("--share", self.share), 2, [missing])
            self.one_error(self.report(env=dict(self.env, AMLFS_SHARE=self.share)), 2,
                           [missing])
            # checked before anything is written
            self.assertFalse(os.path.exists(os.path.join(self.run_dir, "report")))
        self.one_error(self.report("--share", self.path("nowhere")), 2,
                       [os.path.join(self.path("nowhere"), "report")])

    def test_broken_template_is_exit_2_naming_it(self):
        shutil.rmtree(os.path.join(self.run_dir, "report"), ignore_errors=True)
        path = os.path.join(self.share, "report", "rewards.gp")
        with open(path, "a") as f:
            f.write("{{no_such_value}}\n")
        self.one_error(self.report("--share", self.share), 2,
                       [path, "no_such_value", "has no value"])
        with open(path, "a") as f:
            f.write("{{#open}}\n")
        self.one_error(self.report("--share", self.share), 2, [path, "never closed"])
        self.assertEqual([n for n in os.listdir(os.path.join(self.run_dir, "report"))
                          if ".tmp." in n], [])

    def test_installed_report_finds_installed_share(self):
        if not shutil.which("make"):
            self.skipTest("make not on PATH")
        prefix = self.path("prefix")
        # a make of its own: not the jobserver or the variables of a make running the tests
        env = {k: v for k, v in self.env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                                              "SAN", "PREFIX", "DESTDIR")}
        p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install",
                            "PREFIX=" + prefix], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        installed = os.path.join(prefix, "share", "amlfs", "report")
        self.assertEqual(sorted(os.listdir(installed)),
                         sorted(os.listdir(os.path.join(ROOT, "share", "report"))))
        with open(os.path.join(installed, "index.html"), "a") as f:
            f.write("<!-- installed -->\n")
        binary = os.path.join(prefix, "bin", "amlfs-report")
        p = self.report(binary=binary)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), os.path.join(self.run_dir, "report", "index.html"))
        with open(p.stdout.strip(), encoding="utf-8") as f:
            self.assertIn("<!-- installed -->", f.read())
        for png in PNGS:
            with open(os.path.join(self.run_dir, "report", png), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", png)
        os.remove(os.path.join(installed, "mu.gp"))
        self.one_error(self.report(binary=binary), 2, [os.path.join(installed, "mu.gp")])


if __name__ == "__main__":
    unittest.main()
