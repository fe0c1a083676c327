"""Checks made with independent means: digests of bytes, files and objects (read with boto3),
and what a write route's spool directory still holds."""

import hashlib
import os
import re
from pathlib import Path

MiB = 1 << 20
# Files in a spool that are not data (a lock or pid file); anything else left after a clean
# exit is a leftover.
SPOOL_NOT_DATA_RE = re.compile(r"(^|[._-])(lock|lck|pid)$|^journal(\.old|\.new)?$|^agent\.log$")


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def object_sha(boto, bucket, key):
    """(size, sha256 hex) of an object, streamed through boto3."""
    body = boto.get_object(Bucket=bucket, Key=key)["Body"]
    h, n = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(MiB), b""):
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def spool_files(spool):
    """[(relative path, size)] of the regular files under the spool directory."""
    out = []
    spool = Path(spool)
    if not spool.exists():
        return out
    for dp, _dns, fns in os.walk(spool):
        for fn in fns:
            p = Path(dp) / fn
            try:
                if p.is_file() and not p.is_symlink():
                    out.append((str(p.relative_to(spool)), p.stat().st_size))
            except FileNotFoundError:
                pass
    return sorted(out)


def spool_leftovers(spool):
    """[(relative path, size)] of the spool's files other than locks: data not removed."""
    return [(rel, size) for rel, size in spool_files(spool)
            if not SPOOL_NOT_DATA_RE.search(os.path.basename(rel))]
