#!/usr/bin/env python3
"""rwsplit against s3torchconnector, AWS's PyTorch connector, in the loops a PyTorch user
runs: a DataLoader epoch over small image files, and checkpoint saves, at 0 ms and at 10 ms
of added store latency (Toxiproxy between every client and MinIO).

Reads: --files PNG images of random pixels (~110 KB each, 4 class directories), one cold
epoch per pass (DataLoader, --workers 4 and 8, batch_size 32, a list collate):
- rwsplit, file Dataset: `open().read()` of each file of the read route;
- rwsplit, ImageFolder: `torchvision.datasets.ImageFolder` with a loader that reads the
  bytes and decodes them with PIL;
- s3torchconnector S3MapDataset (bytes) and S3MapDataset + PIL decode (the ImageFolder
  equivalent), S3IterableDataset (bytes, enable_sharding=True).
Cold: rwsplit from an empty cache_dir (its agent started by the pass); s3torchconnector
has no cache. Every file read is checked against its sha256 in the child.

Writes (--save-mib sizes): a state dict of float32 tensors saved by `torch.save` through
rwsplit's write route and through `S3Checkpoint.writer`; a sharded `torch.distributed.
checkpoint.save` (one process) to the write route and with `S3StorageWriter`. *save* is
what the training loop waits for; *durable* is until the objects are all in the store
(for rwsplit, the process's exit, which waits for its uploads; s3torchconnector's save
returns when its upload is complete, so both are the same). Objects are checked with boto3.

Writes section `torch-peer` of --out and bench/results/torch_peer.json.
"""

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
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
from tests.harness.proc import kill_tree_agents  # noqa: E402
from tests.harness.toxiproxy import Toxiproxy  # noqa: E402

BUCKET = "rwbench"
PREFIX = "imgs/"
READ_ROUTE = "/mnt/rwbench-peer/imgs"
WRITE_BASE = "/mnt/rwbench-peer-w-"
SELF = Path(__file__).resolve()
REGION = "us-east-1"
MiB = 1024 * 1024
READ_KINDS = [
    ("rwsplit, file Dataset", "rw-files"),
    ("rwsplit, ImageFolder (PIL)", "rw-imagefolder"),
    ("s3torchconnector S3MapDataset", "s3-map"),
    ("s3torchconnector S3MapDataset + PIL", "s3-map-pil"),
    ("s3torchconnector S3IterableDataset", "s3-iter"),
]
SAVE_KINDS = ("local-torch", "rw-torch", "s3-torch", "local-dcp", "rw-dcp", "s3-dcp")


# -- children (run as `torch_peer.py _read ...` / `_save ...`) -------------------------------


def s3tc_config():
    from s3torchconnector import S3ClientConfig
    return S3ClientConfig(force_path_style=True)


def decode(data):
    from PIL import Image
    import torchvision.transforms.functional as F
    return F.pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB"))


def read_child(a):
    from torch.utils.data import DataLoader
    want = json.loads(Path(a.manifest).read_text())
    t0 = time.monotonic()
    if a.kind == "rw-files":
        names = sorted(want)
        ds = common.hashed_files(a.root, names, label=names.__getitem__)
    elif a.kind == "rw-imagefolder":
        from torchvision.datasets import ImageFolder

        class Checked(ImageFolder):
            def __getitem__(self, i):
                path, _ = self.samples[i]
                with open(path, "rb") as f:
                    data = f.read()
                rel = os.path.relpath(path, a.root)
                return rel, hashlib.sha256(data).hexdigest(), decode(data).shape
        ds = Checked(a.root)
    else:
        from s3torchconnector import S3IterableDataset, S3MapDataset

        def as_item(obj, pil=a.kind == "s3-map-pil"):
            data = obj.read()
            rel = obj.key[len(PREFIX):]
            item = (rel, hashlib.sha256(data).hexdigest())
            return item + (decode(data).shape,) if pil else item
        uri = f"s3://{BUCKET}/{PREFIX}"
        if a.kind == "s3-iter":
            ds = S3IterableDataset.from_prefix(uri, region=REGION, endpoint=a.endpoint,
                                               transform=as_item, enable_sharding=True,
                                               s3client_config=s3tc_config())
        else:
            ds = S3MapDataset.from_prefix(uri, region=REGION, endpoint=a.endpoint,
                                          transform=as_item, s3client_config=s3tc_config())
    loader = DataLoader(ds, batch_size=32, num_workers=a.workers, collate_fn=list)
    seen, bad = 0, 0
    for batch in loader:
        for item in batch:
            seen += 1
            bad += want.get(item[0]) != item[1]
    secs = time.monotonic() - t0
    print(json.dumps({"seconds": secs, "files": seen, "bad": bad,
                      "ok": seen == len(want) and not bad}), flush=True)
    return 0 if seen == len(want) and not bad else 1


