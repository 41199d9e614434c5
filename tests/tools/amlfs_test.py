"""amlfs_test: what the tool tests share. Runs the tools of AMLFS_BIN (build/rel/bin by
default), checks the one-line error contract, and writes input files of the kinds no
tool writes yet (eval, checkpoint, dataset, loss-input) in their real format with h5py.
Run the tests with /usr/bin/python3 (Debian's h5py and numpy)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

ROOT = os.environ.get("AMLFS_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("AMLFS_BIN") or os.path.join(ROOT, "build", "rel", "bin")
SCHEMAS = os.path.join(ROOT, "schemas")
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))


def run(tool, *args, cwd=None):
    """Runs BIN/tool with args; returns the CompletedProcess (text mode)."""
    return subprocess.run([os.path.join(BIN, tool)] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=cwd)


def sanitized():
    """Whether AMLFS_BIN is the sanitizer build (valgrind cannot run it)."""
    return os.path.sep + "san" + os.path.sep in BIN + os.path.sep


def common_attrs(f, kind):
    f.attrs["schema"] = np.bytes_(kind)
    f.attrs["schema_version"] = np.int64(1)
    f.attrs["amlfs_version"] = np.bytes_("test")


def write_eval(path, epoch=1, top1=0.5, top5=0.9, loss=1.0, status="ok", split="val", images=100):
    with h5py.File(path, "w") as f:
        common_attrs(f, "eval")
        f.attrs["split"] = np.bytes_(split)
        f.attrs["status"] = np.bytes_(status)
        f.attrs["epoch"] = np.int64(epoch)
        f.attrs["images"] = np.int64(images)
        f.attrs["top1"] = np.float64(top1)
        f.attrs["top5"] = np.float64(top5)
        f.attrs["loss"] = np.float64(loss)


def write_checkpoint(path, epoch=1, status="ok", intervals=6, seed=1, fill=0.0):
    """A small-cnn-shaped checkpoint (first layer only): parameters, buffers, momentum,
    theta, and every attribute of the schema."""
    rng = np.random.default_rng(int(fill * 1000) + epoch)
    with h5py.File(path, "w") as f:
        common_attrs(f, "checkpoint")
        for name, value in (("model", "small-cnn"), ("dataset", "fashion-mnist"),
                            ("schedule", "cosine"), ("augment", "none"), ("status", status),
                            ("space", "prob"), ("device", "cpu: test")):
            f.attrs[name] = np.bytes_(value)
        for name, value in (("classes", 10), ("channels", 1), ("height", 28), ("width", 28),
                            ("batch", 100), ("nesterov", 0), ("epochs", 12), ("seed", seed),
                            ("epoch", epoch), ("optim_steps", 550 * epoch),
                            ("intervals", intervals), ("threads", 1)):
            f.attrs[name] = np.int64(value)
        for name, value in (("lr", 0.05), ("momentum", 0.9), ("weight_decay", 5e-4),
                            ("warmup", 0.0), ("step", 30.0), ("gamma", 0.1),
                            ("train_loss", 0.5 + fill), ("train_top1", 0.8),
                            ("clamp_fraction", 0.0)):
            f.attrs[name] = np.float64(value)
        f["params/conv1.weight"] = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
        f["params/bn1.bias"] = np.zeros(16, np.float32) + np.float32(fill)
        f["buffers/bn1.running_mean"] = np.zeros(16, np.float32)
        f["optim/conv1.weight"] = np.zeros((16, 1, 3, 3), np.float32)
        theta = np.concatenate([np.ones(intervals), np.zeros(intervals),
                                np.ones(intervals), np.zeros(intervals)])
        f["theta"] = theta


def write_loss_input(path, logits=None, cosines=None, scale=None, targets=None):
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = np.bytes_("loss-input")
        f.attrs["schema_version"] = np.int64(1)
        if logits is not None:
            f["logits"] = np.asarray(logits, np.float32)
        if cosines is not None:
            f["cosines"] = np.asarray(cosines, np.float32)
            if scale is not None:
                f["cosines"].attrs["scale"] = np.float64(scale)
        f["targets"] = np.asarray(targets, np.int32)


def write_dataset(path, n=(20, 10, 10), classes=10, noise=True):
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        common_attrs(f, "dataset")
        f.attrs["name"] = np.bytes_("fashion-mnist")
        f.attrs["classes"] = np.int64(classes)
        f.attrs["channels"] = np.int64(1)
        f.attrs["height"] = np.int64(28)
        f.attrs["width"] = np.int64(28)
        f.attrs["mean"] = np.array([0.286])
        f.attrs["std"] = np.array([0.353])
        f.attrs["noise_ratio"] = np.float64(0.2 if noise else 0.0)
        f.attrs["noise_kind"] = np.bytes_("symmetric" if noise else "none")
        f.attrs["seed"] = np.int64(1)
        for split, m in zip(("train", "val", "test"), n):
            f[split + "/images"] = rng.integers(0, 256, (m, 1, 28, 28), dtype=np.uint8)
            f[split + "/labels"] = rng.integers(0, classes, m, dtype=np.int32)
        if noise:
            f["train/clean_labels"] = rng.integers(0, classes, n[0], dtype=np.int32)


class ToolTest(unittest.TestCase):
    """Each test gets a fresh directory, self.dir, removed afterwards."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="amlfs-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def ok(self, tool, *args):
        p = run(tool, *args, cwd=self.dir)
        self.assertEqual(p.returncode, 0, f"{tool} {args}: exit {p.returncode}: {p.stderr}")
        return p

    def fails(self, code, tool, *args, mentions=None):
        """The call exits with code and one stderr line 'tool: error: ...' that names
        each string of mentions."""
        p = run(tool, *args, cwd=self.dir)
        self.assertEqual(p.returncode, code, f"{tool} {args}: exit {p.returncode}, want {code}: "
                         f"{p.stderr}")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"{tool} {args}: want one stderr line, got {lines}")
        self.assertTrue(lines[0].startswith(f"{tool}: error: "), lines[0])
        for m in mentions or []:
            self.assertIn(m, lines[0])
        return lines[0]

    def policy(self, name="policy.h5", *args):
        self.ok("amlfs-init", "--policy-only", "--out", self.path(name), *args)
        return self.path(name)


def read(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


def attr(path, name, obj="/"):
    with h5py.File(path, "r") as f:
        v = f[obj].attrs[name]
        return v.decode() if isinstance(v, bytes) else v
