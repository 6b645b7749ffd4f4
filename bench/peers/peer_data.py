"""What the PyTorch peers share: Fashion-MNIST as a PyTorch user would hold it, and their JSON output."""
import gzip
import json
import os
import struct

import numpy as np
import torch

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


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


def load_split(data_dir, images, labels):
    """float32 images scaled to [0, 1] and int64 labels, from `images` and `labels` (plain or .gz)."""
    def find(name):
        for candidate in (name, name + ".gz"):
            if os.path.exists(os.path.join(data_dir, candidate)):
                return os.path.join(data_dir, candidate)
        raise SystemExit(f"no {name} or {name}.gz in {data_dir}")
    x = torch.from_numpy(read_idx(find(images)).astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(find(labels)).astype(np.int64))
    return x, y


def write_json(figures, path, indent):
    """The figures as JSON, to `path`, or to standard output when path is empty."""
    text = json.dumps(figures, indent=indent)
    if path:
        with open(path, "w") as file:
            file.write(text + "\n")
    else:
        print(text)
