"""Streamed splits (amlfs-train-epoch and amlfs-eval --read stream): the images stay in
the dataset file and each batch's rows are read as it is needed, the next batch's by a
thread while the current one trains. The batches must be those of the split read whole:
the checkpoints and eval files of --read memory and --read stream are compared byte for
byte, on files whose images are contiguous, chunked across batch boundaries, and plain
(no mean/std: the moments are then summed from the file in blocks)."""
import filecmp
import os
import unittest

import h5py
import numpy as np

from amlfs_test import ToolTest, run, write_dataset


def rechunk(src, dst, chunk_rows, drop_moments=False):
    """A copy of dataset file src whose images are chunked by chunk_rows images, with
    Fletcher32 (as the tools write), optionally without mean/std and schema (plain)."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for k, v in a.attrs.items():
            if drop_moments and k in ("mean", "std", "schema", "schema_version",
                                      "amlfs_version"):
                continue
            b.attrs[k] = v
        for split in ("train", "val", "test"):
            im = a[split + "/images"][...]
            b.create_dataset(split + "/images", data=im, fletcher32=True,
                             chunks=(chunk_rows,) + im.shape[1:])
            b[split + "/labels"] = a[split + "/labels"][...]


class StreamTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.data = self.path("data.h5")
        write_dataset(self.data, n=(130, 45, 20), noise=False)
        self.ok("amlfs-init", "--policy-only", "--out", self.path("policy.h5"))
        self.ok("amlfs-sample", "--policy", self.path("policy.h5"), "--epoch", 1, "--samples",
                2, "--out", self.path("thetas.h5"))

    def start(self, data, augment="crop-flip", name="start.h5"):
        out = self.path(name)
        self.ok("amlfs-init", "--model", "small-cnn", "--data", data, "--batch", 32,
                "--augment", augment, "--out", out)
        return out

    def train(self, start, data, read, name, threads=2):
        out = self.path(name)
        self.ok("amlfs-train-epoch", "--checkpoint", start, "--thetas", self.path("thetas.h5"),
                "--index", 1, "--data", data, "--out", out, "--threads", threads,
                "--read", read)
        return out

    def evaluate(self, ckpt, data, read, name):
        out = self.path(name)
        self.ok("amlfs-eval", "--checkpoint", ckpt, "--data", data, "--split", "val",
                "--out", out, "--read", read)
        return out

    def same_both_ways(self, data, augment="crop-flip"):
        start = self.start(data, augment)
        a = self.train(start, data, "memory", "mem.h5")
        b = self.train(start, data, "stream", "str.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), f"{data}: the streamed epoch differs")
        ea = self.evaluate(a, data, "memory", "eval-mem.h5")
        eb = self.evaluate(a, data, "stream", "eval-str.h5")
        self.assertTrue(filecmp.cmp(ea, eb, shallow=False), f"{data}: the streamed eval differs")
        return a

    def test_contiguous_images(self):
        # 130 images, batch 32: four full batches and one of 2
        c = self.same_both_ways(self.data)
        with h5py.File(c, "r") as f:
            self.assertEqual(int(f.attrs["optim_steps"]), 5)

    def test_chunks_across_batches(self):
        # chunks of 7 images: every batch's sorted rows fall in runs that cross chunks
        d = self.path("chunked.h5")
        rechunk(self.data, d, 7)
        self.same_both_ways(d, augment="none")

    def test_plain_file_moments_summed_in_blocks(self):
        d = self.path("plain.h5")
        rechunk(self.data, d, 11, drop_moments=True)
        with h5py.File(d, "r") as f:
            self.assertNotIn("mean", f.attrs)
        self.same_both_ways(d)

    def test_damaged_chunk_is_named(self):
        d = self.path("damaged.h5")
        rechunk(self.data, d, 10)
        with h5py.File(d, "r") as f:
            ds = f["train/images"]
            off = ds.id.get_chunk_info(3).byte_offset
        with open(d, "r+b") as fh:
            fh.seek(off + 100)
            fh.write(b"\xff" * 16)
        start = self.start(self.data, "none")
        self.fails(1, "amlfs-train-epoch", "--checkpoint", start, "--thetas",
                   self.path("thetas.h5"), "--index", 0, "--data", d, "--out",
                   self.path("x.h5"), "--read", "stream", mentions=[d, "images"])
        self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_bad_read_mode(self):
        start = self.start(self.data)
        self.fails(2, "amlfs-train-epoch", "--checkpoint", start, "--thetas",
                   self.path("thetas.h5"), "--index", 0, "--data", self.data, "--out",
                   self.path("x.h5"), "--read", "mmap", mentions=["--read"])


if __name__ == "__main__":
    unittest.main()
