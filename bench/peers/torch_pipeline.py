#!/usr/bin/python3
"""torch_pipeline.py — the PyTorch peer of kiln-bench-pipeline: the same two input pipelines and
the same model, with PyTorch's DataLoader at 0, 1 and 2 worker processes.

The work, identical to bench/pipeline/kiln_bench_pipeline.cpp:
  model  Flatten, Linear 784-128, ReLU, Dropout 0.2, Linear 128-10; cross-entropy on the logits
         (the same loss as Keras's softmax + sparse categorical cross-entropy); Adam, lr 1e-3,
         eps 1e-7 (Keras's); batch 64; one epoch of Fashion-MNIST's 60,000 training images,
         in file order (no shuffling, so both frameworks see the same batches).
  io     a source that serves batch i of the training set after waiting 2 ms, one read at a time
         (a lock shared by the worker processes: a slow disk serves one request at a time).
  io_balanced  the same source with the wait kiln-bench-pipeline chose (--io-balanced-wait), so
         that preparation alone takes about as long as training alone.
  shared a shuffled DataLoader of the training set (no workers) into the model: one epoch, as a
         user trains; kiln-bench-pipeline runs it beside a busy process and alone on one thread.
  cpu    per image: mirror left-right, brighten by 0.1 clamped to [0, 1], 3x3 box blur with zero
         padding (avg_pool2d, count_include_pad: always divided by 9); DataLoader batches of 64.
For each case it times preparation alone (iterating the DataLoader without training), training
alone (on batches made beforehand) and the epoch, per worker count; the median of --repeats runs.

Run it with Debian's python3-torch and the OpenMP build of OpenBLAS:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \
      bench/peers/torch_pipeline.py [--json PATH]
Progress goes to stderr; the figures, as JSON, to PATH or to stdout.
"""

import argparse
import math
import multiprocessing
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from peer_data import FASHION_MNIST, dense_classifier, load_split, loaded_blas, train_epoch, write_json

BATCH_SIZE = 64
IO_WAIT_SECONDS = 0.002
WORKER_COUNTS = (0, 1, 2)


# ---- data -------------------------------------------------------------------------------------

