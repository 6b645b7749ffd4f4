#!/usr/bin/env python3
"""PyTorch's side of kiln-bench-convnet: Keras's MNIST convnet on Fashion-MNIST, batch 128, Adam.

Run by build/bin/kiln-bench-convnet (or by hand):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/peers/torch_convnet.py --json out.json
The same model in PyTorch's own layout (NCHW): Conv2d 32 3x3, ReLU, MaxPool 2, Conv2d 64 3x3, ReLU,
MaxPool 2, Flatten, Dropout 0.5, Linear 10 (CrossEntropyLoss on logits is softmax + sparse
categorical cross-entropy). As on kiln's side, the images stay the uint8 bytes the file holds and
each batch is made float32 when taken. An epoch's time is taken as kiln's side takes it: parts of an epoch,
after a warm-up, scaled to the whole epoch, the median of --rounds.

With --accuracy-epochs N it measures accuracy instead (test_accuracy_by_epoch), as docs/convnets.md cites:
    /usr/bin/python3 bench/peers/torch_convnet.py --accuracy-epochs 5 --seed 1
"""
import argparse
import resource
import time

import torch
from torch import nn

from peer_data import FASHION_MNIST, load_split, write_json

BATCH = 128


def convnet():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))


def train_steps(model, optimizer, x, y, order, first_step, steps):
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for step in range(first_step, first_step + steps):
        rows = order[(step * BATCH) % x.shape[0]:][:BATCH]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[rows].float() / 255.0), y[rows])
        loss.backward()
        optimizer.step()


def test_accuracy_by_epoch(args):
    """--accuracy-epochs N: the model given Keras's initialisers (Glorot-uniform kernels, zero
    biases), trained N whole epochs of shuffled batches as kiln-mnist --model cnn trains it, and its
    test accuracy after each: what this recipe reaches, framework aside."""
    torch.manual_seed(args.seed)
    x, y = load_split(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    x_test, y_test = load_split(args.data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    x, x_test = x.unsqueeze(1), x_test.unsqueeze(1)
    model = convnet()
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    accuracies = []
    for _ in range(args.accuracy_epochs):
        model.train()
        order = torch.randperm(x.shape[0])
        for start in range(0, x.shape[0], BATCH):
            rows = order[start:start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracies.append((model(x_test).argmax(1) == y_test).float().mean().item())
        print(f"epoch {len(accuracies)}: test accuracy {accuracies[-1]:.4f}", flush=True)
    write_json({"seed": args.seed, "test_accuracy_by_epoch": accuracies}, args.json, 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=FASHION_MNIST)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accuracy-epochs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.accuracy_epochs > 0:
        return test_accuracy_by_epoch(args)
    if not args.json:
        parser.error("--json PATH is needed")
    torch.manual_seed(1)
    # The images stay uint8, as the IDX file holds them; each batch becomes float32 in [0, 1] when taken.
    x, y = load_split(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", as_bytes=True)
    x = x.unsqueeze(1).contiguous()  # [n, 1, 28, 28]
    model = convnet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    order = torch.randperm(x.shape[0])
    steps_per_epoch = (x.shape[0] + BATCH - 1) // BATCH
    train_steps(model, optimizer, x, y, order, 0, 5)  # warm-up
    epochs = []
    for round_index in range(args.rounds):
        start = time.perf_counter()
        train_steps(model, optimizer, x, y, order, 5 + round_index * args.steps, args.steps)
        epochs.append((time.perf_counter() - start) * steps_per_epoch / args.steps)
    write_json({
        "threads": args.threads,
        "steps_per_round": args.steps,
        "epoch_s": sorted(epochs)[len(epochs) // 2],
        "epoch_s_rounds": epochs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, args.json, 2)


if __name__ == "__main__":
    main()
