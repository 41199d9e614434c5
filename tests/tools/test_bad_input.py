"""Bad inputs and failed writes: each gets its exit status (2 for a usage or input error,
1 for work that failed) and exactly one stderr line 'amlfs-TOOL: error: ...' naming the
problem; an output that existed before the failed call is left byte-identical, and no
temporary file ('.NAME.tmp.XXXXXX') is left beside it. The error paths run clean under
valgrind too (in the sanitizer build ASan and LSan watch them instead).

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import must, edited, replace_dataset

PRECIOUS = b"an output from an earlier, successful call\n"
TEMPORARY = re.compile(r"^\..*\.tmp\..*")
OUT = object()  # stands for the --out path in BadInputTest.bad's argument lists


class Fixtures:
    """Valid and broken inputs, made once per test class (the tools only read them)."""

    def __init__(self, d):
        self.dir = d
        p = self.p
        must("amlfs-init", "--policy-only", "--out", p("policy.h5"))
        must("amlfs-init", "--policy-only", "--out", p("policy-anti.h5"),
             "--sampling", "antithetic")
        must("amlfs-init", "--policy-only", "--out", p("policy-cosine.h5"), "--space", "cosine")
        must("amlfs-init", "--policy-only", "--out", p("policy-free.h5"), "--form", "free")
        must("amlfs-sample", "--policy", p("policy-free.h5"), "--epoch", 1, "--samples", 4,
             "--out", p("thetas-free.h5"))
        must("amlfs-sample", "--policy", p("policy.h5"), "--epoch", 1, "--samples", 4,
             "--out", p("thetas.h5"))
        must("amlfs-sample", "--policy", p("policy-cosine.h5"), "--epoch", 1, "--samples", 2,
             "--out", p("thetas-cosine.h5"))
        self.evals = [p(f"eval-{i}.h5") for i in range(4)]
        for i, e in enumerate(self.evals):
            T.write_eval(e, top1=0.2 + 0.1 * i)
        self.ckpts = [p(f"ckpt-{i}.h5") for i in range(4)]
        for i, c in enumerate(self.ckpts):
            T.write_checkpoint(c, fill=0.1 * i)
        must("amlfs-reward", "--thetas", p("thetas.h5"), "--metric", "top1",
             "--out", p("rewards.h5"), *self.evals)
        # every eval missing: no finite reward
        must("amlfs-reward", "--thetas", p("thetas.h5"), "--metric", "top1",
             "--out", p("rewards-none.h5"), *[p(f"no-eval-{i}.h5") for i in range(4)])
        rng = np.random.default_rng(2)
        T.write_loss_input(p("logits.h5"), logits=rng.standard_normal((5, 3)),
                           targets=[0, 1, 2, 1, 0])
        T.write_loss_input(p("cosines.h5"), cosines=rng.uniform(-1, 1, (5, 3)), scale=16,
                           targets=[0, 1, 2, 1, 0])
        T.write_loss_input(p("targets-high.h5"), logits=rng.standard_normal((5, 3)),
                           targets=[0, 1, 3, 1, 0])
        T.write_loss_input(p("targets-negative.h5"), logits=rng.standard_normal((5, 3)),
                           targets=[0, -1, 2, 1, 0])
        with open(p("text.h5"), "w") as f:
            f.write("schema = policy\nmu = 1 0 1 0\n")
        self.missing = p("missing.h5")

        def wide(f):  # /mu, /draw and /theta with 4M+1 columns, intervals still M
            replace_dataset(f, "mu", np.append(f["mu"][()], 0.0))
            for name in ("draw", "theta"):
                th = f[name][()]
                replace_dataset(f, name, np.hstack([th, np.zeros((th.shape[0], 1))]))

        edited(p("thetas.h5"), p("thetas-wide.h5"), wide)

        def nan(f):
            th = f["draw"][()]
            th[2, 5] = np.nan
            f["draw"][...] = th

        edited(p("thetas.h5"), p("thetas-nan.h5"), nan)

        def m0(f):
            f.attrs["intervals"] = np.int64(0)
            for k in ("mu", "mu_init", "adam_m", "adam_v"):
                replace_dataset(f, k, np.zeros(0))

        edited(p("policy.h5"), p("policy-m0.h5"), m0)
        edited(p("policy.h5"), p("policy-sigma.h5"),
               lambda f: f.attrs.__setitem__("sigma", np.float64(-0.1)))

        def adam_m_nan(f):
            m = f["adam_m"][()]
            m[3] = np.nan
            f["adam_m"][...] = m

        edited(p("policy.h5"), p("policy-adam-m-nan.h5"), adam_m_nan)
        edited(p("policy.h5"), p("policy-adam-v-negative.h5"),
               lambda f: f["adam_v"].__setitem__(Ellipsis, -1.0))
        edited(p("policy.h5"), p("policy-beta1-one.h5"),
               lambda f: f.attrs.__setitem__("beta1", np.float64(1.0)))
        edited(p("policy.h5"), p("policy-adam-eps-nan.h5"),
               lambda f: f.attrs.__setitem__("adam_eps", np.float64(np.nan)))

    def p(self, name):
        return os.path.join(self.dir, name)


class BadInputTest(T.ToolTest):
    @classmethod
    def setUpClass(cls):
        cls.fixdir = tempfile.mkdtemp(prefix="amlfs-bad-input-")
        cls.fx = Fixtures(cls.fixdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.fixdir, ignore_errors=True)

    def temporaries(self, d):
        return sorted(n for n in os.listdir(d) if TEMPORARY.match(n))

    def bad(self, code, tool, *args, mentions=(), out="out.h5"):
        """The call fails with code and one line naming each of mentions (a tuple inside
        mentions: any one of them); the --out file, made beforehand, is untouched, and no
        temporary is left in its directory. args may hold OUT for the --out path."""
        out_path = self.path(out) if out else None
        if out_path:
            with open(out_path, "wb") as f:
                f.write(PRECIOUS)
        args = [out_path if a is OUT else a for a in args]
        with self.subTest(call=" ".join([tool] + [os.path.basename(str(a)) for a in args])):
            line = self.fails(code, tool, *args)
            for m in mentions:
                if isinstance(m, tuple):
                    self.assertTrue(any(x.lower() in line.lower() for x in m),
                                    f"none of {m} in {line!r}")
                else:
                    self.assertIn(m, line)
            if out_path:
                with open(out_path, "rb") as f:
                    self.assertEqual(f.read(), PRECIOUS, f"{tool} changed {out} and failed")
            self.assertEqual(self.temporaries(self.dir), [], f"{tool} left a temporary")
            self.assertEqual(self.temporaries(self.fixdir), [], f"{tool} left a temporary")
            return line

    # -- files that cannot be used --

    def every_input(self, path):
        """(tool, args) calls with path in each input position of each tool."""
        fx = self.fx
        return [
            ("amlfs-sample", ("--policy", path, "--epoch", 1, "--samples", 4, "--out", OUT)),
            ("amlfs-update", ("--policy", path, "--thetas", fx.p("thetas.h5"),
                              "--rewards", fx.p("rewards.h5"), "--out", OUT)),
            ("amlfs-update", ("--policy", fx.p("policy.h5"), "--thetas", path,
                              "--rewards", fx.p("rewards.h5"), "--out", OUT)),
            ("amlfs-update", ("--policy", fx.p("policy.h5"), "--thetas", fx.p("thetas.h5"),
                              "--rewards", path, "--out", OUT)),
            ("amlfs-reward", ("--thetas", path, "--metric", "top1", "--out", OUT,
                              *fx.evals)),
            ("amlfs-broadcast", ("--rewards", path, "--out", OUT, *fx.ckpts)),
            ("amlfs-loss", ("--thetas", path, "--index", 0, "--input", fx.p("logits.h5"),
                            "--out", OUT)),
            ("amlfs-loss", ("--thetas", fx.p("thetas.h5"), "--index", 0, "--input", path,
                            "--out", OUT)),
            ("amlfs-init", ("--policy-only", "--mode", "replay", "--from", path,
                            "--out", OUT)),
        ]

    def test_missing_file(self):
        for tool, args in self.every_input(self.fx.missing):
            self.bad(2, tool, *args, mentions=[self.fx.missing, ("no such file", "missing")])
        self.bad(2, "amlfs-check", self.fx.missing, mentions=[self.fx.missing], out=None)

    def test_not_hdf5(self):
        text = self.fx.p("text.h5")
        for tool, args in self.every_input(text):
            self.bad(2, tool, *args, mentions=[text, "HDF5"])
        self.bad(2, "amlfs-check", text, mentions=[text, "HDF5"], out=None)
        # an empty file, a directory, a policy cut short
        empty = self.path("empty.h5")
        open(empty, "wb").close()
        short = self.path("short.h5")
        with open(self.fx.p("policy.h5"), "rb") as f:
            data = f.read()
        for n in (512, len(data) // 2, len(data) - 8):
            with open(short, "wb") as f:
                f.write(data[:n])
            self.bad(2, "amlfs-sample", "--policy", short, "--epoch", 1, "--samples", 4,
                     "--out", OUT, mentions=[short])
        for path in (empty, self.fixdir):
            self.bad(2, "amlfs-sample", "--policy", path, "--epoch", 1, "--samples", 4,
                     "--out", OUT, mentions=[path])
            self.bad(2, "amlfs-check", path, mentions=[path], out=None)

    def test_wrong_kind(self):
        fx = self.fx
        thetas, policy = fx.p("thetas.h5"), fx.p("policy.h5")
        self.bad(2, "amlfs-sample", "--policy", thetas, "--epoch", 1, "--samples", 4,
                 "--out", OUT, mentions=[thetas, "thetas", "policy"])
        self.bad(2, "amlfs-update", "--policy", thetas, "--thetas", thetas,
                 "--rewards", fx.p("rewards.h5"), "--out", OUT,
                 mentions=[thetas, "thetas", "policy"])
        self.bad(2, "amlfs-update", "--policy", policy, "--thetas", policy,
                 "--rewards", fx.p("rewards.h5"), "--out", OUT,
                 mentions=[policy, "thetas", "policy"])
        self.bad(2, "amlfs-update", "--policy", policy, "--thetas", thetas,
                 "--rewards", fx.evals[0], "--out", OUT,
                 mentions=[fx.evals[0], "eval", "rewards"])
        self.bad(2, "amlfs-loss", "--thetas", policy, "--index", 0,
                 "--input", fx.p("logits.h5"), "--out", OUT,
                 mentions=[policy, "thetas", "policy"])
        self.bad(2, "amlfs-loss", "--thetas", thetas, "--index", 0, "--input", fx.ckpts[0],
                 "--out", OUT, mentions=[fx.ckpts[0], "checkpoint", "loss-input"])
        self.bad(2, "amlfs-reward", "--thetas", fx.p("rewards.h5"), "--metric", "top1",
                 "--out", OUT, *fx.evals, mentions=[fx.p("rewards.h5"), "rewards", "thetas"])
        self.bad(2, "amlfs-broadcast", "--rewards", thetas, "--out", OUT, *fx.ckpts,
                 mentions=[thetas, "thetas", "rewards"])
        # the winner (sample 3, the highest top1) is an eval, not a checkpoint
        self.bad(2, "amlfs-broadcast", "--rewards", fx.p("rewards.h5"), "--out", OUT,
                 *fx.ckpts[:3], fx.evals[3], mentions=[fx.evals[3], "eval", "checkpoint"])

    # -- values the schema allows but the maths does not --

    def test_theta_of_the_wrong_length(self):
        wide = self.fx.p("thetas-wide.h5")
        for tool, args in [
            ("amlfs-loss", ("--thetas", wide, "--index", 0, "--input", self.fx.p("logits.h5"),
                            "--out", OUT)),
            ("amlfs-update", ("--policy", self.fx.p("policy.h5"), "--thetas", wide,
                              "--rewards", self.fx.p("rewards.h5"), "--out", OUT))]:
            self.bad(2, tool, *args, mentions=[wide, ("/mu", "/draw", "/theta")])

    def test_theta_with_nan(self):
        nan = self.fx.p("thetas-nan.h5")
        for tool, args in [
            ("amlfs-loss", ("--thetas", nan, "--index", 2, "--input", self.fx.p("logits.h5"),
                            "--out", OUT)),
            ("amlfs-update", ("--policy", self.fx.p("policy.h5"), "--thetas", nan,
                              "--rewards", self.fx.p("rewards.h5"), "--out", OUT))]:
            self.bad(2, tool, *args, mentions=[nan, "/draw", ("nan",)])

    def test_policy_state_the_update_cannot_use(self):
        """The Adam state and constants are inputs too: a bad one is exit 2 naming the
        policy and the value, not exit 1 for a non-finite mu after the step."""
        for name, where in [("policy-adam-m-nan.h5", "/adam_m"),
                            ("policy-adam-v-negative.h5", "/adam_v"),
                            ("policy-beta1-one.h5", "beta1"),
                            ("policy-adam-eps-nan.h5", "adam_eps")]:
            policy = self.fx.p(name)
            self.bad(2, "amlfs-update", "--policy", policy, "--thetas", self.fx.p("thetas.h5"),
                     "--rewards", self.fx.p("rewards.h5"), "--out", OUT,
                     mentions=[policy, where])

    def test_fewer_than_two_samples(self):
        for b in (1, 0):
            self.bad(2, "amlfs-sample", "--policy", self.fx.p("policy.h5"), "--epoch", 1,
                     "--samples", b, "--out", OUT, mentions=["--samples"])

    def test_fewer_than_one_interval(self):
        self.bad(2, "amlfs-init", "--policy-only", "--intervals", 0, "--out", OUT,
                 mentions=["--intervals"])
        self.bad(2, "amlfs-init", "--policy-only", "--intervals", -3, "--out", OUT,
                 mentions=["--intervals"])
        m0 = self.fx.p("policy-m0.h5")
        self.bad(2, "amlfs-sample", "--policy", m0, "--epoch", 1, "--samples", 4,
                 "--out", OUT, mentions=[m0, "intervals"])

    def test_sigma_not_positive(self):
        for s in ("0", "-1", "-0.0", "nan"):
            self.bad(2, "amlfs-init", "--policy-only", "--sigma", s, "--out", OUT,
                     mentions=["--sigma"])
        bad = self.fx.p("policy-sigma.h5")
        self.bad(2, "amlfs-sample", "--policy", bad, "--epoch", 1, "--samples", 4,
                 "--out", OUT, mentions=[bad, "sigma"])

    def test_sigma_intercept_or_floor_negative(self):
        for opt in ("--sigma-intercept", "--slope-floor"):
            for v in ("-0.1", "nan"):
                self.bad(2, "amlfs-init", "--policy-only", opt, v, "--out", OUT, mentions=[opt])
        bad = edited(self.fx.p("policy.h5"), self.path("policy-si.h5"),
                     lambda f: f.attrs.__setitem__("sigma_intercept", np.float64(-0.2)))
        self.bad(2, "amlfs-sample", "--policy", bad, "--epoch", 1, "--samples", 4,
                 "--out", OUT, mentions=[bad, "sigma_intercept"])

        def searched_bias(f):  # a sigma on a coordinate the anchored form does not search
            s = f["sigma"][()]
            s[7] = 0.2
            f["sigma"][...] = s

        bad = edited(self.fx.p("policy.h5"), self.path("policy-sb.h5"), searched_bias)
        self.bad(2, "amlfs-sample", "--policy", bad, "--epoch", 1, "--samples", 4,
                 "--out", OUT, mentions=[bad, "/sigma[7]", "anchored"])

    def test_thetas_of_the_other_form(self):
        fx = self.fx
        for policy, thetas in (("policy.h5", "thetas-free.h5"), ("policy-free.h5", "thetas.h5")):
            self.bad(2, "amlfs-update", "--policy", fx.p(policy), "--thetas", fx.p(thetas),
                     "--rewards", fx.p("rewards.h5"), "--out", OUT,
                     mentions=[fx.p(thetas), "form"])

    def test_theta_that_is_not_its_draw(self):
        def off(f):
            th = f["theta"][()]
            th[1, 3] += 1e-9
            f["theta"][...] = th

        bad = edited(self.fx.p("thetas.h5"), self.path("thetas-off.h5"), off)
        self.bad(2, "amlfs-loss", "--thetas", bad, "--index", 0, "--input",
                 self.fx.p("logits.h5"), "--out", OUT, mentions=[bad, "/theta[1]", "/draw[1]"])

    def test_unknown_choice(self):
        for opt in ("--space", "--mode", "--init", "--sampling", "--shaping", "--form"):
            self.bad(2, "amlfs-init", "--policy-only", opt, "banana", "--out", OUT,
                     mentions=[opt, "banana"])
        self.bad(2, "amlfs-reward", "--thetas", self.fx.p("thetas.h5"), "--metric", "banana",
                 "--out", OUT, *self.fx.evals, mentions=["--metric", "banana"])

    def test_margin_init_in_the_prob_space(self):
        for init in ("cosface", "arcface", "sphereface"):
            self.bad(2, "amlfs-init", "--policy-only", "--init", init, "--out", OUT,
                     mentions=[init, "cosine"])
            self.bad(2, "amlfs-init", "--policy-only", "--space", "prob", "--init", init,
                     "--out", OUT, mentions=[init, "cosine"])

    def test_epoch_other_than_the_policys(self):
        policy = self.fx.p("policy.h5")
        for e in (2, 100):
            self.bad(2, "amlfs-sample", "--policy", policy, "--epoch", e, "--samples", 4,
                     "--out", OUT, mentions=[policy, "--epoch", "1", str(e)])

    def test_list_length_other_than_b(self):
        fx = self.fx
        for evals in (fx.evals[:3], fx.evals + fx.evals[:1], []):
            self.bad(2, "amlfs-reward", "--thetas", fx.p("thetas.h5"), "--metric", "top1",
                     "--out", OUT, *evals, mentions=[fx.p("thetas.h5"), "4", str(len(evals))])
        for ckpts in (fx.ckpts[:3], fx.ckpts + fx.ckpts[:1], []):
            self.bad(2, "amlfs-broadcast", "--rewards", fx.p("rewards.h5"), "--out", OUT,
                     *ckpts, mentions=[fx.p("rewards.h5"), "4", str(len(ckpts))])

    def test_odd_b_with_antithetic_sampling(self):
        for b in (3, 5):
            self.bad(2, "amlfs-sample", "--policy", self.fx.p("policy-anti.h5"), "--epoch", 1,
                     "--samples", b, "--out", OUT, mentions=["antithetic", str(b)])

    def test_index_not_below_b(self):
        for i in (4, 1000):
            self.bad(2, "amlfs-loss", "--thetas", self.fx.p("thetas.h5"), "--index", i,
                     "--input", self.fx.p("logits.h5"), "--out", OUT,
                     mentions=["--index", str(i)])
        self.bad(2, "amlfs-loss", "--thetas", self.fx.p("thetas.h5"), "--index", -1,
                 "--input", self.fx.p("logits.h5"), "--out", OUT, mentions=["--index"])

    def test_targets_out_of_range(self):
        for name in ("targets-high.h5", "targets-negative.h5"):
            path = self.fx.p(name)
            self.bad(2, "amlfs-loss", "--thetas", self.fx.p("thetas.h5"), "--index", 0,
                     "--input", path, "--out", OUT, mentions=[path, "/targets"])

    def test_input_of_the_other_space(self):
        fx = self.fx
        self.bad(2, "amlfs-loss", "--thetas", fx.p("thetas-cosine.h5"), "--index", 0,
                 "--input", fx.p("logits.h5"), "--out", OUT,
                 mentions=[fx.p("logits.h5"), "/cosines"])
        self.bad(2, "amlfs-loss", "--thetas", fx.p("thetas.h5"), "--index", 0,
                 "--input", fx.p("cosines.h5"), "--out", OUT,
                 mentions=[fx.p("cosines.h5"), "/logits"])

    # -- work that failed: exit 1 --

    def test_unwritable_output_directory(self):
        fx = self.fx
        regular = self.path("a-regular-file")
        with open(regular, "wb") as f:
            f.write(PRECIOUS)
        targets = ["/proc/amlfs/x.h5", self.path("no-such-dir/x.h5"),
                   os.path.join(regular, "x.h5")]
        calls = [
            ("amlfs-init", ("--policy-only", "--out")),
            ("amlfs-sample", ("--policy", fx.p("policy.h5"), "--epoch", 1, "--samples", 4,
                              "--out")),
            ("amlfs-reward", ("--thetas", fx.p("thetas.h5"), "--metric", "top1", *fx.evals,
                              "--out")),
            ("amlfs-update", ("--policy", fx.p("policy.h5"), "--thetas", fx.p("thetas.h5"),
                              "--rewards", fx.p("rewards.h5"), "--out")),
            ("amlfs-broadcast", ("--rewards", fx.p("rewards.h5"), *fx.ckpts, "--out")),
            ("amlfs-loss", ("--thetas", fx.p("thetas.h5"), "--index", 0,
                            "--input", fx.p("logits.h5"), "--out")),
        ]
        for tool, args in calls:
            for target in targets:
                self.bad(1, tool, *args, target, mentions=[target], out=None)
        self.assertFalse(os.path.exists(self.path("no-such-dir")))
        with open(regular, "rb") as f:
            self.assertEqual(f.read(), PRECIOUS)

    def test_output_is_a_directory(self):
        """The rename into place fails after the temporary was written: it goes too."""
        target = self.path("a-directory")
        os.mkdir(target)
        self.bad(1, "amlfs-init", "--policy-only", "--out", target, mentions=[target],
                 out=None)
        self.bad(1, "amlfs-sample", "--policy", self.fx.p("policy.h5"), "--epoch", 1,
                 "--samples", 4, "--out", target, mentions=[target], out=None)
        self.assertTrue(os.path.isdir(target))
        self.assertEqual(os.listdir(target), [])

    def test_no_finite_reward(self):
        none = self.fx.p("rewards-none.h5")
        self.assertEqual(T.attr(none, "finite"), 0)
        self.bad(1, "amlfs-broadcast", "--rewards", none, "--out", OUT, *self.fx.ckpts,
                 mentions=[none, "finite"])

    # -- the contract's other half: a good call after all these still works --

    def test_a_good_call_replaces_the_output(self):
        out = self.path("out.h5")
        with open(out, "wb") as f:
            f.write(PRECIOUS)
        self.ok("amlfs-sample", "--policy", self.fx.p("policy.h5"), "--epoch", 1,
                "--samples", 4, "--out", out)
        self.assertEqual(T.attr(out, "schema"), "thetas")
        self.assertEqual(self.temporaries(self.dir), [])

VALGRIND = shutil.which("valgrind")
VALGRIND_ARGS = ["--leak-check=full", "--errors-for-leak-kinds=definite",
                 "--error-exitcode=99", "-q"]
# If HDF5 or another library ever leaks on its own (none does today), its suppressions
# go in tests/tools/valgrind.supp, one entry per leak with a comment naming its owner;
# our own leaks are never suppressed.
SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")


@unittest.skipIf(T.sanitized(), "the sanitizer build: ASan and LSan check these paths")
@unittest.skipUnless(VALGRIND, "valgrind not installed (make deps installs it)")
class ValgrindTest(unittest.TestCase):
    """Error paths under valgrind: exit 2 (or 1), never 99 (a memory error or a definite
    leak)."""

    @classmethod
    def setUpClass(cls):
        cls.fixdir = tempfile.mkdtemp(prefix="amlfs-valgrind-")
        cls.fx = Fixtures(cls.fixdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.fixdir, ignore_errors=True)

    def test_error_paths_are_clean(self):
        fx = self.fx
        out = fx.p("vg-out.h5")
        cases = [
            (2, "amlfs-sample", "--policy", fx.missing, "--epoch", 1, "--samples", 4,
             "--out", out),
            (2, "amlfs-check", fx.p("text.h5")),
            (2, "amlfs-update", "--policy", fx.p("thetas.h5"), "--thetas", fx.p("thetas.h5"),
             "--rewards", fx.p("rewards.h5"), "--out", out),
            (2, "amlfs-loss", "--thetas", fx.p("thetas-wide.h5"), "--index", 0,
             "--input", fx.p("logits.h5"), "--out", out),
            (2, "amlfs-loss", "--thetas", fx.p("thetas-nan.h5"), "--index", 0,
             "--input", fx.p("logits.h5"), "--out", out),
            (2, "amlfs-update", "--policy", fx.p("policy.h5"), "--thetas", fx.p("thetas-nan.h5"),
             "--rewards", fx.p("rewards.h5"), "--out", out),
            (2, "amlfs-sample", "--policy", fx.p("policy-anti.h5"), "--epoch", 1,
             "--samples", 3, "--out", out),
            (2, "amlfs-sample", "--policy", fx.p("policy-m0.h5"), "--epoch", 1, "--samples", 4,
             "--out", out),
            (2, "amlfs-init", "--policy-only", "--init", "arcface", "--out", out),
            (2, "amlfs-init", "--policy-only", "--sigma", "0", "--out", out),
            (2, "amlfs-reward", "--thetas", fx.p("thetas.h5"), "--metric", "top1",
             "--out", out, *fx.evals[:3]),
            (2, "amlfs-broadcast", "--rewards", fx.p("rewards.h5"), "--out", out,
             *fx.ckpts[:3]),
            (2, "amlfs-loss", "--thetas", fx.p("thetas.h5"), "--index", 4,
             "--input", fx.p("logits.h5"), "--out", out),
            (2, "amlfs-loss", "--thetas", fx.p("thetas.h5"), "--index", 0,
             "--input", fx.p("targets-high.h5"), "--out", out),
            (2, "amlfs-loss", "--thetas", fx.p("thetas-cosine.h5"), "--index", 0,
             "--input", fx.p("logits.h5"), "--out", out),
            (1, "amlfs-broadcast", "--rewards", fx.p("rewards-none.h5"), "--out", out,
             *fx.ckpts),
            (1, "amlfs-update", "--policy", fx.p("policy.h5"), "--thetas", fx.p("thetas.h5"),
             "--rewards", fx.p("rewards.h5"), "--out", "/proc/amlfs/x.h5"),
            (1, "amlfs-init", "--policy-only", "--out", fx.dir),
        ]
        extra = ["--suppressions=" + SUPPRESSIONS] if os.path.exists(SUPPRESSIONS) else []

        def one(case):
            code, tool, *args = case
            cmd = [VALGRIND] + VALGRIND_ARGS + extra + [os.path.join(T.BIN, tool)] + \
                [str(a) for a in args]
            return case, subprocess.run(cmd, capture_output=True, text=True)

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(one, cases))
        for (code, tool, *args), p in results:
            with self.subTest(call=" ".join([tool] + [os.path.basename(str(a)) for a in args])):
                self.assertNotEqual(p.returncode, 99,
                                    f"valgrind found a memory error or a definite leak:\n"
                                    f"{p.stderr}")
                self.assertEqual(p.returncode, code, p.stderr)
                self.assertTrue(any(l.startswith(f"{tool}: error: ")
                                    for l in p.stderr.splitlines()), p.stderr)


if __name__ == "__main__":
    unittest.main()
