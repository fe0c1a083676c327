#!/usr/bin/env python3
"""`make demo EXAMPLE=pytorch`: the PyTorch job with its ImageFolder and checkpoints in a store.

1. starts a throw-away MinIO on 127.0.0.1 (temporary data dir),
2. turns Debian's Fashion-MNIST into 70,000 PNG files (prepare.py) and uploads them with
   `mc` to s3://rwsplit-demo/pytorch/fashion/{train,test}/<class>/<n>.png,
3. runs `rwsplit run -c rwsplit.conf -- python main.py` unchanged (DataLoader with 4 workers;
   a torch.save checkpoint every --save-every steps, the last 3 kept),
4. lists the checkpoint objects with `mc` and checks them (exactly the last 3, no temporary
   names, nothing pending),
5. runs the job again from an empty pod, which resumes from the bucket's latest checkpoint
   and reads the data set from the warm cache,
6. runs it once more on a local copy of the PNG tree without rwsplit, for comparison,
7. prints a table (dataload, epoch time, save time) and stops MinIO. Exits non-zero when
   any check fails.

    .tools/venv/bin/python examples/pytorch/demo.py [--limit N] [--epochs N]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (REPO, HERE.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import demo_common as common  # noqa: E402
from demo_common import say  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402

CONFIG = HERE / "rwsplit.conf"
BUCKET = "rwsplit-demo"
DATA_PREFIX = "pytorch/fashion/"
CKPT_PREFIX = "pytorch/checkpoints/"
DATA_PATH, CKPT_PATH = "/mnt/fashion", "/mnt/checkpoints"
PYTHON = REPO / ".tools" / "venv" / "bin" / "python"
TEMP_NAME = re.compile(r"\.tmp|tmp[0-9a-z_]{6,}|~$", re.IGNORECASE)


def localize_config(text, endpoint, bucket=BUCKET, spool=None, cache_dir=None):
    return common.localize_config(text, endpoint, BUCKET, bucket, spool, cache_dir)


def new_pod():
    common.new_pod(CKPT_PATH)


def prepare(out, limit=0):
    subprocess.run([str(PYTHON), str(HERE / "prepare.py"), str(out)]
                   + (["--limit", str(limit)] if limit else []), check=True)


def upload_dataset(mc, tree, bucket=BUCKET):
    """The PNG tree into bucket/pytorch/fashion/, the way a user would."""
    mc.run("cp", "--recursive", "--quiet", f"{tree}/", mc.target(f"{bucket}/{DATA_PREFIX}"),
           timeout=1800)


def parse_job_output(text):
    """The numbers main.py printed (see its docstring) and rwsplit's summaries."""
    def last(pattern, conv=float):
        found = re.findall(pattern, text, re.MULTILINE)
        return conv(found[-1]) if found else None
    epochs = [float(s) for s in re.findall(r"^epoch \d+: \d+ steps, loss \S+, ([0-9.]+) s",
                                           text, re.MULTILINE)]
    return {
        "dataload_s": last(r"^dataload cost time: ([0-9.]+)"),
        "epoch_s": epochs,
        "saved_steps": [int(s) for s in re.findall(r"^Save checkpoint at step (\d+)", text,
                                                   re.MULTILINE)],
        "restored_step": last(r"^Restored checkpoint \S+ at step (\d+)", int),
        "saves": last(r"checkpoint saves (\d+) taking", int),
        "save_s": last(r"checkpoint saves \d+ taking ([0-9.]+)s"),
        "accuracy": last(r"^test accuracy: ([0-9.]+)"),
        "uploaded": last(r"write summary: (?:\S+: )?(\d+) files uploaded", int),
        "pending": last(r"write summary: .* (\d+) pending", int),
        "failed": last(r"write summary: .* (\d+) failed", int),
        "from_store": last(r"read summary: .*?, (\d+) bytes from the store", int),
    }


