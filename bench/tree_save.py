#!/usr/bin/env python3
"""Checkpoint save into a write-route tree: how long a save takes to return, and how long until
it is durable in the store, side by side with the same save to local disk.

    .tools/venv/bin/python bench/tree_save.py [--files 200] [--big-mib 1024] [--tf-mib 256]
        [--runs 3]
        [--seed 1] [--latency-ms 10] [--toxic-streams both] [--out bench/RESULTS.md]
        [--build build] [--no-warm] [--no-warmup]

Shapes (random bytes, os.urandom; sizes from --seed):
- *sharded*: --files files of 1..8 MiB, written into a new directory one after the other;
- *big*: one file of --big-mib MiB;
- *tf*: a TensorFlow CheckpointManager save (max_to_keep 2) of a --tf-mib MiB model, the third
  of three saves in one process timed, TF_GAP_S after the others (TensorFlow's own temp
  names, renames and deletes).

Targets:
- *local disk*: a temp dir under /var/tmp (the filesystem of /mnt);
- *rwsplit, MinIO direct*: a write route /mnt/rwbench-tree-<random>/ckpt (a fresh route path
  and key prefix for every pass) -> s3://BUCKET/<pass>/, spool in a temp dir, endpoint MinIO;
- *rwsplit, Toxiproxy +N ms*: the same, endpoint a Toxiproxy in front of MinIO with a latency
  toxic of --latency-ms on the downstream (and the upstream with --toxic-streams both).

Every save is a fresh .tools/venv/bin/python process running this script's `_child` mode: it
maps the sources into memory (MAP_POPULATE, untimed), makes the destination's directory
(untimed: on a route this starts the tree's agent), warms memory as bench/checkpoint_child.py
does (untimed, --no-warm turns it off), then writes each file with open / 8 MiB os.write calls
/ close and prints time.monotonic() stamps as JSON. save = open of the first file -> close of
the last; durable = open of the first file -> the child's exit as the parent sees it (a
preloaded process's normal exit waits until every closed file of the tree is in the store).
After each rwsplit pass (untimed): boto3 lists the prefix (every key, right size, nothing
else), the tree is compared with the sources (names, sizes), the pass's agent is killed, the
tree and the objects removed. One warm-up round (not counted) comes first; then --runs
rounds, rows interleaved. Writes section `tree-save` of --out and bench/results/tree_save.json.
"""

import sys

MiB = 1 << 20
CHUNK = 8 * MiB


