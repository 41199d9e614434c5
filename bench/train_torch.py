#!/usr/bin/python3
"""bench/train_torch.py: the PyTorch side of bench/train, the same models and settings as
amlfs (tests/fixtures/torch_models.py): Debian's python3-torch, so /usr/bin/python3.

  speed     training throughput of one model on a synthetic batch, as build/rel/bench/train
            measures amlfs: small-cnn (batch 100, 1x28x28, lr 0.05) or resnet20 (batch 128,
            3x32x32, lr 0.1); SGD with momentum 0.9 and weight decay 5e-4, cross-entropy;
            WARMUP untimed steps, then the median images/s over WINDOWS windows of about
            SECONDS each; peak resident memory of the process (resource.getrusage), and
            its peak before the model was built. Run one model per process, so the peak
            is that model's.
  accuracy  small-cnn trained on the training split of an amlfs-prep dataset file as
            amlfs-train-epoch trains it: images normalised with the file's mean and std,
            PyTorch's default initialisation (weights and linear biases uniform in
            +-1/sqrt(fan_in)) drawn from the Philox stream of --seed as amlfs-init draws
            it, batch 100, SGD lr 0.05 with a per-iteration cosine schedule to 0 over the
            run (amlfs_lr_at, as CosineAnnealingLR stepped per batch),
            momentum 0.9, weight decay 5e-4 on every parameter, and by default the same
            order of the images as amlfs-train-epoch (sample 0 of each epoch, from the
            pure-Python Philox), so the two runs differ only by float32 rounding (--order
            shuffle and --init torch: PyTorch's own draws instead); then
            top-1 on the test split with the running batch-norm statistics.

Both take --device cpu (the default) or cuda[:N]. On a GPU, float32 stays float32 as in
amlfs (TF32 off for matmuls and cuDNN), cuDNN runs deterministic algorithms without
autotuning (benchmark off: amlfs picks its algorithms from cuDNN's heuristics, once,
among the deterministic ones), each timed window ends with torch.cuda.synchronize(), and
the JSON adds the CUDA caching allocator's peak (gpu_peak_allocated_mb, _reserved_mb).

Each writes its results as JSON (--json FILE) and a line on stdout.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import philox_ref  # noqa: E402
import torch_models  # noqa: E402

# model: batch, (channels, height, width), classes, base lr (DESIGN.md 2, defaults table)
CASES = {
    "small-cnn": (100, (1, 28, 28), 10, 0.05),
    "resnet20": (128, (3, 32, 32), 10, 0.1),
}
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
STREAM_DATA_ORDER = 2  # kernels/amlfs_rng.h


def eval_top1(model, x, y, batch):
    """Top-1 of model on (x, y) in eval mode (running statistics), batch by batch."""
    model.eval()
    hits = 0
    with torch.no_grad():
        for first in range(0, x.shape[0], batch):
            hits += (model(x[first:first + batch]).argmax(1) == y[first:first + batch]).sum().item()
    return hits / x.shape[0]

def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def setup_device(name):
    """torch.device for --device; on CUDA full float32 and deterministic cuDNN."""
    if name == "cpu":
        return torch.device("cpu")
    if not (name == "cuda" or name.startswith("cuda:")):
        sys.exit(f"train_torch.py: error: --device: '{name}', expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        sys.exit(f"train_torch.py: error: --device {name}: torch sees no CUDA device")
    device = torch.device("cuda:0" if name == "cuda" else name)  # the index, for the queries
    torch.cuda.set_device(device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return device


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_memory(device):
    """The caching allocator's peaks in MB (tensors, and what it holds from the driver)."""
    if device.type != "cuda":
        return {}
    return {"gpu_peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "gpu_peak_reserved_mb": torch.cuda.max_memory_reserved(device) / 2**20,
            "gpu": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def optimizer(model, lr):
    # torch.optim.SGD: dampening 0, weight decay on every parameter, as amlfs_sgd_step
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM,
                           weight_decay=WEIGHT_DECAY)