def state_dict(mib):
    import torch
    n = 16
    per = mib * MiB // 4 // n
    g = torch.Generator().manual_seed(1)
    return {f"layer{i}.weight": torch.rand(per, generator=g) for i in range(n)}


def save_child(a):
    import torch
    sd = state_dict(a.mib)
    t0 = time.monotonic()
    if a.kind in ("rw-torch", "local-torch"):
        os.makedirs(os.path.dirname(a.dest), exist_ok=True)
        t0 = time.monotonic()
        torch.save(sd, a.dest)
    elif a.kind == "s3-torch":
        from s3torchconnector import S3Checkpoint
        ck = S3Checkpoint(region=REGION, endpoint=a.endpoint, s3client_config=s3tc_config())
        t0 = time.monotonic()
        with ck.writer(a.dest) as w:
            torch.save(sd, w)
    elif a.kind in ("rw-dcp", "local-dcp"):
        import torch.distributed.checkpoint as dcp
        os.makedirs(a.dest, exist_ok=True)
        t0 = time.monotonic()
        dcp.save(sd, checkpoint_id=a.dest)
    elif a.kind == "s3-dcp":
        import torch.distributed.checkpoint as dcp
        from s3torchconnector.dcp import S3StorageWriter
        from s3torchconnector._s3client import S3Client
        from s3torchconnector.dcp.s3_file_system import S3FileSystem
        w = S3StorageWriter(region=REGION, path=a.dest, s3client_config=s3tc_config())
        # S3StorageWriter takes no endpoint: its file system, made again on a client with one.
        client = S3Client(region=REGION, endpoint=a.endpoint, s3client_config=s3tc_config())
        w.fs = S3FileSystem(REGION, s3_client=client)
        t0 = time.monotonic()
        dcp.save(sd, storage_writer=w)
    t1 = time.monotonic()
    if a.kind.startswith("rw-"):
        # fsync on a write route returns once the file is in the store
        files = [a.dest] if os.path.isfile(a.dest) else \
            [os.path.join(d, n) for d, _, ns in os.walk(a.dest) for n in ns]
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    t2 = time.monotonic()  # s3torchconnector's objects are complete when its save returns
    print(json.dumps({"save_s": t1 - t0, "durable_s": t2 - t0}), flush=True)
    return 0


def child(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("_read", "_save"))
    ap.add_argument("--kind", required=True)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--root", default=READ_ROUTE)
    ap.add_argument("--manifest")
    ap.add_argument("--endpoint")
    ap.add_argument("--dest")
    ap.add_argument("--mib", type=int, default=256)
    a = ap.parse_args(argv)
    return read_child(a) if a.what == "_read" else save_child(a)


# -- the parent -------------------------------------------------------------------------------


def make_images(root, nfiles, seed):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    want = {}
    for i in range(nfiles):
        rel = f"c{i % 4}/img{i:05d}.png"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        h = 150 + int(rng.integers(0, 60))
        Image.fromarray(rng.integers(0, 256, (h, 240, 3), dtype=np.uint8)).save(p)
        want[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return want


def read_pass(ctx, kind, workers, ms):
    tag = f"{kind}-{workers}-{ms}"
    argv = [str(VENV_PY), str(SELF), "_read", "--kind", kind, "--workers", str(workers),
            "--manifest", str(ctx["manifest"]), "--endpoint", ctx["toxi"].endpoint]
    env = dict(ctx["env"])
    cache = None
    shown = {}
    if kind.startswith("rw-"):
        cache = Path("/dev/shm") / f"rwbench-peer-{tag}"
        shutil.rmtree(cache, ignore_errors=True)
        conf = common.read_route_config(ctx["server"], ctx["work"] / f"read-{tag}.conf", cache,
                                        READ_ROUTE, f"s3://{BUCKET}/{PREFIX}", "4GiB",
                                        endpoint=ctx["toxi"].endpoint)
        env, shown = common.rwsplit_env(ctx["server"], ctx["lib"], conf)
    common.drop_caches()
    p = common.timed(argv, env, timeout=900, server_pid=ctx["server"].pid, keep_stdout=True)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)  # its fetch agent exits with its socket
    res = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    return {"ok": p.ok and res.get("ok", False), "seconds": p.seconds,
            "in_process": res.get("seconds"), "client_cpu": p.client_cpu,
            "server_cpu": p.server_cpu, "note": p.note,
            "cmd": common.shown_command(shown, argv)}