def check_checkpoints(keys, saved_steps, keep=3, dcp=False):
    """Problems with the objects under checkpoints/ (names relative to it), or []."""
    problems = []
    kept = sorted(set(saved_steps))[-keep:]
    if dcp:
        want = {f"dcp-{s}/.metadata" for s in kept}
        have = {k for k in keys if k.endswith("/.metadata")}
        if not all(any(k.startswith(f"dcp-{s}/__") for k in keys) for s in kept):
            problems.append(f"a DCP checkpoint without its data file: {sorted(keys)}")
    else:
        want = {f"ckpt-{s}.pt" for s in kept}
        have = {k for k in keys if k.startswith("ckpt-")}
    if have != want:
        problems.append(f"checkpoints {sorted(have)}, want exactly {sorted(want)}")
    temps = sorted(k for k in keys if TEMP_NAME.search(k))
    if temps:
        problems.append(f"temporary names left: {temps}")
    return problems


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0,
                    help="at most N training images (default: all 60,000)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the first run")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--no-compare", action="store_true", help="skip the local-disk run")
    args = ap.parse_args(argv)
    rwsplit = Path(args.build) / "bin" / "rwsplit"
    for need in (rwsplit, PYTHON):
        if not Path(need).exists():
            sys.exit(f"demo: {need} is missing: run `make demo EXAMPLE=pytorch`")
    failures = []
    work = Path(tempfile.mkdtemp(prefix="rwsplit-demo-pt-"))
    cache = Path(tempfile.mkdtemp(prefix="rwsplit-demo-cache-",
                                  dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        tree = work / "fashion"
        prepare(tree, args.limit)
        nfiles = sum(1 for _ in tree.rglob("*.png"))
        with MinioServer() as minio, Mc(minio) as mc:
            say(f"MinIO at {minio.endpoint} (data in a temporary directory)")
            mc.mb(BUCKET)
            upload_dataset(mc, tree)
            say(f"uploaded {nfiles} PNG files with mc under s3://{BUCKET}/{DATA_PREFIX}")
            conf = work / "rwsplit.conf"
            conf.write_text(localize_config(CONFIG.read_text(), minio.endpoint,
                                            spool=work / "spool", cache_dir=cache))
            env = minio.child_env({"RWSPLIT_LOG": "info"})
            job = [str(rwsplit), "run", "-c", str(conf), "--", str(PYTHON),
                   str(HERE / "main.py"), "--save-every", str(args.save_every)]
            runs = {}
            saved = []
            for label, epochs in (("first run (cold cache)", args.epochs),
                                  ("second run (resumes, warm cache)", args.epochs + 1)):
                new_pod()
                rc, out, secs = common.run_job(job + ["--epochs", str(epochs)], env, label)
                r = runs[label] = parse_job_output(out) | {"rc": rc, "wall_s": secs}
                saved += r["saved_steps"]
                failures += common.run_problems(label, rc, r)
                keys = common.show_objects(mc, BUCKET, CKPT_PREFIX)
                failures += [f"{label}: {p}" for p in check_checkpoints(keys, saved)]
            first, second = runs.values()
            if second["restored_step"] != (first["saved_steps"] or [None])[-1]:
                failures.append(f"the second run restored step {second['restored_step']}, "
                                f"not the last saved step {first['saved_steps'][-1:]}")
            if second["from_store"] not in (0, None):
                failures.append(f"the second run read {second['from_store']} bytes from the "
                                "store: the cache was not warm")
            local = None
            if not args.no_compare:
                rc, out, secs = common.run_job(
                    [str(PYTHON), str(HERE / "main.py"), "--data", str(tree), "--checkpoints",
                     str(work / "local-ckpt"), "--epochs", "1", "--save-every",
                     str(args.save_every)], minio.child_env(),
                    "same job on local disk, no rwsplit (for comparison)")
                local = parse_job_output(out) | {"rc": rc, "wall_s": secs}
                if rc != 0:
                    failures.append(f"local-disk run: exit status {rc}")
            summary(first, second, local)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return common.verdict(failures, "OK: the last 3 checkpoints are in the bucket and no "
                          "other, the second run resumed from the last saved step and read "
                          "its data from the cache, nothing left pending")


def summary(first, second, local):
    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    def per_save(r):
        return r["save_s"] / r["saves"] * 1000 if r and r["saves"] else None

    def epoch1(r):
        return r["epoch_s"][0] if r and r["epoch_s"] else None
    say("summary")
    print(f"    first run:  {len(first['epoch_s'])} epochs, test accuracy "
          f"{f(first['accuracy'], '{:.4f}')}, {f(first['uploaded'], '{}')} uploads")
    print(f"    second run: resumed at step {f(second['restored_step'], '{}')}, "
          f"{len(second['epoch_s'])} epochs, test accuracy {f(second['accuracy'], '{:.4f}')}")
    print(f"    {'':28}{'local disk':>12}{'rwsplit cold':>14}{'rwsplit warm':>14}")
    for name, fn, fmt in (("dataload (s)", lambda r: r and r["dataload_s"], "{:.3f}"),
                          ("first epoch (s)", epoch1, "{:.2f}"),
                          ("checkpoint save (ms/save)", per_save, "{:.1f}")):
        print(f"    {name:28}{f(fn(local), fmt):>12}{f(fn(first), fmt):>14}"
              f"{f(fn(second), fmt):>14}")
    print("    (save: torch.save + os.remove in the training loop; rwsplit uploads after "
          "close, in the background)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