def speed(args):
    batch, shape, classes, lr = CASES[args.model]
    torch.set_num_threads(args.threads)
    device = setup_device(args.device)
    base_mb = peak_rss_mb()
    t0 = time.perf_counter()
    model = torch_models.build(args.model, shape[0], classes, shape[1]).to(device)
    model.train()
    opt = optimizer(model, lr)
    synchronize(device)
    create_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *shape, generator=gen).to(device)
    y = torch.randint(0, classes, (batch,), generator=gen).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()  # the host sees the loss each step, as amlfs's does

    step_s = first_s = 0.0
    for s in range(max(args.warmup, 1)):
        synchronize(device)
        t0 = time.perf_counter()
        loss = step()
        synchronize(device)
        step_s = time.perf_counter() - t0
        if s == 0:
            first_s = step_s
    steps = max(1, math.ceil(args.seconds / step_s)) if step_s > 0 else 1
    ips = []
    for _ in range(args.windows):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        synchronize(device)  # the window's queued work is in it
        ips.append(batch * steps / (time.perf_counter() - t0))
    if not math.isfinite(loss):
        sys.exit(f"train_torch.py: error: {args.model}: the loss became {loss}")
    med = sorted(ips)[len(ips) // 2]
    result = {
        "side": "pytorch", "model": args.model, "batch": batch, "image": list(shape),
        "classes": classes, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "images_per_s": med, "images_per_s_min": min(ips), "images_per_s_max": max(ips),
        "window_images_per_s": ips, "steps_per_window": steps,
        "step_ms": 1e3 * batch / med, "create_ms": 1e3 * create_s, "first_step_ms": 1e3 * first_s,
        "peak_mb": peak_rss_mb(), "base_mb": base_mb,
    }
    result.update(gpu_memory(device))
    on = (f"{device}" if device.type == "cuda" else f"{torch.get_num_threads()} threads")
    gpu_mb = (f", GPU peak {result['gpu_peak_allocated_mb']:.1f} MB allocated, "
              f"{result['gpu_peak_reserved_mb']:.1f} MB reserved" if device.type == "cuda" else "")
    print(f"pytorch {args.model}: {med:.1f} images/s ({min(ips):.1f} to {max(ips):.1f}), "
          f"{on}, peak {result['peak_mb']:.1f} MB (base {base_mb:.1f} MB){gpu_mb}")
    return result


def read_split(f, name, mean, std):
    """Normalised float32 images (N,C,H,W) and int64 labels of /name, computed as
    amlfs_make_batch does: pixel * (1 / (255 std)) + (-mean / std) in float32."""
    images = f[name]["images"][...]
    labels = f[name]["labels"][...].astype(np.int64)
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, -1, 1, 1)
    shift = (-mean / std).astype(np.float32).reshape(1, -1, 1, 1)
    return torch.from_numpy(images.astype(np.float32) * scale + shift), torch.from_numpy(labels)


def amlfs_order(n, seed, epoch, sample=0):
    """amlfs_epoch_order: Fisher-Yates driven by Philox stream (seed, epoch, sample,
    DATA_ORDER), draw k = n - 1 - i in [0, i] as amlfs_rng_below."""
    name = (seed, epoch, sample, STREAM_DATA_ORDER)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = min(int(philox_ref.uniform(name, n - 1 - i) * (i + 1)), i)
        order[i], order[j] = order[j], order[i]
    return torch.tensor(order, dtype=torch.int64)


def lr_at(base, epochs, t):
    """amlfs_lr_at's cosine schedule without warm-up: t is the progress in epochs."""
    t = min(max(t, 0.0), float(epochs))
    return base * (1.0 + math.cos(math.pi * t / epochs)) / 2.0


