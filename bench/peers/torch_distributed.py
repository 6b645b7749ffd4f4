#!/usr/bin/env python3
"""PyTorch's side of kiln-bench-distributed: the same two models, trained data-parallel with
DistributedDataParallel on 1 and on 2 processes (gloo over loopback, the back end Debian's build
has; it has no MPI), each process on one thread and pinned to one core, as mpirun pins kiln's ranks.

Run by build/bin/kiln-bench-distributed (or by hand):
    /usr/bin/python3 bench/peers/torch_distributed.py --json out.json
Each step takes the job's batch from one permutation shared by the processes, and each process its
share of it, as kiln's fit(x, y) does: the dense model (peer_data.dense_classifier, batch 64) for an
epoch, the convnet (batch 128) for --convnet-steps steps. An epoch's time is the median of the
epochs after the first.
"""
import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from peer_data import FASHION_MNIST, SEED, dense_classifier, load_split, write_json
from torch_convnet import convnet


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_epochs(model, optimizer, x, y, batch, steps, epochs, rank, ranks):
    loss_fn = nn.CrossEntropyLoss()
    share = batch // ranks
    times = []
    for epoch in range(epochs):
        generator = torch.Generator().manual_seed(SEED + epoch)
        order = torch.randperm(x.shape[0], generator=generator)  # the same on every process
        dist.barrier()
        start = time.perf_counter()
        model.train()
        for step in range(steps):
            rows = order[step * batch:(step + 1) * batch][rank * share:(rank + 1) * share]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()  # DDP averages the gradients over the processes here
            optimizer.step()
        dist.barrier()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def worker(rank, ranks, port, args, results):
    torch.set_num_threads(1)
    os.sched_setaffinity(0, {rank % os.cpu_count()})
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=ranks)
    x, y = load_split(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    dense, _ = dense_classifier(28 * 28, 10)
    dense = nn.parallel.DistributedDataParallel(dense)
    dense_optimizer = torch.optim.Adam(dense.parameters(), lr=1e-3, eps=1e-7)
    dense_epoch = time_epochs(dense, dense_optimizer, x, y, 64, (x.shape[0] + 63) // 64, args.epochs, rank, ranks)
    torch.manual_seed(SEED)
    conv = nn.parallel.DistributedDataParallel(convnet())
    conv_optimizer = torch.optim.Adam(conv.parameters(), lr=1e-3, eps=1e-7)
    images = x.unsqueeze(1).contiguous()
    conv_epoch = time_epochs(conv, conv_optimizer, images, y, 128, args.convnet_steps, args.epochs, rank, ranks)
    if rank == 0:
        results[str(ranks)] = {"dense_epoch": dense_epoch, "convnet_epoch": conv_epoch}
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=FASHION_MNIST)
    parser.add_argument("--convnet-steps", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    manager = mp.Manager()
    results = manager.dict()
    for ranks in (1, 2):
        mp.spawn(worker, args=(ranks, free_port(), args, results), nprocs=ranks, join=True)
    write_json({"torch": torch.__version__, "backend": "gloo", "processes": dict(results)}, args.json, 2)


if __name__ == "__main__":
    main()
