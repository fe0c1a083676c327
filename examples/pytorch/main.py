"""Fashion-MNIST in PyTorch, the way a training job is usually written: an ImageFolder of PNG
files read by a DataLoader with worker processes, a small CNN on the CPU, a checkpoint every
N steps (model and optimizer, the last 3 kept, older ones removed with os.remove), and a
resume from the latest checkpoint in the checkpoint directory. It knows nothing about object
stores or rwsplit: under `rwsplit run` its two directories are routes.

Log lines (parsed by demo.py and the tests):
    dataload cost time: <seconds until the first batch>
    epoch E: <steps> steps, loss <L>, <seconds> s (<ms> ms/step)
    Save checkpoint at step N (<ms> ms)
    Restored checkpoint <path> at step N
    checkpoint saves <count> taking <seconds>s
    test accuracy: <accuracy>
"""

import argparse
import os
import re
import shutil
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

CKPT = re.compile(r"^ckpt-(\d+)\.pt$")
DCP = re.compile(r"^dcp-(\d+)$")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/mnt/fashion", help="ImageFolder root (train/, test/)")
    p.add_argument("--checkpoints", default="/mnt/checkpoints")
    p.add_argument("--epochs", type=int, default=2, help="epochs to reach (counting resumed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), default=None,
                   help="DataLoader worker start method (default: the platform's)")
    p.add_argument("--save-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    p.add_argument("--dcp", action="store_true",
                   help="save with torch.distributed.checkpoint instead of torch.save")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def checkpoints(directory):
    """[(step, path, kind)] of the checkpoints in directory, oldest first."""
    found = []
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            m = CKPT.match(name) or DCP.match(name)
            if m:
                found.append((int(m.group(1)), os.path.join(directory, name),
                              "pt" if name.endswith(".pt") else "dcp"))
    return sorted(found)


def save(args, model, opt, step, epoch):
    t0 = time.perf_counter()
    state = {"model": model.state_dict(), "optim": opt.state_dict(),
             "step": step, "epoch": epoch}
    if args.dcp:
        import torch.distributed.checkpoint as dcp
        dcp.save(state, checkpoint_id=os.path.join(args.checkpoints, f"dcp-{step}"))
    else:
        torch.save(state, os.path.join(args.checkpoints, f"ckpt-{step}.pt"))
    for _, path, kind in checkpoints(args.checkpoints)[:-args.keep]:
        if kind == "pt":
            os.remove(path)
        else:
            shutil.rmtree(path)
    took = time.perf_counter() - t0
    print(f"Save checkpoint at step {step} ({took * 1000:.1f} ms)", flush=True)
    return took


def restore(args, model, opt):
    """(step, epoch) of the latest checkpoint, loaded into model and opt; (0, 0) if none."""
    found = checkpoints(args.checkpoints)
    if not found:
        return 0, 0
    step, path, kind = found[-1]
    if kind == "pt":
        state = torch.load(path, weights_only=True)
    else:
        import torch.distributed.checkpoint as dcp
        state = {"model": model.state_dict(), "optim": opt.state_dict(), "step": 0,
                 "epoch": 0}
        dcp.load(state, checkpoint_id=path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    print(f"Restored checkpoint {path} at step {state['step']}", flush=True)
    return int(state["step"]), int(state["epoch"])


def accuracy(model, args, tf):
    test = datasets.ImageFolder(os.path.join(args.data, "test"), transform=tf)
    loader = DataLoader(test, batch_size=256, num_workers=0)
    right = total = 0
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            right += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    model.train()
    return right / max(total, 1)


def main(argv):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    os.makedirs(args.checkpoints, exist_ok=True)
    tf = transforms.Compose([transforms.Grayscale(), transforms.ToTensor()])
    train = datasets.ImageFolder(os.path.join(args.data, "train"), transform=tf)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0,
                        multiprocessing_context=args.start_method if args.workers else None)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    step, epoch = restore(args, model, opt)
    saves, save_s, t_start = 0, 0.0, time.perf_counter()
    first = True
    while epoch < args.epochs:
        t_epoch, losses, n = time.perf_counter(), 0.0, 0
        for x, y in loader:
            if first:
                print(f"dataload cost time: {time.perf_counter() - t_start:.3f}", flush=True)
                first = False
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            n += 1
            losses += loss.item()
            if step % args.save_every == 0:
                save_s += save(args, model, opt, step, epoch)
                saves += 1
        epoch += 1
        secs = time.perf_counter() - t_epoch
        print(f"epoch {epoch}: {n} steps, loss {losses / max(n, 1):.4f}, {secs:.2f} s "
              f"({secs * 1000 / max(n, 1):.1f} ms/step)", flush=True)
    if saves:
        print(f"checkpoint saves {saves} taking {save_s:.3f}s", flush=True)
    print(f"test accuracy: {accuracy(model, args, tf):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
