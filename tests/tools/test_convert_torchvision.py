"""workflow/amlfs-convert-torchvision: a random torchvision ResNet-50 (torchvision's own
resnet50() when python3-torchvision is installed, else the same layout built in
tests/fixtures/torch_models.py with an fc), its batch-norm weights, biases and running
statistics drawn away from 1/0 so that every tensor matters, saved with torch.save, put
into an amlfs-init --model resnet50 checkpoint. Checked: the checkpoint validates, every
converted tensor equals the .pth's, BNNeck and the head are the start's, the momentum
buffers are 0; amlfs-eval's embeddings (inference mode, --features) equal PyTorch's
forward of the same weights to float32 rounding (|d| <= 1e-4 |want| + 2e-5 max|want|
per element, test_model.c's tolerance); and the refusals (a key of another model, a
shape mismatch, a missing tensor, a non-resnet50 start, a NaN) with exit 2, one line,
nothing written. Run with /usr/bin/python3; AMLFS_BIN selects the build."""
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np
import torch

import amlfs_test as T
from amlfs_test import ToolTest, attr, must, read
import torch_models  # tests/fixtures (amlfs_test puts it on the path)

try:
    import torchvision
except ImportError:
    torchvision = None

FX = None
H, W, CLASSES = 64, 32, 6


def torchvision_state_dict(seed=3):
    torch.manual_seed(seed)
    if torchvision is not None:
        model = torchvision.models.resnet50()
    else:
        model = torch_models.ResNet50(3, 1000)
        del model.bnneck, model.head
        model.fc = torch.nn.Linear(2048, 1000)
    sd = model.state_dict()
    g = torch.Generator().manual_seed(seed)
    for k, v in sd.items():  # batch norm away from its initial values
        if v.dim() != 1 or k.startswith("fc."):
            continue
        if k.endswith("running_var"):
            v.copy_(0.5 + 1.5 * torch.rand(v.shape, generator=g))
        elif k.endswith("running_mean") or k.endswith(".bias"):
            v.copy_(0.1 * torch.randn(v.shape, generator=g))
        elif k.endswith(".weight"):
            v.copy_(0.5 + torch.rand(v.shape, generator=g))
    return sd


def write_people(path, n=6):
    rng = np.random.default_rng(4)
    with h5py.File(path, "w") as f:
        T.common_attrs(f, "dataset")
        f.attrs["name"] = np.bytes_("people")
        for k, v in (("classes", CLASSES), ("channels", 3), ("height", H), ("width", W)):
            f.attrs[k] = np.int64(v)
        f.attrs["mean"] = np.array([0.485, 0.456, 0.406])
        f.attrs["std"] = np.array([0.229, 0.224, 0.225])
        f.attrs["noise_ratio"] = np.float64(0.0)
        f.attrs["noise_kind"] = np.bytes_("none")
        f.attrs["seed"] = np.int64(1)
        for split in ("train", "val", "test"):
            f[split + "/images"] = rng.integers(0, 256, (n, 3, H, W), dtype=np.uint8)
            f[split + "/labels"] = np.arange(n, dtype=np.int32) % CLASSES
            if split == "train":
                continue
            # face evaluation needs pairs to run (of no consequence here)
            f[split + "/pairs"] = np.tile(np.array([[0, 1]], np.int32), (20, 1))
            f[split + "/issame"] = (np.arange(20) % 2).astype(np.uint8)


class Fixtures:
    def __init__(self, d):
        self.dir = d
        self.sd = torchvision_state_dict()
        torch.save(self.sd, self.p("resnet50.pth"))
        write_people(self.p("people.h5"))
        must("amlfs-init", "--model", "resnet50", "--data", self.p("people.h5"), "--batch", 6,
             "--seed", 5, "--out", self.p("start.h5"))
        must("amlfs-convert-torchvision", "--pth", self.p("resnet50.pth"), "--start",
             self.p("start.h5"), "--out", self.p("init.h5"))

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-convert-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


