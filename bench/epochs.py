#!/usr/bin/env python3
"""Epochs over a data set larger than the cache: what share of each epoch's files the cache
serves, at a quarter and at half of the data set, in listing order and shuffled.

Every pass is a PyTorch DataLoader (4 workers, batch_size 1, a plain file Dataset returning
each file's bytes) over the rwsplit read route, 3 epochs in one process, as a training job
runs them: `shuffle=False` (listing order) and `shuffle=True` (a new order each epoch). Each
configuration starts from an empty cache_dir. Per epoch: the GETs the node made (the route's
counters, `rwsplit stats --json`, which count the agent's prefetch too), *from cache* = 1 -
GETs / files, the evictions, and the seconds. Every epoch's bytes are checked (sha256 of
each file against the source). Writes section `epochs` of --out and bench/results/epochs.json.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and bench/profile.py would hide the
# standard library's profile module (torch's ImageFolder and DCP import cProfile).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import REPO, VENV_PY, log  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402

BUCKET = "rwbench"
PREFIX = "epochs/"
ROUTE = "/mnt/rwbench-epochs/data"
SELF = Path(__file__).resolve()
TARGET_QUARTER = 0.20          # issue 17: epoch hits at a quarter budget, from epoch 2
KiB, MiB = 1024, 1024 * 1024


def child_main(argv):
    """The job: 3 epochs of a DataLoader over the route (run preloaded)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rwsplit", required=True)
    ap.add_argument("--config", required=True)
    a = ap.parse_args(argv)
    import torch
    from torch.utils.data import DataLoader
    want = json.loads(Path(a.manifest).read_text())
    names = sorted(want)

    def counters():
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD",
                                                                "RWSPLIT_CONFIG")}
        out = subprocess.run([a.rwsplit, "stats", "--json", "-c", a.config], env=env,
                             capture_output=True, check=True, timeout=60).stdout
        [r] = json.loads(out)["routes"]
        return r
    torch.manual_seed(1)
    loader = DataLoader(common.hashed_files(a.root, names), batch_size=1, shuffle=a.shuffle,
                        num_workers=a.workers, collate_fn=lambda b: b[0],
                        persistent_workers=True)
    for epoch in range(1, a.epochs + 1):
        before = counters()
        t0 = time.monotonic()
        bad = 0
        for i, digest in loader:
            bad += digest != want[names[i]]
        secs = time.monotonic() - t0
        after = counters()
        print(json.dumps({"epoch": epoch, "seconds": secs, "bad": bad,
                          "gets": after["gets"] - before["gets"],
                          "evictions": after["evictions"] - before["evictions"],
                          "cache_bytes": after.get("cache_bytes")}), flush=True)
    return 0


def make_data(root, nfiles, seed):
    rng = random.Random(seed)
    want, total, pages = {}, 0, 0
    for i in range(nfiles):
        size = rng.randint(80 * 1000, 140 * 1000)
        rel = f"d{i % 4}/f{i:05d}.bin"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        p.write_bytes(data)
        want[rel] = hashlib.sha256(data).hexdigest()
        total += size
        pages += (size + 4095) // 4096 * 4096
    return want, total, pages


def run_config(server, lib, rwsplit, work, manifest, budget, shuffle, epochs, tag):
    cache = Path("/dev/shm") / f"rwbench-epochs-{tag}"
    shutil.rmtree(cache, ignore_errors=True)
    conf = common.read_route_config(server, work / f"rwsplit-{tag}.conf", cache, ROUTE,
                                    f"s3://{BUCKET}/{PREFIX}", f"{max(1, budget // KiB)}KiB")
    env, shown = common.rwsplit_env(server, lib, conf, {"RWSPLIT_LOG": "info"})
    argv = [str(VENV_PY), str(SELF), "_child", ROUTE, "--manifest", str(manifest),
            "--epochs", str(epochs), "--rwsplit", str(rwsplit), "--config", str(conf)]
    if shuffle:
        argv.append("--shuffle")
    cmd = common.shown_command(shown, argv)
    try:
        p = subprocess.run(argv, env=env, capture_output=True, timeout=1800, cwd=REPO)
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # its fetch agent exits with its socket
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()
            if line.startswith("{")]
    note = "" if p.returncode == 0 else f"exit {p.returncode}: {p.stderr.decode()[-400:]}"
    return rows, cmd, note


