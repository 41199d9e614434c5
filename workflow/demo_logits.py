#!/usr/bin/python3
"""demo_logits.py SRC OUT: a loss-input file from real Fashion-MNIST: the first 2,000
test images scored by a nearest-class-mean classifier of the training pixels (logits =
-squared distance / 100, a temperature that keeps them in a sensible range)."""
import gzip
import struct
import sys

import h5py
import numpy as np


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">i", data[:4])
    dims = struct.unpack(">" + "i" * (magic & 0xFF), data[4:4 + 4 * (magic & 0xFF)])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


src, out = sys.argv[1], sys.argv[2]
xtr = idx(f"{src}/train-images-idx3-ubyte.gz").reshape(60000, -1) / 255.0
ytr = idx(f"{src}/train-labels-idx1-ubyte.gz").astype(np.int32)
xte = idx(f"{src}/t10k-images-idx3-ubyte.gz").reshape(10000, -1)[:2000] / 255.0
yte = idx(f"{src}/t10k-labels-idx1-ubyte.gz").astype(np.int32)[:2000]
means = np.stack([xtr[ytr == c].mean(0) for c in range(10)])
d2 = ((xte[:, None, :] - means[None]) ** 2).sum(2)
logits = (-d2 / 100.0).astype(np.float32)
with h5py.File(out, "w") as f:
    f.attrs["schema"] = np.bytes_("loss-input")
    f.attrs["schema_version"] = np.int64(1)
    f["logits"] = logits
    f["targets"] = yte
acc = (logits.argmax(1) == yte).mean()
print(f"demo:   nearest-class-mean logits for 2,000 test images (top-1 {acc:.3f}): {out}")