def save_pass(ctx, kind, mib, ms, rnd):
    tag = f"{kind}-{mib}-{ms}-{rnd}-{random.randrange(1 << 30):08x}"
    prefix = f"ckpt-{tag}/"
    argv = [str(VENV_PY), str(SELF), "_save", "--kind", kind, "--mib", str(mib),
            "--endpoint", ctx["toxi"].endpoint]
    env, shown, top = dict(ctx["env"]), {}, None
    if kind.startswith("local-"):
        dest = ctx["work"] / "local" / tag / ("model.pt" if kind == "local-torch" else "dcp")
    elif kind.startswith("rw-"):
        top = Path(WRITE_BASE + tag)
        route = top / "ckpt"
        conf = ctx["work"] / f"write-{tag}.conf"
        conf.write_text(ctx["server"].config_text(
            routes=[("write", str(route), f"s3://{BUCKET}/{prefix}",
                     {"spool": ctx["work"] / "spool"})], endpoint=ctx["toxi"].endpoint))
        env, shown = common.rwsplit_env(ctx["server"], ctx["lib"], conf)
        dest = route / ("model.pt" if kind == "rw-torch" else "dcp")
    else:
        dest = f"s3://{BUCKET}/{prefix}" + ("model.pt" if kind == "s3-torch" else "dcp")
    argv += ["--dest", str(dest)]
    os.sync()
    time.sleep(2)
    p = common.timed(argv, env, timeout=900, server_pid=ctx["server"].pid, keep_stdout=True)
    res = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    got = common.key_sizes(ctx["s3"], BUCKET, prefix)
    ok = p.ok and bool(res) and (bool(got) or kind.startswith("local-"))
    if kind.startswith("local-"):
        shutil.rmtree(ctx["work"] / "local" / tag, ignore_errors=True)
        res["durable_s"] = None
    elif kind.endswith("torch"):
        ok = ok and got.get("model.pt", 0) > mib * MiB
    else:
        ok = ok and any(k.endswith(".metadata") for k in got)
    out = {"ok": ok, "save": res.get("save_s"), "note": p.note,
           "durable": res.get("durable_s"), "exit": p.seconds,
           "objects": len(got), "bytes": sum(got.values()), "client_cpu": p.client_cpu,
           "cmd": common.shown_command(shown, argv)}
    if top:
        kill_tree_agents(str(top), signal.SIGTERM, name_prefix=True)
        shutil.rmtree(top, ignore_errors=True)
    for k in got:
        ctx["s3"].delete_object(Bucket=BUCKET, Key=prefix + k)
    return out


