"""Two more FUSE alternatives for the benchmarks, built by scripts/bench-extra-fs.sh (not part
of scripts/bench-deps.sh: building them takes minutes; bench/extra_fs.md says how long and why
they are built the way they are):

- Mountpoint for Amazon S3, as `mount-s3-lite`: crates.io's `mountpoint-s3` is an empty
  placeholder, so bench/mountpoint_launcher/ is a small launcher around the published file
  system library (mountpoint-s3-fs 0.11.0, mountpoint-s3-client 0.22.0) with mount-s3's
  options and defaults for what we use (--endpoint-url, --force-path-style, --region, --cache,
  --metadata-ttl, ...).
- goofys v0.24.0 (the newest version the Go module proxy serves), built with the dependency
  versions of goofys's own go.mod of that time (v0.24.0 has none).

Factories in the style of bench/common.py's s3fs_mount/rclone_mount; each returns a
common.FuseMount, which the caller mount()s and unmount()s. extra_reason(name) says whether a
tool can be used here. Run this file to check both against a throwaway MinIO:
    .tools/venv/bin/python bench/extra_fs.py
"""

import hashlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# As bench.common (like the workload scripts), so that there is one FuseMount registry.
from bench import common  # noqa: E402

MOUNTPOINT_BIN = common.REPO / ".tools" / "cargo" / "bin" / "mount-s3-lite"
GOOFYS_BIN = common.REPO / ".tools" / "bin" / "goofys"
BINARIES = {"mountpoint": MOUNTPOINT_BIN, "goofys": GOOFYS_BIN}


def _credentials_env(server, extra=None):
    """The child environment with the server's credentials and nothing that would send the
    client elsewhere (a CA bundle for plain http on loopback, a profile, a proxy)."""
    return common.child_env({
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": server.region,
        "AWS_DEFAULT_REGION": server.region,
        "AWS_CA_BUNDLE": None,
        "AWS_PROFILE": None,
        **(extra or {}),
    })


def mountpoint_mount(server, bucket, mnt, work, cache_dir=None, extra=()):
    """Mountpoint (mount-s3-lite) on bucket at mnt. With cache_dir, object content is cached
    on local disk there (mount-s3 --cache; metadata TTL then defaults to 60 s as in mount-s3),
    else nothing is cached (mount-s3's default). extra: more mount-s3 options."""
    argv = [str(MOUNTPOINT_BIN), bucket, str(mnt), "-f",
            "--endpoint-url", server.endpoint, "--force-path-style", "--region", server.region]
    if cache_dir is not None:
        argv += ["--cache", str(cache_dir)]
    argv += list(extra)
    tag = "mountpoint-cache" if cache_dir is not None else "mountpoint"
    return common.FuseMount(tag, argv, mnt, Path(work) / f"{tag}-{Path(mnt).name}.log",
                            env=_credentials_env(server))


def goofys_mount(server, bucket, mnt, work, extra=()):
    """goofys on bucket at mnt with its defaults (1 min stat and type cache, no data cache:
    its --cache needs catfs, which is not packaged here). extra: more goofys options."""
    argv = [str(GOOFYS_BIN), "-f", "--endpoint", server.endpoint, "--region", server.region,
            *extra, bucket, str(mnt)]
    return common.FuseMount("goofys", argv, mnt, Path(work) / f"goofys-{Path(mnt).name}.log",
                            env=_credentials_env(server))


def extra_reason(name):
    """'' when `name` ('mountpoint' or 'goofys') can be used, else why not."""
    binary = BINARIES[name]
    if not os.access(binary, os.X_OK):
        return (f"{binary.relative_to(common.REPO)} is not built"
                " (scripts/bench-extra-fs.sh builds it)")
    return common.fuse_reason()


# -- self-check: mount, list, read, unmount against a throwaway MinIO ----------------------

def _check(name, factory, server, bucket, files, work):
    mnt = Path(work) / f"mnt-{name}"
    m = factory(mnt)
    m.mount()
    try:
        listed = sorted(p.relative_to(mnt).as_posix() for p in mnt.rglob("*") if p.is_file())
        assert listed == sorted(files), f"{name} lists {listed}"
        for key, data in files.items():
            got = (mnt / key).read_bytes()
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), \
                f"{name}: {key} differs ({len(got)} bytes read, {len(data)} expected)"
    finally:
        m.unmount()
    assert not os.path.ismount(mnt), f"{name}: still mounted"
    common.log(f"{name}: ok ({len(files)} files listed and read; {m.shown()})")


def main():
    from tests.harness.minio import MinioServer

    files = {"a.txt": b"hello\n", "dir/b.bin": os.urandom(3 * 1024 * 1024 + 17),
             "dir/sub/c.bin": os.urandom(100_000)}
    failed = []
    with MinioServer() as server, tempfile.TemporaryDirectory(prefix="extrafs-") as work:
        s3 = server.boto3_client()
        bucket = "extrafs"
        s3.create_bucket(Bucket=bucket)
        for key, data in files.items():
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        checks = {
            "mountpoint": lambda mnt: mountpoint_mount(server, bucket, mnt, work),
            "mountpoint-cache": lambda mnt: mountpoint_mount(server, bucket, mnt, work,
                                                             cache_dir=Path(work) / "mp-cache"),
            "goofys": lambda mnt: goofys_mount(server, bucket, mnt, work),
        }
        for name, factory in checks.items():
            reason = extra_reason(name.split("-")[0])
            if reason:
                common.log(f"{name}: skipped: {reason}")
                continue
            try:
                _check(name, factory, server, bucket, files, work)
            except Exception as e:   # noqa: BLE001 - report every tool, then fail
                failed.append(name)
                common.log(f"{name}: FAILED: {e}")
                for log_file in Path(work).glob(f"{name}-*.log"):
                    common.log(log_file.read_text()[-2000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
