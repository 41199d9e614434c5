"""The schemas against real files: `h5dump -H` of every file kind, parsed here, matches
schemas/KIND.schema, parsed here too (independently of the C validator); amlfs-check
accepts each real file and rejects each violation with one line naming the file and the
HDF5 path; and the tools write with object-time tracking off (same content, same bytes).

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import edited, replace_dataset

H5DUMP = shutil.which("h5dump")

# ---- the schema files, parsed here ------------------------------------------------------

SCHEMA_TYPES = {"uint8", "int32", "int64", "float32", "float64", "string"}


class SchemaEntry:
    def __init__(self, kind, path, attr, type_, choices, shape, required, meaning, line):
        self.kind = kind          # group | dataset | attr
        self.path = path          # the object's path (for attr: the owner's)
        self.attr = attr          # attribute name, or None
        self.type = type_         # a SCHEMA_TYPES name, or None for groups
        self.choices = choices    # list of allowed strings, or None
        self.shape = shape        # "scalar", "any", or a list of dimension tokens
        self.required = required
        self.meaning = meaning
        self.line = line
        self.wildcard = kind != "attr" and path.endswith("/*")

    def where(self):
        return f"{self.path}@{self.attr}" if self.attr is not None else self.path


def parse_schema(text, name="schema"):
    """(kind, version, [SchemaEntry]) of a schema file's text (schemas/README.md)."""
    kind = version = None
    entries = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(None, 5)
        if fields[0] == "schema":
            if len(fields) != 3:
                raise ValueError(f"{name}:{n}: expected 'schema KIND VERSION'")
            kind, version = fields[1], int(fields[2])
            continue
        if kind is None:
            raise ValueError(f"{name}:{n}: an entry before the 'schema' line")
        if len(fields) < 5:
            raise ValueError(f"{name}:{n}: expected KIND PATH TYPE SHAPE TIER MEANING")
        okind, path, typ, shape, tier = fields[:5]
        meaning = fields[5] if len(fields) > 5 else ""
        if okind not in ("group", "dataset", "attr"):
            raise ValueError(f"{name}:{n}: unknown object kind {okind!r}")
        if tier not in ("required", "optional"):
            raise ValueError(f"{name}:{n}: unknown tier {tier!r}")
        attr = None
        if okind == "attr":
            if "@" not in path:
                raise ValueError(f"{name}:{n}: an attribute path needs @")
            path, attr = path.split("@", 1)
        if not path.startswith("/"):
            raise ValueError(f"{name}:{n}: path {path!r} is not absolute")
        choices = None
        if okind == "group":
            if typ != "-":
                raise ValueError(f"{name}:{n}: a group's type is '-'")
            typ = None
        else:
            m = re.fullmatch(r"string\{([^}]*)\}", typ)
            if m:
                typ, choices = "string", m.group(1).split(",")
            if typ not in SCHEMA_TYPES:
                raise ValueError(f"{name}:{n}: unknown type {typ!r}")
        if shape in ("scalar", "any"):
            pass
        elif shape == "-":
            shape = "any"
        else:
            m = re.fullmatch(r"\(([^()]*)\)", shape)
            if not m:
                raise ValueError(f"{name}:{n}: bad shape {shape!r}")
            shape = m.group(1).split(",")
            for tok in shape:
                if not re.fullmatch(r"\d+|(\d+\*)?[A-Za-z_][A-Za-z0-9_]*", tok):
                    raise ValueError(f"{name}:{n}: bad dimension {tok!r}")
        entries.append(SchemaEntry(okind, path, attr, typ, choices, shape,
                                   tier == "required", meaning, n))
    if kind is None:
        raise ValueError(f"{name}: no 'schema KIND VERSION' line")
    return kind, version, entries


def load_schemas():
    out = {}
    for name in sorted(os.listdir(T.SCHEMAS)):
        if name.endswith(".schema"):
            with open(os.path.join(T.SCHEMAS, name)) as f:
                kind, version, entries = parse_schema(f.read(), name)
            out[kind] = (version, entries)
    return out


