"""Turns Debian's Fashion-MNIST (dataset-fashion-mnist: four IDX files) into the ImageFolder
tree a PyTorch user keeps in a bucket: train/<class>/<n>.png and test/<class>/<n>.png, 70,000
small PNG files in all (60,000 + 10,000; fewer with --limit).

    python examples/pytorch/prepare.py OUT_DIR [--limit N]
"""

import argparse
import gzip
import struct
import sys
from pathlib import Path

from PIL import Image

DATASET = Path("/usr/share/datasets/fashion-mnist")
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle-boot")


def read_idx(path, magic):
    raw = gzip.decompress(path.read_bytes())
    got, n = struct.unpack(">II", raw[:8])
    if got != magic:
        sys.exit(f"prepare: {path}: not an IDX file of the expected kind (magic {got})")
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return [raw[16 + i * rows * cols:16 + (i + 1) * rows * cols] for i in range(n)], \
            (cols, rows)
    return list(raw[8:8 + n]), None


def write_split(out, split, limit):
    images_name, labels_name = SPLITS[split]
    images, size = read_idx(DATASET / images_name, 2051)
    labels, _ = read_idx(DATASET / labels_name, 2049)
    n = min(len(images), limit) if limit else len(images)
    for c in CLASSES:
        (out / split / c).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.frombytes("L", size, images[i]).save(
            out / split / CLASSES[labels[i]] / f"{i:05d}.png", optimize=False)
    return n


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--limit", type=int, default=0, help="at most N images per split")
    args = ap.parse_args(argv)
    counts = {s: write_split(args.out, s, args.limit if s == "train" else
                             (args.limit // 3 if args.limit else 0)) for s in SPLITS}
    print(f"prepare: {counts['train']} train and {counts['test']} test images in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