def report(args, facts, results, nfiles, total, pages, elapsed):
    out = ["# rwsplit benchmark: epochs over a data set larger than the cache", "",
           f"Generated by `{common.command_line('bench/epochs.py', sys.argv[1:])}` in "
           f"{elapsed:.0f} s. Do not edit by hand: run it again.", "",
           __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
           "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in facts]
    out += ["", f"Data set: {nfiles} files of 80–140 KB in 4 directories, {total / 1e6:.0f} MB "
            f"({pages / MiB:.0f} MiB of cache pages).", "",
            "## From cache per epoch (1 - GETs / files)", "",
            "| budget | order | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1))
            + " | GETs per epoch | evictions per epoch | seconds per epoch | bytes checked |",
            "|---|---|" + "---|" * (args.epochs + 4)]
    verdict = []
    for (label, order), (rows, _, note) in results.items():
        if len(rows) != args.epochs:
            out.append(f"| {label} | {order} | failed: {note[:200]} |" + " |" * (args.epochs + 3))
            continue
        hits = [1 - r["gets"] / nfiles for r in rows]
        out.append(f"| {label} | {order} | {' | '.join(f'{100 * h:.1f}%' for h in hits)} | "
                   f"{', '.join(str(r['gets']) for r in rows)} | "
                   f"{', '.join(str(r['evictions']) for r in rows)} | "
                   f"{', '.join(format(r['seconds'], '.1f') for r in rows)} | "
                   f"{'ok' if not any(r['bad'] for r in rows) else 'WRONG BYTES'} |")
        if label.startswith("¼"):
            worst = min(hits[1:])
            verdict.append(f"- ¼ budget, {order}: worst epoch from epoch 2 serves "
                           f"{100 * worst:.1f}% from the cache: target ≥ "
                           f"{100 * TARGET_QUARTER:.0f}% **{'met' if worst >= TARGET_QUARTER else 'missed'}**")
    out += ["", "## Against the target (issue 17)", ""] + verdict
    out += ["", "## Exact commands", ""]
    out += [f"- {label}, {order}: `{cmd}`" for (label, order), (_, cmd, _) in results.items()]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        return child_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--quick", action="store_true", help="800 files, for trying the script")
    args = ap.parse_args()
    if args.quick:
        args.files = 800
    build = Path(args.build).resolve()
    lib, rwsplit = build / "lib" / "librwsplit.so", build / "bin" / "rwsplit"
    for need in (lib, rwsplit, VENV_PY):
        if not need.exists():
            sys.exit(f"epochs: {need} is missing (make; scripts/deps.sh)")
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rwbench-epochs-", dir="/var/tmp"))
    server = mc = None
    try:
        log(f"making {args.files} files in {work}/src")
        want, total, pages = make_data(work / "src", args.files, args.seed)
        manifest = work / "manifest.json"
        manifest.write_text(json.dumps(want))
        server = MinioServer().start()
        mc = Mc(server)
        common.upload_tree(mc, server, work / "src", BUCKET, PREFIX, args.files, total, 900)
        facts = common.host_facts() + [("rwsplit", common.lib_fact(lib)),
                                       ("MinIO", server.endpoint)]
        results = {}
        for label, frac in (("¼ of the data set", 4), ("½ of the data set", 2)):
            for order, shuffle in (("listing order", False), ("shuffled", True)):
                tag = f"{frac}{'s' if shuffle else 'o'}"
                rows, cmd, note = run_config(server, lib, rwsplit, work, manifest,
                                             pages // frac, shuffle, args.epochs, tag)
                log(f"{label}, {order}: " + ", ".join(
                    f"{100 * (1 - r['gets'] / args.files):.1f}% ({r['seconds']:.1f} s)"
                    for r in rows) + (f" {note}" if note else ""))
                results[(label, order)] = (rows, cmd, note)
        body = report(args, facts, results, args.files, total, pages, time.monotonic() - t0)
        replace_section(args.out, "epochs", body)
        common.save_json("epochs", {
            "title": "Epochs larger than the cache: % of files from the cache", "unit": "%",
            "lower_is_better": False,
            "groups": [{"label": f"epoch {e}", "values": {
                f"rwsplit, {label[:1]}, {order}": 100 * (1 - rows[e - 1]["gets"] / args.files)
                for (label, order), (rows, _, _) in results.items() if len(rows) >= e}}
                for e in range(1, args.epochs + 1)]}, trial=args.quick)
        log(f"wrote section epochs of {args.out}")
    finally:
        common.release(server, mc, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