# ---- h5dump -H, parsed here -------------------------------------------------------------

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}()/,;]|[^\s{}()/,;"]+')

H5DUMP_TYPES = {"H5T_IEEE_F64LE": "float64", "H5T_IEEE_F32LE": "float32",
                "H5T_STD_I64LE": "int64", "H5T_STD_I32LE": "int32", "H5T_STD_U8LE": "uint8",
                "H5T_STRING": "string"}


def _nest(tokens):
    """Tokens with each {...} turned into a nested list."""
    stack = [[]]
    for t in tokens:
        if t == "{":
            stack.append([])
        elif t == "}":
            if len(stack) == 1:
                raise ValueError("h5dump: unbalanced '}'")
            inner = stack.pop()
            stack[-1].append(inner)
        else:
            stack[-1].append(t)
    if len(stack) != 1:
        raise ValueError("h5dump: unbalanced '{'")
    return stack[0]


def _unquote(t):
    if not (isinstance(t, str) and len(t) >= 2 and t[0] == '"' and t[-1] == '"'):
        raise ValueError(f"h5dump: expected a quoted name, found {t!r}")
    return re.sub(r"\\(.)", r"\1", t[1:-1])


class H5Node:
    """A group, dataset, attribute (or anything else h5dump lists) with its type and
    dataspace as h5dump -H shows them."""

    def __init__(self, kind, name):
        self.kind = kind            # GROUP, DATASET, ATTRIBUTE, SOFTLINK, DATATYPE, ...
        self.name = name
        self.h5type = None          # e.g. H5T_IEEE_F64LE, H5T_STRING
        self.type_detail = {}       # e.g. {"STRSIZE": "6", "CSET": "H5T_CSET_ASCII"}
        self.space = None           # SCALAR, SIMPLE, NULL
        self.dims = None            # tuple of ints for SIMPLE
        self.attrs = {}             # name -> H5Node
        self.members = {}           # name -> H5Node
        self.other = []             # keywords we did not expect in a header dump

    def schema_type(self):
        return H5DUMP_TYPES.get(self.h5type, self.h5type)


def _parse_body(node, body):
    i = 0
    while i < len(body):
        t = body[i]
        if isinstance(t, list):
            node.other.append("{...}")
            i += 1
            continue
        if t == "DATATYPE" and node.kind in ("DATASET", "ATTRIBUTE") and node.h5type is None:
            node.h5type = body[i + 1]
            i += 2
            if i < len(body) and isinstance(body[i], list):
                detail = [x for x in body[i] if not isinstance(x, list)]
                text = " ".join(detail)
                for stmt in text.split(";"):
                    words = stmt.split()
                    if len(words) >= 2:
                        node.type_detail[words[0]] = " ".join(words[1:])
                i += 1
            continue
        if t == "DATASPACE" and node.kind in ("DATASET", "ATTRIBUTE"):
            node.space = body[i + 1]
            i += 2
            if node.space == "SIMPLE":
                inner = body[i]
                i += 1
                if not isinstance(inner, list) or "(" not in inner:
                    raise ValueError(f"h5dump: bad SIMPLE dataspace of {node.name}")
                close = inner.index(")")
                node.dims = tuple(int(x) for x in inner[inner.index("(") + 1:close]
                                  if x != ",")
            continue
        if i + 1 < len(body) and isinstance(body[i + 1], str) and body[i + 1].startswith('"'):
            child = H5Node(t, _unquote(body[i + 1]))
            i += 2
            if i < len(body) and isinstance(body[i], list):
                _parse_body(child, body[i])
                i += 1
            if t == "ATTRIBUTE":
                node.attrs[child.name] = child
            elif t == "HARDLINK":
                node.other.append(f"HARDLINK {child.name}")
            else:
                node.members[child.name] = child
            continue
        node.other.append(t)
        i += 1


def parse_h5dump(text):
    """The root H5Node of `h5dump -H` text."""
    top = _nest(TOKEN.findall(text))
    if len(top) < 3 or top[0] != "HDF5" or not isinstance(top[2], list):
        raise ValueError("h5dump: expected 'HDF5 \"FILE\" { ... }'")
    body = top[2]
    if len(body) < 3 or body[0] != "GROUP" or _unquote(body[1]) != "/":
        raise ValueError("h5dump: expected 'GROUP \"/\" { ... }'")
    root = H5Node("GROUP", "/")
    _parse_body(root, body[2])
    return root


def h5dump_header(path):
    p = subprocess.run([H5DUMP, "-H", path], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"h5dump -H {path}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def flatten(root):
    """{path: H5Node} of every object (the root is '/')."""
    out = {"/": root}

    def walk(node, prefix):
        for name, child in node.members.items():
            path = prefix + name
            out[path] = child
            walk(child, path + "/")

    walk(root, "/")
    return out


# ---- the comparison -------------------------------------------------------------------

def root_attr_values(path):
    """The root attributes' values (read with h5py): dimensions refer to the integers,
    choices to the strings."""
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in f.attrs}


def attr_value(path, obj, name):
    with h5py.File(path, "r") as f:
        v = f[obj].attrs[name]
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else v


def compare(path, schema, dump_text):
    """The list of differences between the file (its h5dump -H text) and the schema."""
    _, entries = schema
    root = parse_h5dump(dump_text)
    objects = flatten(root)
    values = root_attr_values(path)
    problems = []
    bound = {}

    for p, node in objects.items():
        if node.other:
            problems.append(f"{p}: unexpected in a header dump: {node.other}")

    def dim_value(tok, got, where):
        if tok.isdigit():
            return int(tok)
        factor, name = 1, tok
        if "*" in tok:
            f, name = tok.split("*", 1)
            factor = int(f)
        if name[0].islower():
            v = values.get(name)
            if v is None or not isinstance(v, (np.integer, int)) or \
                    np.ndim(v) != 0:
                problems.append(f"{where}: dimension {tok}: no root integer attribute {name}")
                return None
            return factor * int(v)
        if name not in bound:
            if got % factor:
                problems.append(f"{where}: dimension {tok}: {got} is not a multiple of {factor}")
                return None
            bound[name] = got // factor
        return factor * bound[name]

    def check_type_shape(e, node):
        where = e.where()
        st = node.schema_type()
        if st != e.type:
            problems.append(f"{where}: type {node.h5type}, schema says {e.type}")
            return
        if e.type == "string":
            size = node.type_detail.get("STRSIZE", "")
            if not size.isdigit():
                problems.append(f"{where}: string of size {size!r}, schema says fixed-length")
            if node.type_detail.get("CSET") != "H5T_CSET_ASCII":
                problems.append(f"{where}: string charset {node.type_detail.get('CSET')}, "
                                "schema says ASCII")
        if e.shape == "any":
            return
        if e.shape == "scalar":
            if node.space != "SCALAR":
                problems.append(f"{where}: dataspace {node.space} {node.dims}, schema says "
                                "scalar")
            return
        if node.space != "SIMPLE" or len(node.dims) != len(e.shape):
            problems.append(f"{where}: dataspace {node.space} {node.dims}, schema says "
                            f"({','.join(e.shape)})")
            return
        for k, (tok, got) in enumerate(zip(e.shape, node.dims)):
            want = dim_value(tok, got, where)
            if want is not None and want != got:
                problems.append(f"{where}: dimension {k} is {got}, schema says {tok} = {want}")

    # root attributes first: dimensions refer to them (upper-case names bind in order)
    ordered = [e for e in entries if e.kind == "attr" and e.path == "/"] + \
              [e for e in entries if not (e.kind == "attr" and e.path == "/")]
    for e in ordered:
        if e.kind == "attr":
            owner = objects.get(e.path)
            node = owner.attrs.get(e.attr) if owner is not None else None
            if node is None:
                if e.required:
                    problems.append(f"{e.where()}: required attribute missing")
                continue
            check_type_shape(e, node)
            if e.choices is not None and node.schema_type() == "string":
                v = attr_value(path, e.path, e.attr)
                if v not in e.choices:
                    problems.append(f"{e.where()}: value {v!r} not in {e.choices}")
            continue
        want_kind = "GROUP" if e.kind == "group" else "DATASET"
        if e.wildcard:
            group = e.path[:-2] or "/"
            g = objects.get(group)
            if g is None:
                continue  # the group's own entry says whether it is required
            if e.required and not g.members:
                problems.append(f"{e.path}: at least one {e.type} dataset required, none")
            for name, node in g.members.items():
                if node.kind != want_kind:
                    problems.append(f"{group.rstrip('/')}/{name}: a {node.kind}, schema says "
                                    f"{e.kind}")
                else:
                    check_type_shape(SchemaEntry(e.kind, f"{group.rstrip('/')}/{name}", None,
                                                 e.type, e.choices, e.shape, e.required,
                                                 e.meaning, e.line), node)
            continue
        node = objects.get(e.path)
        if node is None:
            if e.required:
                problems.append(f"{e.path}: required {e.kind} missing")
            continue
        if node.kind != want_kind:
            problems.append(f"{e.path}: a {node.kind}, schema says {e.kind}")
            continue
        if e.kind == "dataset":
            check_type_shape(e, node)

    # nothing present that the schema does not list
    listed_objects = {e.path for e in entries if e.kind != "attr" and not e.wildcard}
    wild_groups = {e.path[:-2] or "/" for e in entries if e.wildcard}
    listed_attrs = {(e.path, e.attr) for e in entries if e.kind == "attr"}
    for p, node in objects.items():
        if p != "/" and p not in listed_objects:
            parent = p.rsplit("/", 1)[0] or "/"
            if parent not in wild_groups:
                problems.append(f"{p}: not in the schema")
        for a in node.attrs:
            if (p, a) not in listed_attrs:
                problems.append(f"{p}@{a}: attribute not in the schema")
    return problems


# ---- the files -----------------------------------------------------------------------

def tool(tool_name, *args):
    p = T.run(tool_name, *args)
    if p.returncode != 0:
        raise AssertionError(f"{tool_name} {args}: exit {p.returncode}: {p.stderr}")
    return p


def make_outputs(d):
    """Real tool outputs of every kind a tool writes, in d: {name: (kind, path)}."""
    j = lambda n: os.path.join(d, n + ".h5")
    files = {}
    tool("amlfs-init", "--policy-only", "--out", j("policy"))
    files["policy"] = ("policy", j("policy"))
    tool("amlfs-init", "--policy-only", "--out", j("policy-cosine"), "--space", "cosine",
         "--init", "cosface", "--intervals", "4", "--sampling", "antithetic",
         "--shaping", "rank", "--seed", "7")
    files["policy-cosine"] = ("policy", j("policy-cosine"))
    tool("amlfs-sample", "--policy", j("policy"), "--epoch", 1, "--samples", 4,
         "--out", j("thetas"))
    files["thetas"] = ("thetas", j("thetas"))
    tool("amlfs-sample", "--policy", j("policy-cosine"), "--epoch", 1, "--samples", 2,
         "--out", j("thetas-cosine"))
    files["thetas-cosine"] = ("thetas", j("thetas-cosine"))
    evals = []
    for i in range(4):
        evals.append(os.path.join(d, f"eval-{i}.h5"))
        if i != 3:  # sample 3's eval is missing: the rewards record it
            T.write_eval(evals[-1], top1=0.3 + 0.1 * i)
    tool("amlfs-reward", "--thetas", j("thetas"), "--metric", "top1", "--out", j("rewards"),
         *evals)
    files["rewards"] = ("rewards", j("rewards"))
    tool("amlfs-update", "--policy", j("policy"), "--thetas", j("thetas"),
         "--rewards", j("rewards"), "--out", j("policy-2"))
    files["policy-2"] = ("policy", j("policy-2"))
    rng = np.random.default_rng(5)
    T.write_loss_input(j("in-logits"), logits=rng.standard_normal((6, 5)),
                       targets=[0, 1, 2, 3, 4, 0])
    T.write_loss_input(j("in-cosines"), cosines=rng.uniform(-1, 1, (3, 4)), scale=16.0,
                       targets=[3, 0, 1])
    tool("amlfs-loss", "--thetas", j("thetas"), "--index", 2, "--input", j("in-logits"),
         "--out", j("loss"))
    files["loss"] = ("loss-output", j("loss"))
    tool("amlfs-loss", "--thetas", j("thetas-cosine"), "--index", 1,
         "--input", j("in-cosines"), "--out", j("loss-cosine"))
    files["loss-cosine"] = ("loss-output", j("loss-cosine"))
    ckpts = [os.path.join(d, f"ckpt-{i}.h5") for i in range(4)]
    for i, c in enumerate(ckpts):
        T.write_checkpoint(c, fill=0.1 * i)
    tool("amlfs-broadcast", "--rewards", j("rewards"), "--out", j("start"), *ckpts)
    files["start"] = ("checkpoint", j("start"))
    with h5py.File(j("features"), "w") as f:  # amlfs-metric's plain inputs
        f["features"] = rng.standard_normal((20, 4)).astype(np.float32)
        f["pairs"] = rng.integers(0, 20, (30, 2))
        f["issame"] = rng.integers(0, 2, 30)
        f["probe"] = rng.standard_normal((6, 4))
        f["probe_ids"] = [0, 0, 1, 1, 2, 2]
        f["distractors"] = rng.standard_normal((50, 4)).astype(np.float32)
    tool("amlfs-metric", "verify", "--features", j("features"), "--out", j("metric-verify"))
    files["metric-verify"] = ("metric", j("metric-verify"))
    tool("amlfs-metric", "identify", "--probe", j("features"), "--distractors", j("features"),
         "--rank", 3, "--out", j("metric-identify"))
    files["metric-identify"] = ("metric", j("metric-identify"))
    # a face dataset, a face eval (verification, rank-1) and its embeddings
    tool("amlfs-synth", "face", "--out", os.path.join(d, "faces"), "--identities", 6,
         "--images-per-identity", 4, "--heldout", 4, "--probe-identities", 2,
         "--distractors", 5, "--folds", 2, "--pairs-per-fold", 3, "--size", "16x16")
    fd = os.path.join(d, "faces")
    tool("amlfs-prep", "face", "--train", os.path.join(fd, "train"), "--lfw-pairs",
         os.path.join(fd, "lfw", "pairs.txt"), "--lfw-dir", os.path.join(fd, "lfw"), "--probe",
         os.path.join(fd, "probe"), "--distractors", os.path.join(fd, "distractors"),
         "--size", "16x16", "--val-identities", 2, "--val-pairs", 20, "--out", j("face-data"))
    files["face-data"] = ("dataset", j("face-data"))
    tool("amlfs-init", "--model", "face-small", "--data", j("face-data"), "--out",
         j("face-start"))
    files["face-start"] = ("checkpoint", j("face-start"))
    tool("amlfs-eval", "--checkpoint", j("face-start"), "--data", j("face-data"), "--split",
         "test", "--out", j("face-eval"), "--features", j("face-features"))
    files["face-eval"] = ("eval", j("face-eval"))
    files["face-features"] = ("features", j("face-features"))
    return files


def make_inputs(d):
    """Files of the kinds users or future tools write, made with the helpers."""
    rng = np.random.default_rng(9)
    files = {}
    p = os.path.join(d, "eval.h5")
    T.write_eval(p)
    files["eval"] = ("eval", p)
    p = os.path.join(d, "eval-diverged.h5")
    T.write_eval(p, status="diverged", top1=float("nan"), top5=float("nan"),
                 loss=float("nan"), split="test")
    files["eval-diverged"] = ("eval", p)
    p = os.path.join(d, "dataset.h5")
    T.write_dataset(p)
    files["dataset"] = ("dataset", p)
    p = os.path.join(d, "dataset-clean.h5")
    T.write_dataset(p, n=(7, 5, 4), noise=False)
    files["dataset-clean"] = ("dataset", p)
    p = os.path.join(d, "loss-input.h5")
    T.write_loss_input(p, logits=rng.standard_normal((4, 3)), targets=[0, 1, 2, 1])
    files["loss-input"] = ("loss-input", p)
    p = os.path.join(d, "loss-input-cosines.h5")
    T.write_loss_input(p, cosines=rng.uniform(-1, 1, (4, 3)), scale=64.0,
                       targets=[2, 2, 0, 1])
    files["loss-input-cosines"] = ("loss-input", p)
    p = os.path.join(d, "checkpoint.h5")
    T.write_checkpoint(p, intervals=3)
    files["checkpoint"] = ("checkpoint", p)
    return files


@unittest.skipUnless(H5DUMP, "h5dump not found (make deps installs hdf5-tools)")
class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlfs-schemas-")
        cls.schemas = load_schemas()
        cls.outputs = make_outputs(cls.dir)
        cls.inputs = make_inputs(cls.dir)
        cls.files = dict(cls.outputs, **cls.inputs)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    # -- the schemas themselves --

    def test_every_kind_has_a_schema_and_a_real_file(self):
        self.assertEqual(set(self.schemas),
                         {"checkpoint", "dataset", "eval", "features", "loss-input",
                          "loss-output", "metric", "policy", "rewards", "thetas"})
        self.assertEqual({k for k, _ in self.files.values()}, set(self.schemas))
        for kind, (version, entries) in self.schemas.items():
            with self.subTest(kind=kind):
                self.assertGreaterEqual(version, 1)
                where = [e.where() for e in entries]
                self.assertEqual(len(where), len(set(where)), f"{kind}: an entry repeats")
                for name in ("schema", "schema_version", "amlfs_version"):
                    self.assertIn(f"/@{name}", where, f"{kind}: every file carries /@{name}")
                schema_attr = [e for e in entries if e.where() == "/@schema"][0]
                self.assertEqual(schema_attr.choices, [kind])
                # every group a member or wildcard sits in is listed
                groups = {e.path for e in entries if e.kind == "group"} | {"/"}
                for e in entries:
                    parent = (e.path[:-2] if e.wildcard else e.path)
                    if e.kind != "attr":
                        parent = parent.rsplit("/", 1)[0] or "/"
                    self.assertIn(parent, groups | {x.path for x in entries
                                                    if x.kind == "dataset"}, e.where())
                # lower-case dimensions name root integer attributes of the schema
                ints = {e.attr for e in entries
                        if e.kind == "attr" and e.path == "/" and e.type == "int64"}
                for e in entries:
                    if isinstance(e.shape, list):
                        for tok in e.shape:
                            name = tok.split("*")[-1]
                            if name[0].islower():
                                self.assertIn(name, ints, f"{kind}: {e.where()}: {tok}")

    def test_parsers_catch_differences(self):
        """The comparison is not vacuous: edited files show their differences."""
        policy = self.outputs["policy"][1]
        schema = self.schemas["policy"]
        cases = [
            ("f32-mu", lambda f: replace_dataset(f, "mu", f["mu"][()].astype(np.float32)),
             "/mu: type H5T_IEEE_F32LE"),
            ("no-sigma", lambda f: f.attrs.__delitem__("sigma"), "/@sigma: required"),
            ("extra", lambda f: f.create_dataset("extra", data=np.zeros(2)), "/extra: not"),
            ("extra-attr", lambda f: f["mu"].attrs.create("unit", 1.0), "/mu@unit"),
            ("short-mu", lambda f: replace_dataset(f, "mu", np.zeros(5)), "/mu: dimension 0"),
            ("banana", lambda f: f.attrs.__setitem__("space", np.bytes_("banana")),
             "/@space: value 'banana'"),
            ("vlen", lambda f: f.attrs.__setitem__("mode", "amlfs"), "/@mode: string of size"),
            ("array-sigma", lambda f: f.attrs.__setitem__("sigma", np.array([0.2, 0.3])),
             "/@sigma: dataspace SIMPLE"),
            ("group-mu", lambda f: (f.__delitem__("mu"), f.create_group("mu")),
             "/mu: a GROUP"),
            ("soft-link", lambda f: f.__setitem__("alias", h5py.SoftLink("/mu")),
             "/alias: not in the schema"),
            ("hard-link", lambda f: f.__setitem__("mu_copy", f["mu"]), "HARDLINK"),
        ]
        for name, edit, want in cases:
            with self.subTest(edit=name):
                p = edited(policy, self.path(f"control-{name}.h5"), edit)
                problems = compare(p, schema, h5dump_header(p))
                self.assertTrue(any(want in x for x in problems), f"{want!r} not in {problems}")
        # upper-case names bind once: /loss and /grad must agree on N
        loss = self.outputs["loss"][1]
        p = edited(loss, self.path("control-n.h5"),
                   lambda f: replace_dataset(f, "weight", np.zeros(7)))
        problems = compare(p, self.schemas["loss-output"], h5dump_header(p))
        self.assertTrue(any(x.startswith("/weight: dimension 0") for x in problems), problems)

    # -- h5dump -H of every kind against its schema --

    def check_matches(self, names):
        for name in names:
            kind, path = self.files[name]
            with self.subTest(file=name, kind=kind):
                text = h5dump_header(path)
                problems = compare(path, self.schemas[kind], text)
                self.assertEqual(problems, [], f"{name} ({kind}) differs from its schema:\n"
                                 + "\n".join(problems))
                if kind == "loss-input":
                    root = parse_h5dump(text)
                    has = [n for n in ("logits", "cosines") if n in root.members]
                    self.assertEqual(len(has), 1, "exactly one of /logits and /cosines")
                    if has == ["cosines"]:
                        self.assertIn("scale", root.members["cosines"].attrs)

    def test_tool_outputs_match_their_schemas(self):
        self.check_matches(sorted(self.outputs))

    def test_helper_files_match_their_schemas(self):
        self.check_matches(sorted(self.inputs))

    def test_amlfs_check_accepts_every_kind(self):
        for name, (kind, path) in sorted(self.files.items()):
            with self.subTest(file=name, kind=kind):
                p = T.run("amlfs-check", path)
                self.assertEqual(p.returncode, 0, f"amlfs-check {name}: exit {p.returncode}: "
                                 f"{p.stderr}")
                first = p.stdout.splitlines()[0] if p.stdout else ""
                self.assertRegex(first, rf"^{re.escape(path)}: {re.escape(kind)}\b", p.stdout)
                self.assertEqual(p.stderr.strip(), "")

    # -- amlfs-check against violations --

    def check_rejects(self, name, path, *mentions):
        with self.subTest(violation=name):
            p = T.run("amlfs-check", path)
            self.assertEqual(p.returncode, 2, f"{name}: amlfs-check exit {p.returncode}, want 2:"
                             f" {p.stdout} {p.stderr}")
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, f"{name}: want one stderr line, got {lines}")
            self.assertTrue(lines[0].startswith("amlfs-check: error: "), lines[0])
            self.assertIn(path, lines[0], f"{name}: the message names the file")
            self.assertNotIn("valid", p.stdout, f"{name}: stdout calls the file valid")
            for m in mentions:
                if isinstance(m, tuple):  # any of these
                    self.assertTrue(any(x in lines[0] for x in m),
                                    f"{name}: none of {m} in {lines[0]!r}")
                else:
                    self.assertIn(m, lines[0], f"{name}: the message names {m!r}")

    def test_amlfs_check_rejects_violations(self):
        policy = self.outputs["policy"][1]
        thetas = self.outputs["thetas"][1]
        e = lambda name, src, fn: edited(src, self.path(f"bad-{name}.h5"), fn)
        self.check_rejects("float32 /mu", e("f32", policy, lambda f: replace_dataset(
            f, "mu", f["mu"][()].astype(np.float32))), "/mu", "float32")
        self.check_rejects("missing required attribute", e("nosigma", policy,
                           lambda f: f.attrs.__delitem__("sigma")), "/@sigma")
        self.check_rejects("extra dataset", e("extra", policy,
                           lambda f: f.create_dataset("extra", data=np.zeros(3))), "/extra")
        self.check_rejects("string outside its choices", e("banana", policy,
                           lambda f: f.attrs.__setitem__("space", np.bytes_("banana"))),
                           "/@space", "banana")
        self.check_rejects("theta shape (samples, 4*intervals + 1)", e("wide", thetas,
                           lambda f: replace_dataset(f, "theta", np.zeros((4, 25)))), "/theta")
        self.check_rejects("theta shape (samples + 1, 4*intervals)", e("tall", thetas,
                           lambda f: replace_dataset(f, "theta", np.zeros((5, 24)))), "/theta")
        self.check_rejects("unknown kind", e("kind", policy,
                           lambda f: f.attrs.__setitem__("schema", np.bytes_("banana"))),
                           ("/@schema", "root attribute 'schema'"), "banana")
        self.check_rejects("no schema attribute", e("noschema", policy,
                           lambda f: f.attrs.__delitem__("schema")),
                           ("/@schema", "root attribute 'schema'"))
        text = self.path("bad-text.h5")
        with open(text, "w") as f:
            f.write("mu = 1 0 1 0\n")
        self.check_rejects("a text file", text)
        self.check_rejects("a missing file", self.path("bad-missing.h5"))
        # and a few more the validator must catch
        self.check_rejects("missing required dataset", e("noadamv", policy,
                           lambda f: f.__delitem__("adam_v")), "/adam_v")
        self.check_rejects("extra attribute on a dataset", e("muattr", policy,
                           lambda f: f["mu"].attrs.create("unit", 1.0)), "/mu@unit")
        self.check_rejects("int32 where int64", e("epoch32", policy,
                           lambda f: f.attrs.__setitem__("epoch", np.int32(1))), "/@epoch")
        self.check_rejects("a group where a dataset belongs", e("mugroup", policy,
                           lambda f: (f.__delitem__("mu"), f.create_group("mu"))), "/mu")
        self.check_rejects("upper-case dimension bound twice", e("n", self.outputs["loss"][1],
                           lambda f: replace_dataset(f, "weight", np.zeros(7))), "/weight")
        self.check_rejects("empty required wildcard group", e("noparams",
                           self.inputs["checkpoint"][1], lambda f: (
                               f.__delitem__("params"), f.create_group("params"))), "/params")
        self.check_rejects("nested object under a wildcard", e("nested",
                           self.inputs["checkpoint"][1],
                           lambda f: f.create_dataset("params/block/w", data=np.zeros(2,
                                                      np.float32))), "/params/block")
        self.check_rejects("newer schema_version", e("version", policy,
                           lambda f: f.attrs.__setitem__("schema_version", np.int64(3))),
                           "/@schema_version")
        self.check_rejects("loss-input with both inputs", e("both",
                           self.inputs["loss-input"][1], lambda f: f.create_dataset(
                               "cosines", data=np.zeros((4, 3), np.float32))),
                           "/logits", "/cosines")

    def test_amlfs_check_rejects_links_the_schema_does_not_list(self):
        """Objects the schema does not list are violations, whatever link names them."""
        policy = self.outputs["policy"][1]
        thetas = self.outputs["thetas"][1]
        links = [
            ("soft link", "alias", lambda f: f.__setitem__("alias", h5py.SoftLink("/mu"))),
            ("dangling soft link", "dangling",
             lambda f: f.__setitem__("dangling", h5py.SoftLink("/nothing"))),
            ("hard link", "mu_copy", lambda f: f.__setitem__("mu_copy", f["mu"])),
            ("external link", "ext",
             lambda f: f.__setitem__("ext", h5py.ExternalLink(thetas, "/theta"))),
        ]
        for name, link, edit in links:
            p = edited(policy, self.path(f"link-{link}.h5"), edit)
            self.check_rejects(name, p, f"/{link}")

    def test_validator_and_readers_agree_on_strings(self):
        """A variable-length UTF-8 string (what h5py writes for a Python str) is either
        valid and read by the tools, or invalid with one line naming the attribute;
        never 'valid' and then unreadable."""
        policy = self.outputs["policy"][1]
        cases = [
            ("policy", "last_update", edited(policy, self.path("vlen-last-update.h5"),
                                             lambda f: f.attrs.__setitem__("last_update",
                                                                           "init"))),
            ("policy", "space", edited(policy, self.path("vlen-space.h5"),
                                       lambda f: f.attrs.__setitem__("space", "prob"))),
            ("policy", "amlfs_version", edited(policy, self.path("vlen-version.h5"),
                                               lambda f: f.attrs.__setitem__("amlfs_version",
                                                                             "0.1.0"))),
            ("loss-input", "amlfs_version", edited(
                self.inputs["loss-input"][1], self.path("vlen-li-version.h5"),
                lambda f: f.attrs.__setitem__("amlfs_version", "mine 1.0"))),
            ("loss-input", "schema", edited(
                self.inputs["loss-input"][1], self.path("vlen-li-schema.h5"),
                lambda f: f.attrs.__setitem__("schema", "loss-input"))),
        ]
        thetas = self.outputs["thetas"][1]
        for kind, attr, path in cases:
            with self.subTest(kind=kind, attr=attr):
                p = T.run("amlfs-check", path)
                if kind == "policy":
                    use = T.run("amlfs-sample", "--policy", path, "--epoch", 1, "--samples", 2,
                                "--out", self.path("vlen-out.h5"))
                else:
                    use = T.run("amlfs-loss", "--thetas", thetas, "--index", 0,
                                "--input", path, "--out", self.path("vlen-out.h5"))
                if p.returncode == 0:
                    self.assertEqual(p.stderr.strip(), "", "amlfs-check: valid, yet an error")
                    self.assertEqual(use.returncode, 0,
                                     f"amlfs-check calls {kind} with a variable-length /@{attr}"
                                     f" valid, but the tools cannot read it: {use.stderr}")
                else:
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertNotIn("valid", p.stdout,
                                     f"amlfs-check printed 'valid', then failed: {p.stderr}")
                    self.assertIn(f"/@{attr}", p.stderr)
                    self.assertEqual(use.returncode, 2, use.stderr)

    # -- object times off, same content, same bytes --

    def test_same_content_same_bytes(self):
        """The outputs written a second (and more) later are byte-identical: no object
        times, nothing else that varies between runs."""
        second = tempfile.mkdtemp(prefix="amlfs-schemas-again-", dir=self.dir)
        # the first set was written in setUpClass; let the clock move past a second
        time.sleep(max(0.0, 1.1 - (time.time() - os.path.getmtime(
            self.outputs["start"][1]))))
        again = make_outputs(second)
        for name, (kind, path) in sorted(self.outputs.items()):
            with self.subTest(file=name):
                with open(path, "rb") as a, open(again[name][1], "rb") as b:
                    self.assertTrue(a.read() == b.read(),
                                    f"{name}: two writes of the same {kind} differ")

    def test_no_object_times(self):
        for name, (kind, path) in sorted(self.outputs.items()):
            with self.subTest(file=name):
                times = {}

                def note(name, obj):
                    times[name] = h5py.h5g.get_objinfo(obj.id).mtime

                with h5py.File(path, "r") as f:
                    note("/", f["/"])
                    f.visititems(lambda n, o: note("/" + n, o))
                self.assertEqual({k: v for k, v in times.items() if v}, {},
                                 f"{name}: objects with a modification time")
                text = h5dump_header(path)
                self.assertNotRegex(text, r"\b(19|20)\d\d-\d\d-\d\d|\d\d:\d\d:\d\d|Modified",
                                    f"{name}: h5dump shows a time")
                ls = subprocess.run(["h5ls", "-vr", path], capture_output=True, text=True) \
                    if shutil.which("h5ls") else None
                if ls is not None:
                    self.assertNotIn("Modified", ls.stdout, f"{name}: h5ls shows a time")


if __name__ == "__main__":
    unittest.main()
