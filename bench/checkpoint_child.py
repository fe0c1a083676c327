#!/usr/bin/env python3
"""The process bench/checkpoint.py times: a training loop's checkpoint save, or a native upload.

    checkpoint_child.py save PATH --src PAYLOAD [--fsync] [WARM]
    checkpoint_child.py upload --src PAYLOAD --bucket B --key K --how HOW [WARM]
    checkpoint_child.py fallback PATH --src PAYLOAD --bucket B --key K --how HOW [WARM]

save:     the checkpoint (PAYLOAD's bytes, read into memory first, untimed) is written to the
          new file PATH in 8 MiB os.write calls and closed (with os.fsync first if --fsync);
          open -> close is timed here, in the process, as a training loop would see it.
upload:   PAYLOAD (already on local disk, page cache warm) is uploaded with boto3; only the
          upload call is timed (the client is made and a HeadBucket sent first, as a training
          loop's client would be warm).
fallback: what a training loop does without rwsplit: save to local disk, then upload that
          file with boto3 before going on; both steps are timed.

WARM = --warm BYTES --warm-dir DIR: before timing, write and unlink a scratch file of BYTES in DIR
(see warm_memory).

HOW: upload_file (default TransferConfig), upload_file_tuned (--part-size / --concurrency,
threshold --threshold) or put_object (one PUT, like oss2's put_object_from_file).

Prints one JSON line: wall-clock stamps (time.time(), so the parent can compare them with the
moment it saw the process exit) and perf_counter durations. Only the standard library and
boto3, so the preloaded process does as little as possible besides the save.
"""

import argparse
import json
import os
import sys
import time

CHUNK = 8 << 20                     # bytes per write(): what a framework's save does


def load(path):
    """The checkpoint in memory before the save starts (not timed)."""
    with open(path, "rb") as f:
        return f.read()


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


def save(path, data, fsync):
    """open, 8 MiB writes, optional fsync, close. Returns the open and close stamps, the whole
    save's seconds and each step's (to see where a difference between rows comes from)."""
    mv = memoryview(data)
    out = {"t_open": time.time()}
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
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
    out.update(t_close=time.time(), save_s=t4 - t0, open_s=t1 - t0, write_s=t2 - t1,
               fsync_s=t3 - t2, close_s=t4 - t3)
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


def upload(s3, args, src):
    """One upload of src, timed. Returns (start stamp, seconds)."""
    from boto3.s3.transfer import TransferConfig

    t_start = time.time()
    t0 = time.perf_counter()
    if args.how == "put_object":
        with open(src, "rb") as f:
            s3.put_object(Bucket=args.bucket, Key=args.key, Body=f)
    elif args.how == "upload_file":
        s3.upload_file(str(src), args.bucket, args.key)
    else:
        cfg = TransferConfig(multipart_threshold=args.threshold, multipart_chunksize=args.part_size,
                             max_concurrency=args.concurrency)
        s3.upload_file(str(src), args.bucket, args.key, Config=cfg)
    return t_start, time.perf_counter() - t0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("save", "upload", "fallback"))
    ap.add_argument("path", nargs="?", help="where save and fallback write the checkpoint")
    ap.add_argument("--src", required=True, help="the checkpoint's bytes (a local file)")
    ap.add_argument("--fsync", action="store_true")
    ap.add_argument("--warm", type=int, default=0, help="scratch bytes to write first")
    ap.add_argument("--warm-dir", default="/var/tmp", help="where (the save's filesystem)")
    ap.add_argument("--endpoint", default=os.environ.get("RWSPLIT_TEST_ENDPOINT"))
    ap.add_argument("--bucket")
    ap.add_argument("--key")
    ap.add_argument("--how", default="upload_file",
                    choices=("upload_file", "upload_file_tuned", "put_object"))
    ap.add_argument("--threshold", type=int, default=64 << 20)
    ap.add_argument("--part-size", type=int, default=16 << 20)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args(argv)
    if a.mode in ("save", "fallback") and not a.path:
        ap.error(f"{a.mode} needs PATH")
    if a.mode in ("upload", "fallback") and not (a.bucket and a.key and a.endpoint):
        ap.error(f"{a.mode} needs --bucket, --key and --endpoint (or RWSPLIT_TEST_ENDPOINT)")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = {"pid": os.getpid()}
    if args.mode == "save":
        data = load(args.src)
        warm_memory(args.warm, args.warm_dir)
        out.update(save(args.path, data, args.fsync))
    elif args.mode == "upload":
        s3 = client(args)
        warm_memory(args.warm, args.warm_dir)
        out["t_start"], out["upload_s"] = upload(s3, args, args.src)
    else:
        s3 = client(args)
        data = load(args.src)
        warm_memory(args.warm, args.warm_dir)
        out.update(save(args.path, data, False))
        out["t_start"], out["upload_s"] = upload(s3, args, args.path)
    # The last stamp before exit: what comes after it (interpreter teardown, and under rwsplit
    # the wait for the upload queue to drain) the parent sees as the exit wait.
    out["t_end"] = time.time()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