def child_main(argv):
    """The timed save (stdlib only, so the preloaded process does little besides it)."""
    import argparse
    import json
    import mmap
    import os
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("--src", required=True)
    ap.add_argument("--warm", type=int, default=0)
    ap.add_argument("--warm-dir")
    ap.add_argument("--tf-mib", type=int, default=0)
    a = ap.parse_args(argv)
    t_start = time.monotonic()
    if a.tf_mib:
        return tf_child(a, t_start)
    if os.path.isdir(a.src):
        names = sorted(os.listdir(a.src))
        pairs = [(os.path.join(a.src, n), os.path.join(a.dest, n)) for n in names]
        outdir = a.dest
    else:
        pairs = [(a.src, a.dest)]
        outdir = os.path.dirname(a.dest)
    bufs = []
    for s, _ in pairs:
        with open(s, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            bufs.append(mmap.mmap(f.fileno(), size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                                  prot=mmap.PROT_READ))
    os.makedirs(outdir, exist_ok=True)
    t_mkdir = time.monotonic()
    if a.warm:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from bench.checkpoint_child import warm_memory
        warm_memory(a.warm, a.warm_dir)
    total = 0
    t_open = time.monotonic()
    for (_, d), buf in zip(pairs, bufs):
        fd = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        mv = memoryview(buf)
        off = 0
        while off < len(mv):
            off += os.write(fd, mv[off:off + CHUNK])
        mv.release()
        os.close(fd)
        total += off
    t_close = time.monotonic()
    print(json.dumps({"t_start": t_start, "t_mkdir": t_mkdir, "t_open": t_open,
                      "t_close": t_close, "save_s": t_close - t_open, "bytes": total,
                      "files": len(pairs)}), flush=True)
    return 0


def tf_child(a, t_start):
    """TF_SAVES saves of a tf.train.CheckpointManager (max_to_keep 2, as the TF example) of
    a --tf-mib MiB model into dest; the last one is timed (steady state: it also deletes the
    oldest checkpoint)."""
    import json
    import os
    import time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    nvars = 16
    per = a.tf_mib * MiB // 4 // nvars
    rng = np.random.default_rng(1)
    variables = [tf.Variable(rng.standard_normal(per, dtype=np.float32), name=f"w{i}")
                 for i in range(nvars)]
    ckpt = tf.train.Checkpoint(step=tf.Variable(0), weights=variables)
    os.makedirs(a.dest, exist_ok=True)
    manager = tf.train.CheckpointManager(ckpt, a.dest, max_to_keep=2)
    t_mkdir = time.monotonic()
    if a.warm:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from bench.checkpoint_child import warm_memory
        warm_memory(a.warm, a.warm_dir)
    for _ in range(TF_SAVES - 1):
        ckpt.step.assign_add(1)
        manager.save()
    for v in variables:
        v.assign_add(tf.ones_like(v))
    ckpt.step.assign_add(1)
    time.sleep(TF_GAP_S)  # the training steps between two saves
    t_open = time.monotonic()
    manager.save()
    t_close = time.monotonic()
    print(json.dumps({"t_start": t_start, "t_mkdir": t_mkdir, "t_open": t_open,
                      "t_close": t_close, "save_s": t_close - t_open,
                      "bytes": a.tf_mib * MiB, "files": 0}), flush=True)
    return 0


TF_SAVES = 3
# Seconds between the untimed saves and the timed one, as training steps between saves would
# be: the earlier saves' uploads are not what the timed one is measured against.
TF_GAP_S = 5

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "_child":
    sys.exit(child_main(sys.argv[2:]))

# -- the parent ---------------------------------------------------------------------------

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (VENV_PY, command_line, fmt, fs_type, host_facts,  # noqa: E402
                          key_sizes, lib_fact, load_average, log, save_json,
                          set_store_latency, stats)
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import Mc, MinioServer, free_port  # noqa: E402
from tests.harness.proc import kill_tree_agents  # noqa: E402
from tests.harness.toxiproxy import TOXI_BIN, Toxiproxy  # noqa: E402

SECTION = "tree-save"
SELF = Path(__file__).resolve()
ROUTE_BASE = "/mnt/rwbench-tree-"
BUCKET = "rwbench-tree"
PASS_TIMEOUT = 600
TARGET = 1.1
WARM_FACTOR = 1.25
# Seconds of rest (after sync) before each pass, as bench/checkpoint.py's SETTLE: the previous
# pass's cleanup frees ~1 GiB (its tree, its objects); with free page reporting (virtio-balloon)
# a reporting cycle starts ~2 s after a large free, and one that fires during a save took 2 s
# saves here with 1 s of rest (any row).
SETTLE = 2.5
SUMMARY_RE = re.compile(r"write summary:[^\n]*")
PROBLEM_RE = re.compile(r"^rwsplit\[\d+\] (?:error|warn)[^\n]*", re.MULTILINE)


@dataclass
class Shape:
    tag: str
    label: str
    src: Path
    is_dir: bool
    sizes: dict                     # relative name -> size; for tf, {"model": bytes}
    tf_mib: int = 0                 # a TensorFlow CheckpointManager save of this many MiB

    @property
    def total(self):
        return sum(self.sizes.values())


@dataclass
class Pass:
    row: str
    shape: str
    round: int
    ok: bool
    note: str = ""
    save_s: float = None
    durable_s: float = None
    exit_wait_s: float = None       # last close -> exit
    prep_s: float = None            # start -> mkdir done (route: agent start)
    summary: str = ""
    agent_log: str = ""


@dataclass
class Row:
    name: str
    kind: str                       # "local" or "rwsplit"
    endpoint: str = ""
    passes: list = field(default_factory=list)


def make_shapes(src, nfiles, big_mib, seed, tf_mib):
    rng = random.Random(seed)
    sharded = src / "sharded"
    sharded.mkdir(parents=True)
    sizes = {}
    for i in range(nfiles):
        n = rng.randint(MiB, 8 * MiB)
        name = f"shard-{i:03d}.bin"
        with open(sharded / name, "wb") as f:
            f.write(os.urandom(n))
        sizes[name] = n
    big = src / "big.bin"
    with open(big, "wb") as f:
        for _ in range(big_mib // 8):
            f.write(os.urandom(8 * MiB))
        if big_mib % 8:
            f.write(os.urandom((big_mib % 8) * MiB))
    big_label = f"{big_mib // 1024} GiB file" if big_mib % 1024 == 0 else f"{big_mib} MiB file"
    shapes = [Shape("sharded", f"{nfiles} files 1–8 MiB", sharded, True, sizes),
              Shape("big", big_label, big, False, {"big.bin": big_mib * MiB})]
    if tf_mib:
        shapes.append(Shape("tf", f"TensorFlow save of {tf_mib} MiB", src, True,
                            {"model": tf_mib * MiB}, tf_mib))
    return shapes


# -- Toxiproxy ----------------------------------------------------------------------------


def start_toxiproxy(work, upstream_port, latency_ms, streams):
    """tests/harness/toxiproxy with a latency toxic on the chosen stream(s)."""
    toxi = Toxiproxy(upstream_port, work).start()
    set_store_latency(toxi, latency_ms,
                      ("downstream", "upstream") if streams == "both" else (streams,))
    return toxi


# -- agents -------------------------------------------------------------------------------


def kill_agents(tree):
    """Stops the agents whose tree's path starts with tree (SIGTERM, SIGKILL after 10 s)."""
    return kill_tree_agents(tree, signal.SIGTERM, name_prefix=True)


# -- a pass -------------------------------------------------------------------------------


def run_child(argv, env):
    """(json dict or None, stderr, exit monotonic, note)."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
    try:
        out, err = p.communicate(timeout=PASS_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, err.decode(errors="replace"), time.monotonic(), "timeout"
    t_exit = time.monotonic()
    err = err.decode(errors="replace")
    if p.returncode != 0:
        return None, err, t_exit, f"exit status {p.returncode}"
    try:
        return json.loads(out.decode().strip().splitlines()[-1]), err, t_exit, ""
    except (ValueError, IndexError):
        return None, err, t_exit, "no JSON from the child"


def tree_sizes(root):
    got = {}
    for dirpath, _, files in os.walk(root):
        for n in files:
            p = Path(dirpath) / n
            got[str(p.relative_to(root))] = p.stat().st_size
    return got


def delete_prefix(s3, prefix):
    keys = [{"Key": prefix + k} for k in key_sizes(s3, BUCKET, prefix)]
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[i:i + 1000], "Quiet": True})


def expected(shape, root=None):
    """{path relative to the route root: size} of a save of shape (for tf: what the tree
    at root holds, which TensorFlow chose)."""
    if shape.tf_mib:
        return {f"tf/{k}": v for k, v in tree_sizes(Path(root) / "tf").items()}
    if shape.is_dir:
        return {f"{shape.tag}/{n}": s for n, s in shape.sizes.items()}
    return {f"{shape.tag}.bin": shape.total}


def dest_of(root, shape):
    return Path(root) / (shape.tag if shape.is_dir else f"{shape.tag}.bin")


def warm_args(ctx, shape, warm_dir):
    tf = ["--tf-mib", str(shape.tf_mib)] if shape.tf_mib else []
    return tf + (["--warm", str(int(WARM_FACTOR * shape.total)), "--warm-dir", str(warm_dir)]
                 if ctx.warm else [])


@dataclass
class Ctx:
    server: object
    s3: object
    lib: Path
    work: Path
    spool: Path
    logs: Path
    warm: bool
    route_opts: dict = field(default_factory=dict)
    agent_log: str = ""
    shown: dict = field(default_factory=dict)   # row name -> example command line


def local_pass(ctx, row, shape, rnd):
    d = ctx.work / "local" / f"r{rnd}"
    dest = dest_of(d, shape)
    argv = [str(VENV_PY), str(SELF), "_child", str(dest), "--src", str(shape.src),
            *warm_args(ctx, shape, ctx.work / "local")]
    env = ctx.server.child_env({"LD_PRELOAD": None, "RWSPLIT_CONFIG": None})
    ctx.shown.setdefault(row.name, " ".join(argv))
    os.sync()
    time.sleep(SETTLE)
    res, err, t_exit, note = run_child(argv, env)
    p = Pass(row.name, shape.tag, rnd, res is not None, note)
    if res:
        p.save_s, p.exit_wait_s = res["save_s"], t_exit - res["t_close"]
        p.prep_s = res["t_mkdir"] - res["t_start"]
        got = tree_sizes(d)
        if got != expected(shape, d) or (shape.tf_mib and not got):
            p.ok, p.note = False, f"local copy differs: {len(got)} files"
    else:
        p.note += ": " + err[-300:]
    shutil.rmtree(d, ignore_errors=True)
    return p


def rwsplit_pass(ctx, row, shape, rnd):
    tag = secrets.token_hex(5)
    top = Path(ROUTE_BASE + tag)
    route = top / "ckpt"
    prefix = f"{row.kind}-{tag}/{shape.tag}-r{rnd}/"
    conf = ctx.work / f"rwsplit-{tag}.conf"
    conf.write_text(ctx.server.config_text(
        routes=[("write", str(route), f"s3://{BUCKET}/{prefix}",
                 {"spool": ctx.spool, **ctx.route_opts})],
        endpoint=row.endpoint))
    shown = {"LD_PRELOAD": str(ctx.lib), "RWSPLIT_CONFIG": str(conf), "RWSPLIT_LOG": "info"}
    if ctx.agent_log:
        shown["RWSPLIT_AGENT_LOG"] = ctx.agent_log
    env = ctx.server.child_env(shown)
    argv = [str(VENV_PY), str(SELF), "_child", str(dest_of(route, shape)), "--src",
            str(shape.src), *warm_args(ctx, shape, ctx.work)]
    ctx.shown.setdefault(row.name, " ".join(f"{k}={v}" for k, v in shown.items()) + " "
                         + " ".join(argv))
    os.sync()
    time.sleep(SETTLE)
    res, err, t_exit, note = run_child(argv, env)
    p = Pass(row.name, shape.tag, rnd, res is not None, note)
    m = SUMMARY_RE.search(err)
    p.summary = m.group(0) if m else ""
    problems = PROBLEM_RE.findall(err)
    if res:
        p.save_s, p.durable_s = res["save_s"], t_exit - res["t_open"]
        p.exit_wait_s, p.prep_s = t_exit - res["t_close"], res["t_mkdir"] - res["t_start"]
        want = expected(shape, route)
        got = key_sizes(ctx.s3, BUCKET, prefix)
        if got != want:
            missing = [k for k in want if got.get(k) != want[k]]
            p.ok, p.note = False, (f"bucket at exit: {len(got)} objects, {len(missing)} "
                                   f"missing or wrong size, {len(set(got) - set(want))} extra")
        local = tree_sizes(route)
        if local != want or not want:
            p.ok, p.note = False, (p.note + "; " if p.note else "") + \
                f"tree differs from the sources ({len(local)} files)"
        if problems:
            p.note = (p.note + "; " if p.note else "") + problems[0][:200]
    else:
        p.note += ": " + err[-300:]
    # the agent log of this tree (SPOOL/u<uid>/<id>/agent.log): the newest one
    logs = sorted(ctx.spool.glob("u*/*/agent.log"), key=lambda x: x.stat().st_mtime)
    if logs:
        keep = ctx.logs / f"{row.kind}-{shape.tag}-r{rnd}-{tag}.agent.log"
        shutil.copy(logs[-1], keep)
        p.agent_log = str(keep)
    (ctx.logs / f"{row.kind}-{shape.tag}-r{rnd}-{tag}.stderr").write_text(err)
    kill_agents(str(top))
    shutil.rmtree(top, ignore_errors=True)
    delete_prefix(ctx.s3, prefix)
    return p


# -- report -------------------------------------------------------------------------------


def med(passes, attr):
    return stats([getattr(p, attr) for p in passes if p.ok and getattr(p, attr) is not None])


def report(args, rows, shapes, ctx, facts, elapsed, toxics):
    cmd = command_line("tree_save.py", sys.argv[1:]).rstrip()
    out = ["# rwsplit benchmark: checkpoint save into a write-route tree", "",
           f"Generated by `{cmd}` in {elapsed:.0f} s. Do not edit by hand: run it again.", "",
           "A save is a fresh `.tools/venv/bin/python bench/tree_save.py _child` process: "
           "sources mapped into memory (`MAP_POPULATE`, untimed), destination directory made "
           "(untimed; on a route this starts the tree's agent)"
           + (", memory warmed as `bench/checkpoint_child.py` does (untimed)" if ctx.warm else "")
           + ", then every file written with open / 8 MiB `os.write` / close. *save* = open "
           "of the first file → close of the last (`time.monotonic` in the child); *durable* "
           "= open of the first file → the child's exit as the parent sees it (a preloaded "
           "process's normal exit waits until every closed file of the tree is in the "
           "store). After each rwsplit pass (untimed) boto3 lists the prefix (every key with "
           "the right size, nothing else) and the tree is compared with the sources. Each "
           "rwsplit pass has a fresh route path `/mnt/rwbench-tree-<random>/ckpt` and key "
           "prefix; its agent is killed and its tree and objects removed after the checks. "
           + ("One warm-up round (not counted) first; then " if not args.no_warmup else "")
           + f"{args.runs} round(s), rows interleaved; `sync` and {SETTLE} s of rest before every "
           "pass (see SETTLE in the script). "
           "Medians (min–max) of the successful passes, seconds.", "",
           "## Machine and setup", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in facts]
    out += [f"| Toxiproxy toxics | {toxics} |", f"| load average at end | {load_average()} |",
            "", "## Shapes", ""]
    for s in shapes:
        if s.tf_mib:
            out.append(f"- **{s.label}**: `tf.train.CheckpointManager(max_to_keep=2).save()` "
                       f"of 16 float32 variables, {s.tf_mib} MiB in all; the child saves "
                       f"{TF_SAVES} times and times the last, {TF_GAP_S} s after the others "
                       "(steady state: it also deletes the oldest checkpoint); the bucket "
                       "must hold what the tree holds")
            continue
        out.append(f"- **{s.label}**: {len(s.sizes)} file(s), {s.total / MiB:.0f} MiB in all"
                   + (f" (sizes uniform in 1–8 MiB from seed {args.seed})" if s.is_dir else ""))
    local = rows[0]
    out += ["", "## Results", "",
            "| shape | target | save (s) | durable (s) | save / local save (target ≤ "
            f"{TARGET}×) | durable / local save | close → exit (s) | durable MB/s | ok passes |",
            "|---|---|---|---|---|---|---|---|---|"]
    groups_save, groups_dur = [], []
    for s in shapes:
        lsave = med([p for p in local.passes if p.shape == s.tag], "save_s")[0]
        gs, gd = {}, {}
        for r in rows:
            ps = [p for p in r.passes if p.shape == s.tag]
            sv, dv, ev = med(ps, "save_s"), med(ps, "durable_s"), med(ps, "exit_wait_s")
            ok = sum(p.ok for p in ps)

            def cell(t):
                return "–" if t[0] is None else f"{fmt(t[0])} ({fmt(t[1])}–{fmt(t[2])})"
            rs = "–" if sv[0] is None or not lsave else \
                f"{sv[0] / lsave:.3f}×" + ("" if r.kind == "local" else
                                            (" met" if sv[0] / lsave <= TARGET else " **missed**"))
            rd = "–" if dv[0] is None or not lsave else f"{dv[0] / lsave:.2f}×"
            mbs = "–" if dv[0] is None else f"{s.total / dv[0] / 1e6:.0f}"
            out.append(f"| {s.label} | {r.name} | {cell(sv)} | {cell(dv)} | {rs} | {rd} | "
                       f"{fmt(ev[0])} | {mbs} | {ok}/{len(ps)} |")
            if sv[0] is not None:
                gs[r.name] = sv[0]
            if dv[0] is not None:
                gd[r.name] = dv[0]
        groups_save.append({"label": f"{s.label}: save", "values": gs})
        groups_dur.append({"label": f"{s.label}: durable", "values": gd})
    out += ["", "Local disk has no *durable* column: nothing goes to the store. *close → "
            "exit*: the child's last close to its exit (for rwsplit: the wait for the uploads "
            "still queued or in flight). *durable MB/s*: the shape's bytes (10^6) over the "
            "median time to durable.", "", "## rwsplit write summaries (RWSPLIT_LOG=info, "
            "last round)", ""]
    for r in rows[1:]:
        for p in r.passes:
            if p.round == args.runs:
                out.append(f"- {r.name}, {p.shape}: `{p.summary or 'none'}`")
    bad = [p for r in rows for p in r.passes if not p.ok or p.note]
    out += ["", "## Failed passes / notes", ""]
    out += [f"- {p.row}, {p.shape}, round {p.round}: {'ok' if p.ok else 'FAILED'}: {p.note}"
            for p in bad] or ["none"]
    out += ["", "## Exact commands", "", f"- the script: `{cmd}`"]
    out += [f"- **{k}** (first pass): `{v}`" for k, v in ctx.shown.items()]
    out += ["", "## Every pass (seconds: save / durable / close → exit; w = warm-up, "
            "x = failed)", "", "| target | shape | round | save | durable | close → exit | "
            "untimed prep |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        for p in r.passes:
            rn = "w" if p.round == 0 else str(p.round)
            out.append(f"| {r.name} | {p.shape} | {rn}{'' if p.ok else ' x'} | {fmt(p.save_s)} "
                       f"| {fmt(p.durable_s)} | {fmt(p.exit_wait_s)} | {fmt(p.prep_s)} |")
    return "\n".join(out) + "\n", groups_save, groups_dur, cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency-ms", type=int, default=10)
    ap.add_argument("--tf-mib", type=int, default=256,
                    help="size of the TensorFlow save shape (0: none)")
    ap.add_argument("--shapes", default="sharded,big,tf",
                    help="which shapes to run, comma-separated (diagnostics)")
    ap.add_argument("--toxic-streams", choices=("both", "downstream", "upstream"),
                    default="both")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--no-warm", action="store_true", help="no memory warm-up in the child")
    ap.add_argument("--no-warmup", action="store_true", help="no warm-up round")
    ap.add_argument("--route-option", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra [write] key for the route (diagnostics, e.g. upload_delay=5s)")
    ap.add_argument("--agent-log", default="", metavar="LEVEL",
                    help="RWSPLIT_AGENT_LOG for the agents (their log: the kept agent.log)")
    ap.add_argument("--quick", action="store_true",
                    help="20 files, a 64 MiB file, a 32 MiB TensorFlow save, one round, no warm-up")
    args = ap.parse_args()
    if args.quick:
        args.files, args.big_mib, args.tf_mib, args.runs, args.no_warmup = 20, 64, 32, 1, True
    lib = Path(args.build).resolve() / "lib" / "librwsplit.so"
    for need in (lib, TOXI_BIN, VENV_PY):
        if not Path(need).exists():
            sys.exit(f"tree_save: {need} is missing (make; scripts/bench-deps.sh)")
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rwbench-tree-", dir="/var/tmp"))
    logs = Path(tempfile.mkdtemp(prefix="rwbench-tree-logs-", dir="/tmp"))
    if os.stat(work).st_dev != os.stat("/mnt").st_dev:
        log(f"warning: {work} is not on the filesystem of /mnt")
    spool = work / "spool"
    spool.mkdir()
    (work / "local").mkdir()
    server = toxi = mc = None
    try:
        log(f"making the sources in {work}/src")
        shapes = [s for s in make_shapes(work / "src", args.files, args.big_mib, args.seed,
                                         args.tf_mib) if s.tag in args.shapes.split(",")]
        server = MinioServer().start()
        mc = Mc(server)
        mc.mb(BUCKET)
        s3 = server.boto3_client()
        toxi = start_toxiproxy(work, server.port, args.latency_ms, args.toxic_streams)
        toxics = "; ".join(f"{t['name']}: {t['attributes']['latency']} ms"
                           for t in toxi.toxics())
        tox_name = (f"rwsplit, Toxiproxy +{args.latency_ms} ms "
                    f"({'both ways' if args.toxic_streams == 'both' else args.toxic_streams})")
        rows = [Row("local disk", "local"),
                Row("rwsplit, MinIO direct", "direct", server.endpoint),
                Row(tox_name, "toxi", toxi.endpoint)]
        facts = host_facts() + [
            ("rwsplit", lib_fact(lib)),
            ("MinIO", f"{server.endpoint}, data {server.data_dir} ({fs_type(server.data_dir)})"),
            ("Toxiproxy", f"{TOXI_BIN.name} "
             f"{(TOXI_BIN.parent / '.toxiproxy-server.version').read_text().strip()}"
             f", {toxi.endpoint} → 127.0.0.1:{server.port}"),
            ("local disk dir", f"{work}/local ({fs_type(work)})"),
            ("spool", str(spool)), ("agent logs and child stderr kept in", str(logs)),
            ("route options", ", ".join(f"{k} = {v}" for k, v in
                                        (o.split("=", 1) for o in args.route_option))
             or "the defaults"),
            ("load average at start", load_average())]
        ctx = Ctx(server, s3, lib, work, spool, logs, not args.no_warm,
                  dict(o.split("=", 1) for o in args.route_option), args.agent_log)
        rounds = ([0] if not args.no_warmup else []) + list(range(1, args.runs + 1))
        for rnd in rounds:
            for s in shapes:
                order = rows if rnd % 2 else rows[::-1]
                for r in order:
                    fn = local_pass if r.kind == "local" else rwsplit_pass
                    p = fn(ctx, r, s, rnd)
                    log(f"round {rnd} {s.tag:7s} {r.name}: save {fmt(p.save_s)} durable "
                        f"{fmt(p.durable_s)} {'ok' if p.ok else 'FAILED ' + p.note}")
                    if rnd:
                        r.passes.append(p)
                    elif not p.ok:
                        log(f"warm-up pass failed: {p.note}")
        body, gs, gd, cmd = report(args, rows, shapes, ctx, facts, time.monotonic() - t0,
                                   toxics)
        replace_section(args.out, SECTION, body)
        save_json("tree_save", {
            "title": "checkpoint save into a write-route tree (s)", "unit": "s",
            "lower_is_better": True, "groups": gs + gd, "command": cmd,
            "passes": [p for r in rows for p in r.passes]}, trial=args.quick)
        print(body)
    finally:
        kill_agents(ROUTE_BASE)
        if toxi:
            toxi.stop()
        if mc:
            mc.close()
        if server:
            server.stop()
        for d in Path("/mnt").glob("rwbench-tree-*"):
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
