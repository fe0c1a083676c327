"""A read route for tests that need only one, with its own cache directory.

    route = ReadRoute(minio, build, bucket, tmp_path, endpoint=toxi.endpoint,
                      glob={"agent": "off"}, store={"retry_time": "30s"}, prefetch="off")
    proc.expect_ok(route.run(["cat", f"{route.local}/a.txt"]))
    route.cleanup()            # kills its fetch agents, removes the cache directory
"""

import secrets
import shutil
from pathlib import Path

from tests.harness import proc

TIMEOUT = 120


class ReadRoute:
    """/mnt/rwsplit-rr-<tag>/data -> s3://bucket/data/ with cache_dir /dev/shm/rwsplit-rr-<tag>.
    glob: [global] keys; store: [store] keys; options: the route's keys (prefetch defaults
    to off, so that what is cached is what a test read)."""

    def __init__(self, minio, build, bucket, tmp_path, endpoint=None, glob=None, store=None,
                 **options):
        tag = secrets.token_hex(5)
        self.local = f"/mnt/rwsplit-rr-{tag}/data"
        self.cache = Path(f"/dev/shm/rwsplit-rr-{tag}")
        opts = {"prefetch": "off"}
        opts.update(options)
        head = "".join(f"{k} = {v}\n" for k, v in (glob or {}).items())
        self.conf = Path(tmp_path) / f"rr-{tag}.conf"
        self.conf.write_text(f"[global]\ncache_dir = {self.cache}\n{head}\n" + minio.config_text(
            routes=[("read", self.local, f"s3://{bucket}/data/", opts)], endpoint=endpoint,
            **(store or {})))
        self.minio, self.build = minio, build

    def path(self, rel):
        return f"{self.local}/{rel}"

    def env(self, log="info"):
        return proc.preload_env(self.minio, self.build.lib, self.conf, log)

    def run(self, args, log="info", stdin_data=None, timeout=TIMEOUT):
        return proc.run(args, self.env(log), timeout, stdin_data=stdin_data)

    def cleanup(self):
        proc.kill_tree_agents(self.cache)
        shutil.rmtree(self.cache, ignore_errors=True)