def load_training_set(data_dir):
    return load_split(data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")


class SlowDiskBatches(Dataset):
    """Cases io and io_balanced: batch i of the training set, served after a wait, one read at a time."""

    def __init__(self, x, y, disk_lock, wait_seconds):
        self.x, self.y, self.disk_lock, self.wait_seconds = x, y, disk_lock, wait_seconds

    def __len__(self):
        return math.ceil(len(self.x) / BATCH_SIZE)

    def __getitem__(self, index):
        with self.disk_lock:  # shared by every worker process: the disk is serial
            time.sleep(self.wait_seconds)
        begin = index * BATCH_SIZE
        return self.x[begin:begin + BATCH_SIZE], self.y[begin:begin + BATCH_SIZE]


def augment(image):
    """Case cpu's per-image work: image [28, 28] -> [28, 28]."""
    image = torch.flip(image, dims=[1])
    image = (image + 0.1).clamp_(0.0, 1.0)
    return F.avg_pool2d(image[None, None], 3, stride=1, padding=1, count_include_pad=True)[0, 0]


class AugmentedImages(Dataset):
    """Case cpu: image i of the training set, augmented; the DataLoader batches them."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return augment(self.x[index]), self.y[index]


class Samples(Dataset):
    """Case shared: sample i of the training set."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def make_loader(case, x, y, workers, disk_lock, io_balanced_wait=None):
    if case == "io":
        return DataLoader(SlowDiskBatches(x, y, disk_lock, IO_WAIT_SECONDS), batch_size=None, shuffle=False,
                          num_workers=workers)
    if case == "io_balanced":
        return DataLoader(SlowDiskBatches(x, y, disk_lock, io_balanced_wait), batch_size=None, shuffle=False,
                          num_workers=workers)
    return DataLoader(AugmentedImages(x, y), batch_size=BATCH_SIZE, shuffle=False, num_workers=workers)


# ---- measuring ---------------------------------------------------------------------------------

def train(batches):
    """One epoch over `batches` on a fresh model; returns the seconds it took."""
    return train_epoch(*dense_classifier(784, 10), batches)


def prepare(loader):
    """Iterates the loader without training; returns the seconds it took."""
    start = time.perf_counter()
    for x, _ in loader:
        x.data_ptr()
    return time.perf_counter() - start


def median_of(repeats, measure):
    return statistics.median(measure() for _ in range(repeats))


def hidden_share(prep_s, train_s, epoch_s):
    """1 when the smaller stage is fully hidden behind the larger one, 0 when nothing overlaps."""
    return (prep_s + train_s - epoch_s) / min(prep_s, train_s)


def run_shared(x, y, repeats, log):
    """One epoch of shuffled batches: the time a user waits for it, whatever else runs."""
    epoch_s = median_of(repeats, lambda: train(DataLoader(Samples(x, y), batch_size=BATCH_SIZE, shuffle=True)))
    log(f"shared: epoch {epoch_s:.3f} s on {torch.get_num_threads()} threads")
    return {"epoch_s": epoch_s}


def run_case(case, x, y, repeats, slow_repeats, log, io_balanced_wait=None):
    if case == "shared":
        return run_shared(x, y, repeats, log)
    disk_lock = multiprocessing.Lock()
    loader = lambda workers: make_loader(case, x, y, workers, disk_lock, io_balanced_wait)
    batches = list(loader(0))  # made beforehand, for training alone
    train_s = median_of(repeats, lambda: train(batches))
    log(f"{case}: training alone {train_s:.3f} s")
    rows = []
    for workers in WORKER_COUNTS:
        # Worker processes are slow here (seconds per run): fewer repeats for them.
        runs = repeats if workers == 0 else slow_repeats
        prep_s = median_of(runs, lambda: prepare(loader(workers)))
        epoch_s = median_of(runs, lambda: train(loader(workers)))
        rows.append({"workers": workers, "repeats": runs, "prep_s": prep_s, "epoch_s": epoch_s})
        log(f"{case}: workers {workers}: preparation {prep_s:.3f} s, epoch {epoch_s:.3f} s ({runs} runs)")
    prep_s = rows[0]["prep_s"]  # the preparation's own work: no workers, nothing else running
    for row in rows:
        row["hidden_share"] = hidden_share(prep_s, train_s, row["epoch_s"])
    best = min(rows, key=lambda row: row["epoch_s"])
    return {"prep_s": prep_s, "train_s": train_s, "workers": rows,
            "best": {"workers": best["workers"], "epoch_s": best["epoch_s"]}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures here (default: stdout)")
    parser.add_argument("--data", metavar="DIR", default=FASHION_MNIST)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is kept")
    parser.add_argument("--worker-repeats", type=int, default=None,
                        help="runs for the configurations with worker processes (default: --repeats)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the training")
    parser.add_argument("--cases", default="io,cpu", help="which cases to run, comma-separated (io, cpu, io_balanced, shared)")
    parser.add_argument("--io-balanced-wait", type=float, default=None, metavar="SECONDS",
                        help="case io_balanced's wait per batch")
    arguments = parser.parse_args()
    worker_repeats = arguments.worker_repeats or arguments.repeats

    torch.set_num_threads(arguments.threads)

    def log(message):
        print("torch_pipeline: " + message, file=sys.stderr, flush=True)

    x, y = load_training_set(arguments.data)
    torch.tensor([[1.0]]) @ torch.tensor([[1.0]])  # maps the BLAS library before it is listed
    result = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": loaded_blas(),
        "repeats": arguments.repeats,
        "worker_repeats": worker_repeats,
    }
    for case in arguments.cases.split(","):
        result[case] = run_case(case, x, y, arguments.repeats, worker_repeats, log, arguments.io_balanced_wait)

    write_json(result, arguments.json, indent=2)


if __name__ == "__main__":
    main()