class Convert(ToolTest):
    def test_tensors(self):
        c = FX.p("init.h5")
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "model"), "resnet50")
        n = 0
        with h5py.File(c, "r") as f, h5py.File(FX.p("start.h5"), "r") as s:
            for k, v in FX.sd.items():
                if k.startswith("fc.") or k.endswith("num_batches_tracked"):
                    continue
                group = "buffers" if "running" in k else "params"
                np.testing.assert_array_equal(f[group][k][...], v.numpy(), err_msg=k)
                if group == "params":
                    self.assertEqual(np.abs(f["optim"][k][...]).max(), 0, k)
                n += 1
            for k in ("bnneck.weight", "bnneck.bias", "head.weight"):
                np.testing.assert_array_equal(f["params"][k][...], s["params"][k][...])
            for k in ("bnneck.running_mean", "bnneck.running_var"):
                np.testing.assert_array_equal(f["buffers"][k][...], s["buffers"][k][...])
            self.assertNotIn("fc.weight", f["params"])
        self.assertEqual(n, 53 + 53 * 4)  # 53 convolutions, 53 batch norms of 4 tensors

    def test_embeddings_equal_pytorch(self):
        feats = self.path("f.h5")
        self.ok("amlfs-eval", "--checkpoint", FX.p("init.h5"), "--data", FX.p("people.h5"),
                "--split", "val", "--task", "face", "--out", self.path("e.h5"), "--features",
                feats, "--threads", 2)
        got = read(feats, "features")
        model = torch_models.ResNet50(3, CLASSES)
        state = {k: v for k, v in FX.sd.items() if not k.startswith("fc.")}
        with h5py.File(FX.p("start.h5"), "r") as s:
            for k in ("bnneck.weight", "bnneck.bias", "head.weight"):
                state[k] = torch.tensor(s["params"][k][...])
            for k in ("bnneck.running_mean", "bnneck.running_var"):
                state[k] = torch.tensor(s["buffers"][k][...])
        missing, unexpected = model.load_state_dict(state, strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(all(k.endswith("num_batches_tracked") for k in missing), missing)
        model.eval()
        with h5py.File(FX.p("people.h5"), "r") as d:
            img = d["val/images"][...].astype(np.float64) / 255.0
            mean, std = d.attrs["mean"], d.attrs["std"]
        x = ((img - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)
        with torch.no_grad():
            want = model.embed(torch.tensor(x)).double().numpy()
        self.assertEqual(got.shape, want.shape)
        tol = 1e-4 * np.abs(want) + 2e-5 * np.abs(want).max()
        worst = (np.abs(got - want) / tol).max()
        print(f"\n  embeddings {got.shape}: worst error / tolerance {worst:.3g}", end=" ")
        self.assertLessEqual(worst, 1.0, f"worst error / tolerance {worst:.3g}")
        # and not trivially: the features differ between images and from the start's
        self.assertGreater(np.abs(want[0] - want[1]).max(), 10 * tol.max())


class BadInput(ToolTest):
    def refuse(self, sd, start=None, mentions=None):
        pth, out = self.path("bad.pth"), self.path("out.h5")
        torch.save(sd, pth)
        self.fails(2, "amlfs-convert-torchvision", "--pth", pth, "--start",
                   start or FX.p("start.h5"), "--out", out, mentions=mentions)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".amlfs-convert")], [])

    def test_unknown_key(self):
        sd = dict(FX.sd)
        sd["layer5.0.conv1.weight"] = torch.zeros(1)
        self.refuse(sd, mentions=["layer5.0.conv1.weight"])

    def test_shape(self):
        sd = dict(FX.sd)
        sd["conv1.weight"] = torch.zeros(64, 1, 7, 7)
        self.refuse(sd, mentions=["conv1.weight", "(64, 3, 7, 7)"])

    def test_missing(self):
        sd = {k: v for k, v in FX.sd.items() if k != "layer3.2.bn2.running_var"}
        self.refuse(sd, mentions=["layer3.2.bn2.running_var"])

    def test_nan(self):
        sd = dict(FX.sd)
        w = sd["layer2.0.conv2.weight"].clone()
        w[0, 0, 0, 0] = float("nan")
        sd["layer2.0.conv2.weight"] = w
        self.refuse(sd, mentions=["layer2.0.conv2.weight", "non-finite"])

    def test_not_resnet50(self):
        must("amlfs-init", "--model", "reid-small", "--data", FX.p("people.h5"), "--out",
             self.path("small.h5"))
        self.refuse(FX.sd, start=self.path("small.h5"), mentions=["reid-small"])

    def test_not_a_pth(self):
        bad, out = self.path("x.pth"), self.path("out.h5")
        with open(bad, "w") as f:
            f.write("not a pickle")
        self.fails(2, "amlfs-convert-torchvision", "--pth", bad, "--start", FX.p("start.h5"),
                   "--out", out, mentions=["x.pth"])
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
