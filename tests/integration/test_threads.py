"""Many threads of one process on a read route at once (issue 15's concurrency proof), with
tests/tools/mtroute: 8 threads list, open, fstat, pread (64 KiB pieces, each thread in its
own order) and close every file of a tree twice, all at once, through whole objects, lazily
filled ones and the prefetcher, with the fetch agent on and off. The output (per file a hash
of its bytes and its size) must equal the same program's on a local copy of the tree that
mc uploaded. `make tsan` runs this file with the fetch agent built with ThreadSanitizer.
"""

import os
import random

import pytest

from tests.harness import proc
from tests.harness.routes import ReadRoute

KiB, MiB = 1 << 10, 1 << 20
rng = random.Random(20261203)
TREE = {f"d{i % 4}/f{i:03d}.bin": rng.randrange(0, 200 * KiB) for i in range(48)}
TREE.update({"big/three.bin": 3 * MiB, "big/lazy.bin": 20 * MiB + 17, "empty.bin": 0})


@pytest.fixture(scope="module")
def local_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt") / "data"
    for rel, n in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(os.urandom(n))
    return root


@pytest.mark.parametrize("agent", ["off", "on"])
@pytest.mark.parametrize("prefetch", ["off", "listing"])
def test_eight_threads_read_one_tree(minio, build, mc, bucket, local_tree, tmp_path, agent,
                                     prefetch):
    tool = build.require(build.root / "tests" / "mtroute")
    mc.run("cp", "--quiet", "--recursive", f"{local_tree}/", mc.target(f"{bucket}/data/"))
    expected = proc.run([tool, "read", local_tree, 8, 2], os.environ.copy(), 120)
    assert expected.returncode == 0, expected.describe()
    assert len(expected.stdout.splitlines()) == len(TREE)
    route = ReadRoute(minio, build, bucket, tmp_path, glob={"agent": agent},
                      prefetch=prefetch, whole_object_max="8MiB")
    try:
        res = proc.expect_ok(route.run([tool, "read", route.local, 8, 2], timeout=240))
        assert res.stdout == expected.stdout, res.describe()
    finally:
        route.cleanup()
