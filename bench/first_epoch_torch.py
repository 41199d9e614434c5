#!/usr/bin/python3
"""bench/first_epoch_torch.py: the PyTorch reference of bench/first-epoch: one epoch of
small-cnn as plain PyTorch 1.13 trains it, on the training split of an amlfs-prep dataset
file, then top-1 on its validation split. Debian's python3-torch, so /usr/bin/python3.

The reference is PyTorch's own defaults, not amlfs's choices replayed: the model of
tests/fixtures/torch_models.py built after torch.manual_seed(SEED) with PyTorch's default
initialisation (convolution and linear weights kaiming_uniform_(a=sqrt(5)), i.e. uniform
in +-1/sqrt(fan_in), linear biases uniform in +-1/sqrt(fan_in), batch norm 1 and 0);
images normalised with the file's mean and std (as amlfs_make_batch); SGD lr 0.05,
momentum 0.9, weight decay 5e-4, batch 100; CosineAnnealingLR stepped after every batch
with T_max the run's batches (--epochs E, default 1); each epoch's order torch.randperm
from the seeded default generator; top-1 on /val in eval mode (running statistics).

Writes its result as JSON (--json FILE) and a line on stdout."""
import argparse
import json
import os
import sys
import time

import h5py
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_torch  # noqa: E402  (read_split, optimizer, eval_top1; torch_models through it)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the dataset file (amlfs-prep)")
    ap.add_argument("--seed", type=int, default=1, help="torch.manual_seed")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with h5py.File(args.data, "r") as f:
        mean, std = f.attrs["mean"], f.attrs["std"]
        xtr, ytr = train_torch.read_split(f, "train", mean, std)
        xva, yva = train_torch.read_split(f, "val", mean, std)
        classes = int(f.attrs["classes"])
    model = train_torch.torch_models.build("small-cnn", xtr.shape[1], classes, xtr.shape[2])
    opt = train_torch.optimizer(model, args.lr)
    n, batch = xtr.shape[0], args.batch
    batches = (n + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=batches * args.epochs)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(n)
        loss_sum, correct = 0.0, 0
        for b in range(batches):
            idx = order[b * batch:(b + 1) * batch]
            logits = model(xtr[idx])
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == ytr[idx]).sum().item()
    train_s = time.perf_counter() - t0
    top1 = train_torch.eval_top1(model, xva, yva, batch)
    print(f"pytorch small-cnn seed {args.seed}: val top-1 {top1:.4f} ({xva.shape[0]} images) "
          f"after {args.epochs} epoch(s) on {n} images; last epoch's train loss "
          f"{loss_sum / n:.4f}, top-1 {correct / n:.4f}; {train_s:.1f} s")
    result = {"side": "pytorch", "model": "small-cnn", "init": "pytorch-default",
              "seed": args.seed, "epochs": args.epochs, "batch": batch, "lr": args.lr,
              "train_images": n, "val_images": int(xva.shape[0]), "val_top1": top1,
              "train_loss": loss_sum / n, "train_top1": correct / n,
              "train_seconds": train_s, "threads": torch.get_num_threads(),
              "torch": torch.__version__}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
