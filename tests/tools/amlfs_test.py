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


def write_dataset(path, n=(20, 10, 10), classes=10, noise=True, channels=1, size=28,
                  easy=False):
    """A dataset file of random (N, channels, size, size) images (named cifar10 when it
    has 3 channels, else fashion-mnist). easy: each image's brightness encodes its label
    (pixels within 10 of 20 + 215 * label / (classes - 1)), a task a model learns in a few
    steps."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        common_attrs(f, "dataset")
        f.attrs["name"] = np.bytes_("cifar10" if channels == 3 else "fashion-mnist")
        f.attrs["classes"] = np.int64(classes)
        f.attrs["channels"] = np.int64(channels)
        f.attrs["height"] = np.int64(size)
        f.attrs["width"] = np.int64(size)
        mean, std = {1: ([0.286], [0.353]),
                     3: ([0.491, 0.482, 0.447], [0.247, 0.243, 0.262])}.get(
                         channels, ([0.3] * channels, [0.3] * channels))
        f.attrs["mean"] = np.array(mean)
        f.attrs["std"] = np.array(std)
        f.attrs["noise_ratio"] = np.float64(0.2 if noise else 0.0)
        f.attrs["noise_kind"] = np.bytes_("symmetric" if noise else "none")
        f.attrs["seed"] = np.int64(1)
        for split, m in zip(("train", "val", "test"), n):
            shape = (m, channels, size, size)
            if easy:
                labels = rng.integers(0, classes, m, dtype=np.int32)
                level = 20 + 215 * labels / (classes - 1)
                images = level[:, None, None, None] + rng.integers(-10, 11, shape)
                f[split + "/images"] = images.astype(np.uint8)
                f[split + "/labels"] = labels
            else:
                f[split + "/images"] = rng.integers(0, 256, shape, dtype=np.uint8)
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


# ---- the workflow (amlfs-run, amlfs-step): shared by tests/tools/test_run.py and
# tests/slow/test_resume.py ----------------------------------------------------------------
WORKFLOW = os.path.join(ROOT, "workflow")
FASHION = "/usr/share/datasets/fashion-mnist"


def _write_idx_gz(path, array):
    import gzip
    import struct
    array = np.ascontiguousarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _read_idx_head(path, n):
    """The first n items of a gzip idx file (reads only what it needs)."""
    import gzip
    import struct
    with gzip.open(path, "rb") as f:
        magic = f.read(4)
        ndim = magic[3]
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        n = min(n, shape[0])
        item = int(np.prod(shape[1:], dtype=np.int64)) if ndim > 1 else 1
        data = np.frombuffer(f.read(n * item), np.uint8)
    return data.reshape((n,) + tuple(shape[1:]))


def fashion_subset(d, n_train=600, n_test=200):
    """Fashion-MNIST's four gzip idx files in d holding the first n_train training and
    n_test test images of the real data set (/usr/share/datasets/fashion-mnist), or, where
    it is not installed, random images with cycling labels in the same format."""
    os.makedirs(d, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images_gz = os.path.join(FASHION, f"{prefix}-images-idx3-ubyte.gz")
        labels_gz = os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte.gz")
        if os.path.isfile(images_gz) and os.path.isfile(labels_gz):
            images, labels = _read_idx_head(images_gz, n), _read_idx_head(labels_gz, n)
        else:
            rng = np.random.default_rng(5)
            images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            labels = (np.arange(n) * 7 % 13) % 10
        _write_idx_gz(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz"), images)
        _write_idx_gz(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return d


def write_config(path, keys):
    """A config file of key = value lines from a dict (None values are left out)."""
    with open(path, "w") as f:
        f.write("# written by a test\n")
        for k, v in keys.items():
            if v is not None:
                f.write(f"{k} = {v}\n")
    return path


def driver_env(**extra):
    """The environment the workflow scripts run in: this build's tools first on PATH and
    named by AMLFS_BIN; no test hook unless extra sets one."""
    env = dict(os.environ)
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env["AMLFS_BIN"] = BIN
    env.pop("AMLFS_STEP_FAIL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def session_pids(sid):
    """The processes of session sid (a process started with start_new_session=True and
    every descendant, GNU Parallel's jobs included, which get process groups of their own)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                pids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def kill_session(sid):
    """SIGKILL every process of session sid, until none is left."""
    import signal
    import time
    for _ in range(200):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def run_workflow(script, *args, env=None, timeout=300, abort=None):
    """Runs workflow/SCRIPT (amlfs-run or amlfs-step) with args in a session of its own;
    returns the CompletedProcess. Past timeout seconds, or as soon as abort(stdout lines
    so far) is true, the whole session is killed and returncode is None (stderr says
    why): a driver that loops cannot hang the tests."""
    import threading
    import time
    p = subprocess.Popen([os.path.join(WORKFLOW, script)] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or driver_env(), start_new_session=True)
    out, err, stop = [], [], threading.Event()

    def pump(stream, sink, check):
        for line in stream:
            sink.append(line)
            if check is not None and check(sink):
                stop.set()

    pumps = [threading.Thread(target=pump, args=(p.stdout, out, abort), daemon=True),
             threading.Thread(target=pump, args=(p.stderr, err, None), daemon=True)]
    for t in pumps:
        t.start()
    deadline = time.monotonic() + timeout
    while p.poll() is None and not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    code = p.poll()
    why = ""
    if code is None:
        why = ("\n[test: killed: its output shows it looping]" if stop.is_set()
               else f"\n[test: killed after {timeout} s]")
    kill_session(p.pid)  # what it left behind, or all of it when it did not end
    p.wait()
    for t in pumps:
        t.join(timeout=10)
    p.stdout.close()
    p.stderr.close()
    return subprocess.CompletedProcess(p.args, code, "".join(out), "".join(err) + why)


def h5_files(run):
    """The HDF5 files of a run directory, as paths relative to it, sorted."""
    found = []
    for dirpath, _, names in os.walk(run):
        for n in names:
            if n.endswith(".h5"):
                found.append(os.path.relpath(os.path.join(dirpath, n), run))
    return sorted(found)


def must(tool, *args):
    """Runs a tool that must succeed; its stderr in the failure."""
    p = run(tool, *args)
    if p.returncode != 0:
        raise AssertionError(f"{tool} {args}: exit {p.returncode}: {p.stderr}")
    return p


def edited(src, dst, edit):
    """A copy of src at dst, edited with h5py."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def anchored_theta(draw, m, space, floor=0.05):
    """DESIGN.md 1's anchored transforms, written out literally: slopes floored, the
    value at each knot by continuity from the lower end, b_k = phi(xi_k) - a_k xi_k."""
    out = []
    for which in (0, 1):
        a = np.maximum(draw[2 * m * which: 2 * m * which + m], floor)
        c = draw[2 * m * which + m]
        lo = -1.0 if (which == 0 and space == "cosine") else 0.0
        c = (c if space == "cosine" else 0.0) if which == 0 else max(c, 0.0)
        h = (1.0 - lo) / m
        value, b = c, []
        for k in range(m):
            b.append(value - a[k] * (lo + k * h))
            value += a[k] * h
        out += [a, np.array(b)]
    return np.concatenate(out)


def theta_of_policy(path):
    """The slopes and biases (4M) a policy file's mu stands for in its form."""
    with h5py.File(path) as f:
        mu, m = f["mu"][()], int(f.attrs["intervals"])
        form, space = (f.attrs[k] for k in ("form", "space"))
        floor = float(f.attrs["slope_floor"])
    form = form.decode() if isinstance(form, bytes) else str(form)
    space = space.decode() if isinstance(space, bytes) else str(space)
    return mu if form == "free" else anchored_theta(mu, m, space, floor)


def set_theta(f, theta):
    """Writes /theta (B,4M) into an open free-form thetas file, and /draw with it: the
    free form's draw is its theta (DESIGN.md 1), and readers check that /theta is the
    form's theta of /draw."""
    form = f.attrs["form"]
    form = form.decode() if isinstance(form, bytes) else str(form)
    if form != "free":
        raise ValueError(f"{f.filename}: a {form}-form thetas file; set_theta needs --form free")
    f["theta"][...] = theta
    f["draw"][...] = theta


def replace_dataset(f, name, data):
    del f[name]
    f[name] = data