def accuracy(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = setup_device(args.device)
    with h5py.File(args.data, "r") as f:
        mean, std = f.attrs["mean"], f.attrs["std"]
        xtr, ytr = read_split(f, "train", mean, std)
        xte, yte = read_split(f, "test", mean, std)
        classes = int(f.attrs["classes"])
    batch, lr = args.batch, args.lr
    model = torch_models.build("small-cnn", xtr.shape[1], classes, xtr.shape[2])
    if args.init == "amlfs":  # else PyTorch's own draws, after torch.manual_seed(seed)
        torch_models.project_init(model, args.seed)
    model = model.to(device)
    xtr, ytr, xte, yte = xtr.to(device), ytr.to(device), xte.to(device), yte.to(device)
    opt = optimizer(model, lr)
    n = xtr.shape[0]
    batches = (n + batch - 1) // batch
    gen = torch.Generator().manual_seed(args.seed)
    t_start = time.perf_counter()
    epochs_log = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        if args.order == "amlfs":
            order = amlfs_order(n, args.seed, epoch)
        else:
            order = torch.randperm(n, generator=gen)
        order = order.to(device)
        synchronize(device)
        loss_sum, correct, t0 = 0.0, 0, time.perf_counter()
        for b in range(batches):
            idx = order[b * batch:(b + 1) * batch]
            for g in opt.param_groups:
                g["lr"] = lr_at(lr, args.epochs, (epoch - 1) + b / batches)
            logits = model(xtr[idx])
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == ytr[idx]).sum().item()
        synchronize(device)
        seconds = time.perf_counter() - t0
        epochs_log.append({"epoch": epoch, "train_loss": loss_sum / n, "train_top1": correct / n,
                           "seconds": seconds, "images_per_s": n / seconds})
        print(f"pytorch small-cnn epoch {epoch}: train loss {loss_sum / n:.4f}, "
              f"top-1 {correct / n:.4f}, {n / seconds:.0f} images/s", flush=True)
    train_s = time.perf_counter() - t_start
    top1 = eval_top1(model, xte, yte, batch)
    print(f"pytorch small-cnn: test top-1 {top1:.4f} ({xte.shape[0]} images) after "
          f"{args.epochs} epochs on {n} images, {train_s:.1f} s")
    return {"side": "pytorch", "model": "small-cnn", "epochs": args.epochs, "batch": batch,
            "lr": lr, "threads": torch.get_num_threads(), "seed": args.seed, "order": args.order,
            "init": args.init,
            "train_images": n, "test_images": int(xte.shape[0]), "test_top1": top1,
            "train_seconds": train_s, "per_epoch": epochs_log, "peak_mb": peak_rss_mb(),
            "device": str(device), **gpu_memory(device)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed", help="throughput of one model on a synthetic batch")
    sp.add_argument("--model", choices=sorted(CASES), required=True)
    sp.add_argument("--warmup", type=int, default=3)
    sp.add_argument("--windows", type=int, default=5)
    sp.add_argument("--seconds", type=float, default=1.0)
    ac = sub.add_parser("accuracy", help="small-cnn on an amlfs-prep dataset file")
    ac.add_argument("--data", required=True, help="the dataset file (amlfs-prep)")
    ac.add_argument("--epochs", type=int, default=3)
    ac.add_argument("--batch", type=int, default=100)
    ac.add_argument("--lr", type=float, default=0.05)
    ac.add_argument("--seed", type=int, default=1, help="as amlfs-init --seed")
    ac.add_argument("--order", choices=("amlfs", "shuffle"), default="amlfs",
                    help="amlfs: amlfs-train-epoch's order of each epoch (sample 0); "
                         "shuffle: torch.randperm")
    ac.add_argument("--init", choices=("amlfs", "torch"), default="amlfs",
                    help="amlfs: amlfs-init's draws of PyTorch's default bounds; "
                         "torch: PyTorch's own default initialisation")
    for p in (sp, ac):
        p.add_argument("--threads", type=int, default=torch.get_num_threads())
        p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
        p.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    result = speed(args) if args.cmd == "speed" else accuracy(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
