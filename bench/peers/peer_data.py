"""What the PyTorch peers share: Fashion-MNIST as a PyTorch user would hold it, the small classifier
the pipeline peers train, and their JSON output."""
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
SEED = 1


def read_idx(path):
    """One IDX file (MNIST's format), plain or gzipped, as a uint8 NumPy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        content = file.read()
    _, _, type_code, rank = struct.unpack(">BBBB", content[:4])
    if type_code != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files are read, this one has type 0x{type_code:02x}")
    shape = struct.unpack(">" + "I" * rank, content[4:4 + 4 * rank])
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def load_split(data_dir, images, labels, as_bytes=False):
    """float32 images scaled to [0, 1] (or, as_bytes, the uint8 pixels) and int64 labels, from
    `images` and `labels` (plain or .gz)."""
    def find(name):
        for candidate in (name, name + ".gz"):
            if os.path.exists(os.path.join(data_dir, candidate)):
                return os.path.join(data_dir, candidate)
        raise SystemExit(f"no {name} or {name}.gz in {data_dir}")
    pixels = read_idx(find(images))
    x = torch.from_numpy(pixels.copy()) if as_bytes else torch.from_numpy(pixels.astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(find(labels)).astype(np.int64))
    return x, y


def dense_classifier(inputs, classes):
    """Flatten, Linear inputs-128, ReLU, Dropout 0.2, Linear 128-classes, seeded, and its Adam
    (lr 1e-3, eps 1e-7: Keras's). Trained on the logits with cross-entropy, which is Keras's
    softmax + sparse categorical cross-entropy."""
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Flatten(), nn.Linear(inputs, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    return model, optimizer


def train_epoch(model, optimizer, batches):
    """One epoch over `batches` of (x, labels); returns the seconds it took."""
    model.train()
    loss_function = nn.CrossEntropyLoss()
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_function(logits, y)
        loss.backward()
        optimizer.step()
        # What Keras's logs (and kiln's fit) keep: the running loss and accuracy.
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return time.perf_counter() - start


def loaded_blas():
    """The BLAS and OpenMP libraries this process has mapped (what torch actually uses)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    return sorted(p for p in paths if any(k in os.path.basename(p) for k in ("blas", "lapack", "gomp", "omp")))


def write_json(figures, path, indent):
    """The figures as JSON, to `path`, or to standard output when path is empty."""
    text = json.dumps(figures, indent=indent)
    if path:
        with open(path, "w") as file:
            file.write(text + "\n")
    else:
        print(text)
