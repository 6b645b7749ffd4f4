#!/usr/bin/env python3
"""PyTorch's side of kiln-bench-model: the same models, data, batch sizes and thread count.

Run by build/bin/kiln-bench-model (or by hand):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/peers/torch_model.py --json out.json
Debian's torch uses whatever libblas.so.3 resolves to; the OpenMP build of OpenBLAS is its fastest
set-up here. Prints one JSON document with the figures; measurements that need a clean process
(peak memory, time to first batch) run in a child process of this script.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from peer_data import FASHION_MNIST, load_split, write_json


def w1_model():
    # The seed's model; CrossEntropyLoss on logits is softmax + sparse categorical cross-entropy.
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(128, 10))


def train_epoch(model, optimizer, x, y, batch_size, max_steps=None):
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    steps = 0
    model.train()
    for begin in range(0, x.shape[0], batch_size):
        rows = order[begin:begin + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
        steps += 1
        if max_steps and steps >= max_steps:
            break
    return steps


def timed_epochs(model, x, y, batch_size, epochs):
    """Trains with Adam (Keras's defaults) for `epochs` epochs; returns each epoch's seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(model, optimizer, x, y, batch_size)
        seconds.append(time.perf_counter() - start)
    return seconds


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def child(args):
    """One workload in a fresh process: W1 (epochs, accuracy, peak RSS, first batch) or W2."""
    launched = float(args.launched)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x, y = load_split(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    result = {}
    if args.child == "w1":
        xt, yt = load_split(args.data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        model = w1_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        # Time to first batch: from the launch of the process to the end of the first step.
        train_epoch(model, optimizer, x, y, 64, max_steps=1)
        result["first_batch_s"] = time.time() - launched
        model = w1_model()
        result["epoch_s"] = timed_epochs(model, x, y, 64, args.epochs)
        result["test_accuracy"] = accuracy(model, xt, yt)
    else:  # w2: 784-1024-1024-10, batch 256
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                                    torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
        result["epoch_s"] = timed_epochs(model, x, y, 256, args.epochs)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


def run_child(workload, threads, epochs, data):
    command = [sys.executable, os.path.abspath(__file__), "--child", workload, "--threads", str(threads),
               "--epochs", str(epochs), "--data", data, "--launched", repr(time.time())]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def gemm_rate(m, k, n, threads, repeats=5):
    torch.set_num_threads(threads)
    a, b = torch.rand(m, k), torch.rand(k, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * m * k * n / best / 1e9


def scaling(x, y, threads):
    """Seconds per epoch against batch size and hidden width, from a part of an epoch."""
    torch.set_num_threads(threads)
    out = {"batch": [], "width": []}
    for batch in (16, 32, 64, 128, 256, 512, 1024):
        out["batch"].append({"batch_size": batch, "epoch_s": part_epoch(x, y, 128, batch)})
    for width in (64, 256, 1024, 4096):
        out["width"].append({"width": width, "epoch_s": part_epoch(x, y, width, 64)})
    return out


def part_epoch(x, y, width, batch):
    """Seconds per epoch from the median of three timed parts of an epoch, as kiln's side does."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    steps_per_epoch = (x.shape[0] + batch - 1) // batch
    # Enough steps for a steady figure, at most a whole epoch; scaled to a whole epoch.
    steps = min(steps_per_epoch, max(20, int(4000 / max(1, width // 64)) // batch * 8))
    train_epoch(model, optimizer, x, y, batch, max_steps=3)  # warm-up
    parts = []
    for _ in range(3):
        start = time.perf_counter()
        done = train_epoch(model, optimizer, x, y, batch, max_steps=steps)
        parts.append((time.perf_counter() - start) * steps_per_epoch / done)
    return median(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here (default: standard output)")
    parser.add_argument("--data", default=FASHION_MNIST)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and shapes")
    parser.add_argument("--child", choices=["w1", "w2"])
    parser.add_argument("--launched", default="0")
    parser.add_argument("--no-workloads", action="store_true",
                        help="skip W1 and W2 (kiln-bench-model runs them itself, alternating with kiln's)")
    args = parser.parse_args()
    if args.child:
        return child(args)

    quick = args.quick
    figures = {"torch_version": torch.__version__, "threads": args.threads,
               "blas": os.environ.get("LD_LIBRARY_PATH", "default libblas.so.3")}
    figures["gemm_gflops"] = {
        "w1_forward": max(gemm_rate(64, 784, 128, t) for t in (1, 2)),
        "w2_hidden": max(gemm_rate(256, 1024, 1024, t) for t in (1, 2)),
        "square_1024": max(gemm_rate(1024, 1024, 1024, t) for t in (1, 2)),
    }
    if not args.no_workloads:
        w1 = run_child("w1", args.threads, 3 if quick else args.epochs, args.data)
        figures["w1"] = {"epoch_s": median(w1["epoch_s"][1:]), "epochs_s": w1["epoch_s"],
                         "samples_per_s": 60000.0 / median(w1["epoch_s"][1:]), "test_accuracy": w1["test_accuracy"],
                         "peak_rss_mb": w1["peak_rss_mb"], "first_batch_s": w1["first_batch_s"]}
        w2 = {}
        for threads in (1, 2):
            run = run_child("w2", threads, 2, args.data)
            w2[f"threads_{threads}"] = {"epoch_s": run["epoch_s"][-1], "samples_per_s": 60000.0 / run["epoch_s"][-1]}
        figures["w2"] = w2
    x, y = load_split(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    figures["scaling"] = scaling(x, y, args.threads)
    write_json(figures, args.json, indent=1)


if __name__ == "__main__":
    main()
