"""amlfs-config, the one resolver of the config keys (tools/lib/config.c): defaults, the
dataset's defaults, --set over files, a later file over an earlier one, the computed
defaults (threads, cpus_per_task, gres), replay's source run, the checks of kind and
range (exit 2, one line naming FILE:LINE or --set, the key and what was expected), the
key lists the drivers print; and that the key table lives in config.c alone.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import os
import re
import subprocess
import unittest

import amlfs_test as T


def parse(text):
    """key = value lines into an ordered list of (key, value)."""
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        assert sep, f"not a key = value line: {line!r}"
        out.append((key, value))
    return out


class Config(T.ToolTest):
    def resolve(self, *args, env=None):
        p = subprocess.run([os.path.join(T.BIN, "amlfs-config")] + [str(a) for a in args],
                           capture_output=True, text=True, cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, f"amlfs-config {args}: {p.stderr}")
        self.assertEqual(p.stderr, "")
        return dict(parse(p.stdout)), p.stdout

    def conf(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def test_every_key_in_table_order_with_defaults(self):
        keys = self.ok("amlfs-config", "--keys").stdout.split()
        values, text = self.resolve("--set", "threads=2")
        self.assertEqual([k for k, _ in parse(text)], keys)
        self.assertGreater(len(keys), 40)
        for key, want in (("dataset", "fashion-mnist"), ("src", T.FASHION), ("data", ""),
                          ("train_size", "all"), ("val_size", "5000"), ("model", "small-cnn"),
                          ("batch", "100"), ("lr", "0.05"), ("epochs", "12"), ("augment", "none"),
                          ("samples", "8"), ("intervals", "6"), ("sigma", "0.2"),
                          ("sigma_intercept", ""), ("mode", "amlfs"), ("seed", "1"),
                          ("device", "cpu"), ("jobs", "1"), ("threads", "2"),
                          ("cpus_per_task", "2"), ("gres", "none"), ("reduce_time", "30:00"),
                          ("retries", "1")):
            self.assertEqual(values[key], want, key)
        slurm = self.ok("amlfs-config", "--keys", "slurm").stdout.split()
        search = self.ok("amlfs-config", "--keys", "search").stdout.split()
        self.assertEqual(search + slurm, keys)
        self.assertIn("retries", slurm)
        self.assertNotIn("retries", search)

    def test_dataset_defaults(self):
        values, _ = self.resolve("--set", "dataset=cifar10", "--set", "src=/cifar")
        for key, want in (("src", "/cifar"), ("model", "resnet20"), ("batch", "128"),
                          ("lr", "0.1"), ("epochs", "200"), ("augment", "crop-flip"),
                          ("samples", "32")):
            self.assertEqual(values[key], want, key)
        # a dataset default given explicitly wins
        values, _ = self.resolve("--set", "dataset=cifar10", "--set", "src=/cifar",
                                 "--set", "batch=64")
        self.assertEqual(values["batch"], "64")

    def test_set_over_files_and_later_file_over_earlier(self):
        a = self.conf("a.conf", "# a comment\nseed = 3   # trailing comment\nlr=0.2\n\n"
                                "sigma = 0.1\n")
        b = self.conf("b.conf", "sigma = 0.4\n")
        values, _ = self.resolve("--config", a, "--config", b, "--set", "seed=9")
        self.assertEqual((values["seed"], values["lr"], values["sigma"]), ("9", "0.2", "0.4"))
        self.assertEqual(self.ok("amlfs-config", "--config", a, "--get", "lr").stdout, "0.2\n")
        # an empty value is a default only where the default is empty; elsewhere it is
        # refused at once (it would fail later, in a tool)
        c = self.conf("c.conf", "data =\nsigma_intercept = \npartition =\n")
        values, _ = self.resolve("--config", c)
        self.assertEqual((values["data"], values["sigma_intercept"]), ("", ""))
        for key in ("model", "retries", "epochs", "threads", "seed"):
            c = self.conf("c.conf", f"{key} =\n")
            p = T.run("amlfs-config", "--config", c)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(f"c.conf:1: {key} = '': empty", p.stderr)

    def test_computed_defaults(self):
        env = dict(os.environ, OMP_NUM_THREADS="6")
        values, _ = self.resolve("--set", "jobs=2", env=env)
        self.assertEqual((values["threads"], values["cpus_per_task"]), ("3", "3"))
        values, _ = self.resolve("--set", "jobs=4", env=dict(os.environ, OMP_NUM_THREADS="2"))
        self.assertEqual(values["threads"], "1")
        values, _ = self.resolve("--set", "device=cuda:0,1", "--set", "jobs=2", "--set",
                                 "threads=1")
        self.assertEqual(values["gres"], "gpu:2")
        # on Slurm the tasks' CPUs give the threads, 4 when neither is set
        values, _ = self.resolve("--slurm")
        self.assertEqual((values["threads"], values["cpus_per_task"]), ("4", "4"))
        values, _ = self.resolve("--slurm", "--set", "cpus_per_task=5")
        self.assertEqual((values["threads"], values["cpus_per_task"]), ("5", "5"))

    def test_paths_made_absolute(self):
        data = self.path("data.h5")
        open(data, "w").close()
        values, _ = self.resolve("--set", "data=data.h5")
        self.assertEqual(values["data"], os.path.realpath(data))
        self.fails(2, "amlfs-config", "--set", "data=nowhere.h5", mentions=["nowhere.h5", "data"])

    def test_replay_takes_the_source_runs_parametrisation(self):
        src = self.path("source")
        os.makedirs(os.path.join(src, "final"))
        self.conf("source/config", "# resolved\nintervals = 4\nspace = prob\nepochs = 3\n")
        open(os.path.join(src, "final", "checkpoint.h5"), "w").close()
        values, _ = self.resolve("--set", "mode=replay", "--set", f"replay_run={src}",
                                 "--set", "epochs=3")
        self.assertEqual((values["samples"], values["intervals"], values["form"]),
                         ("1", "4", "free"))  # a run of before the forms: free
        self.assertEqual(values["replay_run"], os.path.realpath(src))
        self.fails(2, "amlfs-config", "--set", "mode=replay", "--set", f"replay_run={src}",
                   "--set", "epochs=4", mentions=["epochs = 4", "3 epochs"])
        self.fails(2, "amlfs-config", "--set", "mode=replay", mentions=["replay_run"])
        self.fails(2, "amlfs-config", "--set", "mode=replay", "--set", f"replay_run={self.dir}",
                   mentions=[self.dir, "not a run directory"])

    def test_bad_values_refused(self):
        conf = self.conf("bad.conf", "# line 1\nseed = 2\nsigma = -1\n")
        self.fails(2, "amlfs-config", "--config", conf,
                   mentions=[f"{conf}:3: sigma = -1", "outside 0.000001 to 1000000"])
        for args, mentions in (
                (["--set", "lr=fast"], ["--set: lr = 'fast'", "expected a number"]),
                (["--set", "jobs=0"], ["jobs = 0", "outside 1 to 4096"]),
                (["--set", "keep=-1"], ["keep = '-1'", "expected an integer"]),
                (["--set", "seed=99999999999999999999"], ["seed", "outside 0 to 4294967295"]),
                (["--set", "train_size=most"], ["train_size", "expected an integer"]),
                (["--set", "mode=greedy"], ["mode = 'greedy'", "amlfs, random, fixed, replay"]),
                (["--set", "device=gpu"], ["device = 'gpu'", "cpu or cuda:N"]),
                (["--set", "time=soon"], ["time = 'soon'", "[D-]H:MM:SS"]),
                (["--set", "mem=lots"], ["mem = 'lots'"]),
                (["--set", "gres=gpu:"], ["gres"]),
                (["--set", "sbatch_args=qos"], ["sbatch_args"]),
                (["--set", "colour=red"], ["--set colour", "unknown key"]),
                (["--set", "seed"], ["--set seed", "key=value"]),
                (["--set", "samples=1"], ["samples = 1", "B >= 2"]),
                (["--set", "sampling=antithetic", "--set", "samples=3"], ["antithetic", "3"]),
                (["--set", "dataset=cifar10"], ["cifar10", "src"]),
                (["--set", "device=cuda:0", "--set", "jobs=2"], ["jobs = 2", "1 GPU"]),
                (["--get", "colour"], ["colour", "unknown key"]),
                (["--config", self.path("none.conf")], ["none.conf", "no such file"])):
            with self.subTest(args=args):
                self.fails(2, "amlfs-config", *args, mentions=mentions)
        for text, mention in (("colour = red\n", "unknown key 'colour'"),
                              ("seed 3\n", "not a 'key = value' line"),
                              ("= 3\n", "not a 'key = value' line")):
            with self.subTest(text=text):
                conf = self.conf("line.conf", "seed = 1\n" + text)
                self.fails(2, "amlfs-config", "--config", conf, mentions=[f"{conf}:2:", mention])
        # accepted at the ends of their ranges
        values, _ = self.resolve("--set", "momentum=0.9999", "--set", "noise=1", "--set",
                                 "seed=4294967295", "--set", "train_size=all", "--set",
                                 "time=1-02:00:00", "--set", "sbatch_args=--qos=a --x=1")
        self.assertEqual(values["sbatch_args"], "--qos=a --x=1")

    def test_table_for_the_drivers_help(self):
        keys = self.ok("amlfs-config", "--keys").stdout.split()
        table = self.ok("amlfs-config", "--table").stdout.splitlines()
        self.assertEqual([l.split()[0] for l in table], keys)
        self.assertRegex(table[0], r"^  dataset +fashion-mnist,cifar10,face,market1501,dukemtmc +default fashion-mnist +the data set$")
        slurm = self.ok("amlfs-config", "--table", "slurm").stdout.splitlines()
        self.assertEqual([l.split()[0] for l in slurm],
                         self.ok("amlfs-config", "--keys", "slurm").stdout.split())
        self.assertNotIn("Slurm: ", "\n".join(slurm))

    def test_the_key_table_is_in_one_file(self):
        """A table row, a key beside its range or choices on one line (the old scripts'
        key|kind|range, config.c's {"key", "kind", "range"), is in tools/lib/config.c and
        in no script or other source."""
        rows = [l.split()[:2] for l in self.ok("amlfs-config", "--table").stdout.splitlines()]
        patterns = [re.compile(r"\b" + re.escape(k) + r"\b\W[^\n]{0,30}" + re.escape(r))
                    for k, r in rows if r != "-"]
        self.assertGreater(len(patterns), 30)
        holders = {}
        for d in ("workflow", "slurm", "tools", "bench", "configs", "tests/cuda"):
            for dirpath, _, names in os.walk(os.path.join(T.ROOT, d)):
                for n in names:
                    path = os.path.join(dirpath, n)
                    try:
                        with open(path, errors="replace") as f:
                            text = f.read()
                    except OSError:
                        continue
                    for p in patterns:
                        if p.search(text):
                            holders.setdefault(p.pattern, set()).add(os.path.relpath(path, T.ROOT))
        for p in patterns:
            self.assertEqual(holders.get(p.pattern), {"tools/lib/config.c"}, p.pattern)


class CheckGet(T.ToolTest):
    """amlfs-check --get FILE PATH[@ATTR]: one value for scripts."""

    def test_attributes_and_datasets(self):
        ev = self.path("eval.h5")
        T.write_eval(ev, top1=0.8125, split="val", images=100)
        self.assertEqual(self.ok("amlfs-check", "--get", ev, "/@top1").stdout, "0.8125\n")
        self.assertEqual(self.ok("amlfs-check", "--get", ev, "/@split").stdout, "val\n")
        self.assertEqual(self.ok("amlfs-check", "--get", ev, "/@images").stdout, "100\n")
        ck = self.path("checkpoint.h5")
        T.write_checkpoint(ck, fill=0.1)
        theta = self.ok("amlfs-check", "--get", ck, "/theta").stdout.split("\n")
        self.assertEqual(theta, ["1"] * 6 + ["0"] * 6 + ["1"] * 6 + ["0"] * 6 + [""])
        # float32 values in their own shortest form, not float64's
        bias = self.ok("amlfs-check", "--get", ck, "/params/bn1.bias").stdout.split()
        self.assertEqual(bias, ["0.1"] * 16)
        w = T.read(ck, "params/conv1.weight").ravel()
        got = self.ok("amlfs-check", "--get", ck, "/params/conv1.weight").stdout.split()
        self.assertEqual([T.np.float32(v) for v in got], list(w))

    def test_a_rewards_file_of_a_real_run(self):
        policy = self.policy("policy.h5", "--seed", 3)
        thetas = self.path("thetas.h5")
        self.ok("amlfs-sample", "--policy", policy, "--epoch", 1, "--samples", 3, "--out", thetas)
        evals = []
        for i, top1 in enumerate((0.5, 0.75, 0.25)):
            evals.append(self.path(f"eval{i}.h5"))
            T.write_eval(evals[-1], top1=top1)
        rewards = self.path("rewards.h5")
        self.ok("amlfs-reward", "--thetas", thetas, "--metric", "top1", "--out", rewards, *evals)
        self.assertEqual(self.ok("amlfs-check", "--get", rewards, "/@best").stdout, "1\n")
        self.assertEqual(self.ok("amlfs-check", "--get", rewards, "/raw").stdout.split(),
                         ["0.5", "0.75", "0.25"])
        self.assertEqual(self.ok("amlfs-check", "--get", rewards, "/@update_skipped").stdout, "\n")

    def test_missing_or_bad_refused(self):
        ev = self.path("eval.h5")
        T.write_eval(ev)
        self.fails(2, "amlfs-check", "--get", ev, "/@nope", mentions=[ev, "nope"])
        self.fails(2, "amlfs-check", "--get", ev, "/nope", mentions=[ev, "/nope"])
        self.fails(2, "amlfs-check", "--get", ev, "/nope@top1", mentions=["/nope"])
        self.fails(2, "amlfs-check", "--get", ev, "/", mentions=["not a dataset"])
        self.fails(2, "amlfs-check", "--get", ev, "top1", mentions=["top1"])
        self.fails(2, "amlfs-check", "--get", ev, mentions=["--get"])
        self.fails(2, "amlfs-check", "--get", self.path("none.h5"), "/@top1", mentions=["none.h5"])
        with open(self.path("bad.h5"), "w") as f:
            f.write("not HDF5")
        self.fails(2, "amlfs-check", "--get", self.path("bad.h5"), "/@top1", mentions=["bad.h5"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
