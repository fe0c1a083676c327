#!/usr/bin/env python3
"""The process bench/checkpoint.py times: a training loop's checkpoint save, or the save and
upload a training loop does without rwsplit.

    checkpoint_child.py save DEST --src SRC [--fsync] [WARM]
    checkpoint_child.py fallback DEST --src SRC --bucket B --key K [WARM]

SRC is the checkpoint: one file, or a directory of files (a sharded checkpoint). DEST is then
a new file, or a directory to write every file of SRC into (made before timing; on a write
route, mkdir is virtual).

save:     the checkpoint (SRC's bytes, mapped into memory first, untimed) is written in 8 MiB
          os.write calls and closed (with os.fsync first if --fsync), file after file in SRC's
          sorted order; the open of the first file -> the close of the last is timed here, in
          the process, as a training loop would see it.
fallback: what a training loop does without rwsplit: save to local disk (as save), then
          upload DEST with boto3 before going on; both steps are timed, each by itself. The
          upload: upload_file (default TransferConfig) to key K, or, for a directory, every
          file to K/NAME from a ThreadPoolExecutor of 8 threads (one upload_file per file).
          The client is made and a HeadBucket sent before anything is timed, as a training
          loop's client would be warm.

WARM = --warm BYTES --warm-dir DIR: before timing, write and unlink a scratch file of BYTES in
DIR (see warm_memory).

Prints one JSON line: wall-clock stamps (time.time(), so the parent can compare them with the
moment it saw the process exit) and perf_counter durations. Only the standard library and
boto3, so the preloaded process does as little as possible besides the save.
"""

import argparse
import json
import mmap
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

CHUNK = 8 << 20                     # bytes per write(): what a framework's save does
UPLOAD_THREADS = 8                  # a training script's pool for a sharded checkpoint


def members(src):
    """[(name, path)] of the checkpoint's files: SRC itself, or the files of directory SRC."""
    if os.path.isdir(src):
        return [(n, os.path.join(src, n)) for n in sorted(os.listdir(src))]
    return [(os.path.basename(src), src)]


def load(src):
    """[(name, buffer)]: the checkpoint in memory before the save starts (not timed).

    Each file is mapped with MAP_POPULATE: its page cache (read in now if it is not there)
    mapped into the process with every page-table entry made, so the save copies from memory
    as from a tensor's buffer. A read() into new process memory would cost as much again in
    first touches of memory the host has taken back (see warm_memory), for nothing timed."""
    out = []
    for name, path in members(src):
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
            out.append((name, mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)
                        if size else b""))
    return out


def warm_memory(nbytes, directory):
    """Makes the page cache hand the save memory the host has backed (not timed).

    In a VM with free page reporting (virtio-balloon), memory that stayed free for about 2 s
    goes back to the host, and its next first touch costs a fault in the host per page: the
    same 256 MiB save into the page cache then takes 0.06 s or 1 s depending on what ran before
    it. Pages freed a moment ago are the ones the kernel hands out next, and the page cache
    takes its pages (large folios on ext4) from other free lists than a process's own memory,
    so the warm-up does what the save does: a scratch file of nbytes in directory (on the
    save's filesystem), written and unlinked before writeback, so it costs no disk I/O."""
    if not nbytes:
        return
    chunk = b"\x01" * CHUNK
    scratch = os.path.join(directory, f".warm-{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        off = 0
        while off < nbytes:
            off += os.write(fd, chunk[:nbytes - off])
    finally:
        os.close(fd)
        os.unlink(scratch)


def save(dest, files, fsync, is_dir):
    """Every file: open, 8 MiB writes, optional fsync, close. Returns the stamps of the first
    open and the last close, the whole save's seconds and each step's summed over the files
    (to see where a difference between rows comes from)."""
    if is_dir:
        os.makedirs(dest, exist_ok=True)          # before timing: the save is the files
    steps = dict.fromkeys(("open_s", "write_s", "fsync_s", "close_s"), 0.0)
    out = {"t_open": time.time()}
    t_start = time.perf_counter()
    for name, data in files:
        mv = memoryview(data)
        t0 = time.perf_counter()
        fd = os.open(os.path.join(dest, name) if is_dir else dest,
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        t1 = t2 = t3 = time.perf_counter()
        try:
            off = 0
            while off < len(mv):
                off += os.write(fd, mv[off:off + CHUNK])   # a short write goes on from there
            t2 = t3 = time.perf_counter()
            if fsync:
                os.fsync(fd)
                t3 = time.perf_counter()
        finally:
            os.close(fd)
        t4 = time.perf_counter()
        for k, v in (("open_s", t1 - t0), ("write_s", t2 - t1), ("fsync_s", t3 - t2),
                     ("close_s", t4 - t3)):
            steps[k] += v
    out.update(t_close=time.time(), save_s=time.perf_counter() - t_start, **steps)
    return out


def client(args):
    """A boto3 client as a training script makes one (defaults but path addressing, which
    MinIO on an IP address needs), warmed up with one request."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=args.endpoint,
                      region_name=os.environ.get("AWS_REGION", "us-east-1"),
                      config=Config(s3={"addressing_style": "path"}, proxies={}))
    s3.head_bucket(Bucket=args.bucket)
    return s3


def upload(s3, bucket, key, src):
    """Uploads src (a file to key, or a directory's files to key/NAME), timed. Returns
    (start stamp, seconds)."""
    t_start = time.time()
    t0 = time.perf_counter()
    if os.path.isdir(src):
        # boto3 clients are thread-safe; upload_file below 8 MiB is one PUT, above it its
        # own multipart with threads of its own.
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for f in [pool.submit(s3.upload_file, path, bucket, f"{key}/{name}")
                      for name, path in members(src)]:
                f.result()
    else:
        s3.upload_file(src, bucket, key)
    return t_start, time.perf_counter() - t0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("save", "fallback"))
    ap.add_argument("dest", nargs="?", help="where the checkpoint is saved")
    ap.add_argument("--src", required=True, help="the checkpoint: a local file or directory")
    ap.add_argument("--fsync", action="store_true")
    ap.add_argument("--warm", type=int, default=0, help="scratch bytes to write first")
    ap.add_argument("--warm-dir", default="/var/tmp", help="where (the save's filesystem)")
    ap.add_argument("--endpoint", default=os.environ.get("RWSPLIT_TEST_ENDPOINT"))
    ap.add_argument("--bucket")
    ap.add_argument("--key", help="the object key (a directory: the prefix of its files)")
    a = ap.parse_args(argv)
    if not a.dest:
        ap.error(f"{a.mode} needs DEST")
    if a.mode == "fallback" and not (a.bucket and a.key and a.endpoint):
        ap.error("fallback needs --bucket, --key and --endpoint (or RWSPLIT_TEST_ENDPOINT)")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = {"pid": os.getpid()}
    is_dir = os.path.isdir(args.src)
    if args.mode == "save":
        files = load(args.src)
        warm_memory(args.warm, args.warm_dir)
        out.update(save(args.dest, files, args.fsync, is_dir))
    else:
        s3 = client(args)
        files = load(args.src)
        warm_memory(args.warm, args.warm_dir)
        out.update(save(args.dest, files, False, is_dir))
        out["t_start"], out["upload_s"] = upload(s3, args.bucket, args.key, args.dest)
    # The last stamp before exit: what comes after it (interpreter teardown, and under rwsplit
    # the wait for the upload queue to drain) the parent sees as the exit wait.
    out["t_end"] = time.time()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
