#!/usr/bin/python3
"""torch_images.py — the PyTorch peer of kiln-bench-images: the same folder of image files, decoded
by PyTorch's DataLoader, and the same model trained on it.

The work, as in bench/images/kiln_bench_images.cpp:
  folder  one subfolder per class (--data; kiln-bench-images passes the one it measured), classes
          in sorted order, files in sorted order within each, as torchvision's ImageFolder and
          Keras's image_dataset_from_directory both list them.
  decode  per file: open and decode with Pillow, convert to the colour mode, resize to --image-size
          with bilinear interpolation (kiln always resizes; at the files' own size it is a copy),
          scale to [0, 1] as float32 (torchvision's ToTensor); the DataLoader batches 32,
          shuffled each epoch.
  model   Flatten, Linear, ReLU, Dropout 0.2, Linear to the classes; cross-entropy on the logits;
          Adam (lr 1e-3, eps 1e-7); one model trained --epochs epochs, the median epoch kept.
Each is measured with 0 workers (everything in the training process) and 1 and 2 worker
processes, kept alive between epochs (persistent_workers) so that no epoch pays for starting them;
the best is kept. Decoding is timed as the DataLoader iterated alone after one untimed pass (which
starts the workers), the median of --repeats passes.

This is torchvision's ImageFolder written out with Pillow, which torchvision's own loader also
uses: Debian's python3-torchvision would pull in some 40 packages (FFmpeg's among them) for it.

Run it with Debian's python3-torch and python3-pil:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \\
      bench/peers/torch_images.py --data DIR [--json PATH]
Progress goes to stderr; the figures, as JSON, to PATH or to stdout.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from peer_data import SEED, dense_classifier, loaded_blas, train_epoch, write_json

BATCH_SIZE = 32
WORKER_COUNTS = (0, 1, 2)
PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what kiln and Keras list


class ImageFiles(Dataset):
    """Image i of the folder, decoded: (float32 [side, side, channels] in [0, 1], label)."""

    def __init__(self, root, side, color_mode):
        self.classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
        if not self.classes:
            raise SystemExit(f"{root}: no class subfolders")
        self.files = [(os.path.join(root, name, file), label)
                      for label, name in enumerate(self.classes)
                      for file in sorted(os.listdir(os.path.join(root, name)))
                      if file.lower().endswith(IMAGE_EXTENSIONS)]
        self.side, self.mode = side, PIL_MODES[color_mode]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        path, label = self.files[index]
        with Image.open(path) as image:
            image = image.convert(self.mode).resize((self.side, self.side), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]  # channels last, as kiln and Keras hold images
        return torch.from_numpy(pixels), label


def make_loader(images, workers):
    generator = torch.Generator()
    generator.manual_seed(SEED)
    return DataLoader(images, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0, generator=generator)


def decode_rate(loader, repeats):
    """Images per second of the loader iterated alone, after one untimed pass."""
    def one_pass():
        start = time.perf_counter()
        images = 0
        for x, _ in loader:
            images += len(x)
        return images / (time.perf_counter() - start)
    one_pass()
    return statistics.median(one_pass() for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="DIR", required=True, help="the image folder, one subfolder per class")
    parser.add_argument("--json", metavar="PATH", help="write the figures here (default: stdout)")
    parser.add_argument("--image-size", type=int, default=28, help="images are resized to NxN")
    parser.add_argument("--color-mode", choices=sorted(PIL_MODES), default="grayscale")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per set-up; the median is kept")
    parser.add_argument("--repeats", type=int, default=3, help="timed decoding passes; the median is kept")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the training")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    def log(message):
        print("torch_images: " + message, file=sys.stderr, flush=True)

    images = ImageFiles(arguments.data, arguments.image_size, arguments.color_mode)
    channels = len(PIL_MODES[arguments.color_mode])  # "L", "RGB", "RGBA": one letter a channel
    inputs = arguments.image_size * arguments.image_size * channels
    torch.tensor([[1.0]]) @ torch.tensor([[1.0]])  # maps the BLAS library before it is listed
    result = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "blas": loaded_blas(),
              "files": len(images), "classes": len(images.classes), "workers": []}
    for workers in WORKER_COUNTS:
        rate = decode_rate(make_loader(images, workers), arguments.repeats)
        model, optimizer = dense_classifier(inputs, len(images.classes))
        loader = make_loader(images, workers)
        epochs = [train_epoch(model, optimizer, loader) for _ in range(arguments.epochs)]
        epoch_s = statistics.median(epochs)
        result["workers"].append({"workers": workers, "decode_images_per_s": rate, "epoch_s": epoch_s,
                                  "epochs_s": epochs})
        log(f"workers {workers}: decode {rate:.0f} images/s, epoch {epoch_s:.3f} s")
    result["best"] = {"decode_images_per_s": max(row["decode_images_per_s"] for row in result["workers"]),
                      "epoch_s": min(row["epoch_s"] for row in result["workers"])}
    write_json(result, arguments.json, indent=2)


if __name__ == "__main__":
    main()