def med(vals):
    vals = sorted(v for v in vals if v is not None)
    return vals[len(vals) // 2] if vals else None


def fmt(x, d=2):
    return "–" if x is None else f"{x:.{d}f}"


def report(args, facts, reads, saves, nfiles, total, elapsed):
    out = ["# rwsplit benchmark: against s3torchconnector (PyTorch)", "",
           f"Generated by `{common.command_line('bench/torch_peer.py', sys.argv[1:])}` in "
           f"{elapsed:.0f} s. Do not edit by hand: run it again.", "",
           __doc__.split("\n\n", 1)[1].strip(), "", "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in facts]
    out += ["", f"Data set: {nfiles} PNG files, {total / 1e6:.0f} MB.", "",
            "## Reads: one cold DataLoader epoch (median seconds of --runs, wall clock of "
            "the whole job; in brackets client CPU s, agent included)", "",
            "| client | workers | " + " | ".join(f"+{ms} ms" for ms in args.latency) +
            " | " + " | ".join(f"files/s at +{ms} ms" for ms in args.latency) + " |",
            "|---|---|" + "---|" * (2 * len(args.latency))]
    for label, kind in READ_KINDS:
        for w in args.workers:
            cells, rates = [], []
            for ms in args.latency:
                ps = reads.get((kind, w, ms), [])
                s = med([p["seconds"] for p in ps if p["ok"]])
                c = med([p["client_cpu"] for p in ps if p["ok"]])
                bad = sum(not p["ok"] for p in ps)
                cells.append(f"{fmt(s)} ({fmt(c, 1)})" + (f" {bad} failed" if bad else ""))
                rates.append(fmt(nfiles / s if s else None, 0))
            out.append(f"| {label} | {w} | " + " | ".join(cells) + " | " + " | ".join(rates)
                       + " |")
    out += ["", "### rwsplit as a ratio (s3torchconnector's seconds / rwsplit's: above 1 "
            "is rwsplit faster)", "", "| rwsplit row | against | workers | " +
            " | ".join(f"+{ms} ms" for ms in args.latency) + " |",
            "|---|---|---|" + "---|" * len(args.latency)]
    pairs = [("rw-files", "s3-map"), ("rw-files", "s3-iter"), ("rw-imagefolder", "s3-map-pil")]
    names = dict((k, lbl) for lbl, k in READ_KINDS)
    for rw, peer in pairs:
        for w in args.workers:
            cells = []
            for ms in args.latency:
                a = med([p["seconds"] for p in reads.get((rw, w, ms), []) if p["ok"]])
                b = med([p["seconds"] for p in reads.get((peer, w, ms), []) if p["ok"]])
                cells.append(f"{b / a:.2f}×" if a and b else "–")
            out.append(f"| {names[rw]} | {names[peer]} | {w} | " + " | ".join(cells) + " |")
    out += ["", "Targets (issue 17, cold small files vs s3torchconnector, same DataLoader "
            "shape): ≥ 1.2× at 0 ms and ≥ 2× at 10 ms.", ""]
    if saves:
        out += [f"## Checkpoint saves (median seconds of {args.save_runs} passes: save returns / "
                "durable)", "",
                "| save | client | " + " | ".join(f"+{ms} ms" for ms in args.latency) + " |",
                "|---|---|" + "---|" * len(args.latency)]
        labels = {"local-torch": "local disk, torch.save",
                  "local-dcp": "local disk, dcp.save (its default sync_files: fsync)",
                  "rw-torch": "rwsplit write route, torch.save",
                  "s3-torch": "s3torchconnector S3Checkpoint, torch.save",
                  "rw-dcp": "rwsplit write route, dcp.save",
                  "s3-dcp": "s3torchconnector S3StorageWriter, dcp.save"}
        for mib in args.save_mib:
            for kind in SAVE_KINDS:
                cells = []
                for ms in args.latency:
                    ps = saves.get((kind, mib, ms), [])
                    good = [p for p in ps if p["ok"]]
                    bad = len(ps) - len(good)
                    cells.append(f"{fmt(med([p['save'] for p in good]))} / "
                                 f"{fmt(med([p['durable'] for p in good]))}"
                                 + (f" ({bad} failed: {ps[0]['note'][:80]})" if bad else ""))
                out.append(f"| {mib} MiB | {labels[kind]} | " + " | ".join(cells) + " |")
        out += ["", "### rwsplit's ratios (medians)", "",
                "| save | ratio | " + " | ".join(f"+{ms} ms" for ms in args.latency) + " |",
                "|---|---|" + "---|" * len(args.latency)]

        def m(kind, mib, ms, what):
            return med([p[what] for p in saves.get((kind, mib, ms), []) if p["ok"]])
        for mib in args.save_mib:
            for api, rw, loc, peer in (("torch.save", "rw-torch", "local-torch", "s3-torch"),
                                       ("dcp.save", "rw-dcp", "local-dcp", "s3-dcp")):
                for label, num, den in (
                        ("save / local disk's save (target ≤ 1.1×)",
                         lambda ms: m(rw, mib, ms, "save"), lambda ms: m(loc, mib, ms, "save")),
                        ("durable / s3torchconnector's (target ≤ 1.0×)",
                         lambda ms: m(rw, mib, ms, "durable"),
                         lambda ms: m(peer, mib, ms, "durable"))):
                    cells = []
                    for ms in args.latency:
                        a, b = num(ms), den(ms)
                        cells.append(f"{a / b:.2f}×" if a and b else "–")
                    out.append(f"| {mib} MiB {api} | {label} | " + " | ".join(cells) + " |")
        out += ["", "DCP's `FileSystemWriter` fsyncs every file it writes by default "
                "(`sync_files=True`), and an fsync on a write route returns once the file is "
                "in the store: rwsplit's dcp.save is therefore as long as its upload.", ""]
    out += ["## Exact commands (first pass of each row)", ""]
    seen = set()
    for group in (reads, saves):
        for key, ps in group.items():
            if ps and key[0] not in seen:
                seen.add(key[0])
                out.append(f"- {key[0]}: `{ps[0]['cmd']}`")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("_read", "_save"):
        return child(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=1, help="read passes per row")
    ap.add_argument("--save-runs", type=int, default=3, help="save passes per row")
    ap.add_argument("--workers", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--latency", type=int, nargs="+", default=[0, 10])
    ap.add_argument("--save-mib", type=int, nargs="*", default=[256, 1024])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--quick", action="store_true",
                    help="400 files, 4 workers, a 64 MiB save, one run")
    args = ap.parse_args()
    if args.quick:
        args.files, args.workers, args.save_mib, args.runs, args.save_runs = 400, [4], [64], 1, 1
    lib = Path(args.build).resolve() / "lib" / "librwsplit.so"
    try:
        import s3torchconnector  # noqa: F401
    except ImportError:
        sys.exit("torch_peer: s3torchconnector is missing (scripts/bench-deps.sh)")
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rwbench-peer-", dir="/var/tmp"))
    (work / "spool").mkdir()
    server = mc = toxi = None
    try:
        log(f"making {args.files} images in {work}/src")
        want = make_images(work / "src", args.files, args.seed)
        total = sum((work / "src" / r).stat().st_size for r in want)
        manifest = work / "manifest.json"
        manifest.write_text(json.dumps(want))
        server = MinioServer().start()
        mc = Mc(server)
        common.upload_tree(mc, server, work / "src", BUCKET, PREFIX, args.files, total, 900)
        toxi = Toxiproxy(server.port, work).start()
        env = server.child_env({"AWS_REGION": REGION})
        ctx = {"server": server, "toxi": toxi, "lib": lib, "work": work, "env": env,
               "manifest": manifest, "s3": server.boto3_client()}
        import s3torchconnector as s3tc_mod
        facts = common.host_facts() + [
            ("rwsplit", common.lib_fact(lib)), ("MinIO", server.endpoint),
            ("s3torchconnector", getattr(s3tc_mod, "__version__", "?")),
            ("Toxiproxy", f"{toxi.endpoint} → 127.0.0.1:{server.port}")]
        reads, saves = {}, {}
        for ms in args.latency:
            common.set_store_latency(toxi, ms, ("downstream", "upstream"))
            for rnd in range(args.runs):
                for _, kind in (READ_KINDS if rnd % 2 == 0 else READ_KINDS[::-1]):
                    for w in args.workers:
                        p = read_pass(ctx, kind, w, ms)
                        reads.setdefault((kind, w, ms), []).append(p)
                        log(f"+{ms} ms {kind} w{w}: {fmt(p['seconds'])} s, cpu "
                            f"{fmt(p['client_cpu'], 1)} {'ok' if p['ok'] else 'FAILED ' + p['note']}")
            for rnd in range(args.save_runs):
                for mib in args.save_mib:
                    for kind in SAVE_KINDS:
                        p = save_pass(ctx, kind, mib, ms, rnd)
                        saves.setdefault((kind, mib, ms), []).append(p)
                        log(f"+{ms} ms {kind} {mib} MiB: save {fmt(p['save'])} durable "
                            f"{fmt(p['durable'])} {'ok' if p['ok'] else 'FAILED ' + p['note']}")
        body = report(args, facts, reads, saves, args.files, total, time.monotonic() - t0)
        replace_section(args.out, "torch-peer", body)
        common.save_json("torch_peer", {
            "title": "Cold DataLoader epoch (s), 4 workers", "unit": "s",
            "lower_is_better": True,
            "groups": [{"label": f"+{ms} ms", "values": {
                lbl: med([p["seconds"] for p in reads.get((k, 4, ms), []) if p["ok"]])
                for lbl, k in READ_KINDS}} for ms in args.latency]}, trial=args.quick)
        log(f"wrote section torch-peer of {args.out}")
    finally:
        if toxi:
            toxi.stop()
        common.release(server, mc, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
