"""rwsplit stats (issue 16): the node's counters per route, summed over every process that
used the route (a counters file per read route's cache), the write routes' agents' uploads,
as a table, JSON and Prometheus text; the Prometheus text is read with prometheus_client's
own parser, and the counters must move as jobs read and write.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import proc
from tests.harness.minio import random_bucket_name
from tests.harness.proc import expect_ok

TIMEOUT = 120
FILES = {f"d{i % 2}/f{i:02d}.bin": 5000 + 17 * i for i in range(12)}


@pytest.fixture
def setup(minio, mc, build, tmp_path, request):
    build.require(build.lib)
    bucket = random_bucket_name("st")
    mc.mb(bucket)
    root = tmp_path / "data"
    for rel, size in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(os.urandom(size))
    mc.run("cp", "--recursive", "--quiet", f"{root}/", mc.target(f"{bucket}/data/"))
    tag = secrets.token_hex(4)
    cache = Path(f"/dev/shm/rwsplit-st-{tag}")
    local, out = f"/mnt/rwsplit-st-{tag}/data", f"/mnt/rwsplit-st-{tag}/out"
    conf = tmp_path / "rw.conf"
    extra = getattr(request, "param", "")
    conf.write_text(f"[global]\ncache_dir = {cache}\n{extra}\n" + minio.config_text(routes=[
        ("read", local, f"s3://{bucket}/data/", {"prefetch": "off"}),
        ("write", out, f"s3://{bucket}/out/", {"spool": str(tmp_path / "spool")})]))
    ctx = type("Ctx", (), {})()
    ctx.conf, ctx.local, ctx.out, ctx.cache = conf, local, out, cache
    ctx.env = proc.preload_env(minio, build.lib, conf, "info")
    ctx.stats = lambda *a: expect_ok(proc.run([build.rwsplit, "stats", "-c", conf, *a],
                                              minio.child_env(), TIMEOUT))
    try:
        yield ctx
    finally:
        proc.kill_tree_agents(out)
        for pid in proc.fetch_agents(cache):
            os.kill(pid, 9)
        shutil.rmtree(cache, ignore_errors=True)
        mc.rm(f"{bucket}", recursive=True)


JOB = ("import os, sys\n"
       "src, out, tag = sys.argv[1:4]\n"
       "for d, _, names in os.walk(src):\n"
       "    for n in names:\n"
       "        open(os.path.join(d, n), 'rb').read()\n"
       "for i in range(3):\n"
       "    open(f'{out}/{tag}-{i}.txt', 'w').write('x' * (i + 1))\n")


def job(ctx, tag):
    expect_ok(proc.run([sys.executable, "-c", JOB, ctx.local, ctx.out, tag], ctx.env, TIMEOUT))


def metrics(text):
    """{(name, route): value} of every sample (prometheus_client's parser)."""
    got = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            got[(s.name, s.labels.get("route"))] = s.value
    return got


def test_counters_move_as_jobs_read_and_write(setup):
    job(setup, "a")
    m1 = metrics(setup.stats("--prometheus").stdout.decode())
    r, w = setup.local, setup.out
    assert m1[("rwsplit_read_opens_total", r)] == len(FILES), m1
    assert m1[("rwsplit_read_gets_total", r)] == len(FILES)
    assert m1[("rwsplit_read_bytes_store_total", r)] == sum(FILES.values())
    assert m1[("rwsplit_read_cache_hits_total", r)] == 0
    assert m1[("rwsplit_read_gets_in_flight", r)] == 0
    assert m1[("rwsplit_read_get_failures_total", r)] == 0
    assert m1[("rwsplit_read_cache_bytes", r)] >= sum(FILES.values())
    assert m1[("rwsplit_write_uploaded_total", w)] == 3
    assert m1[("rwsplit_write_uploaded_bytes_total", w)] == 6
    assert m1[("rwsplit_write_pending", w)] == 0 and m1[("rwsplit_write_failed", w)] == 0
    assert m1[("rwsplit_write_pending_bytes", w)] == 0
    assert m1[("rwsplit_write_retries_total", w)] == 0
    assert m1[("rwsplit_read_retries_total", r)] == 0
    # A second process: the same files from the cache, three more uploads.
    job(setup, "b")
    m2 = metrics(setup.stats("--prometheus").stdout.decode())
    assert m2[("rwsplit_read_opens_total", r)] == 2 * len(FILES)
    assert m2[("rwsplit_read_cache_hits_total", r)] == len(FILES)
    assert m2[("rwsplit_read_gets_total", r)] == len(FILES)
    assert m2[("rwsplit_read_bytes_cache_total", r)] == sum(FILES.values())
    assert m2[("rwsplit_write_uploaded_total", w)] == 6


def test_json_and_table(setup):
    job(setup, "a")
    doc = json.loads(setup.stats("--json").stdout)
    read, write = doc["routes"]
    assert (read["path"], read["mode"], read["opens"], read["gets"]) == \
        (setup.local, "read", len(FILES), len(FILES))
    assert (write["path"], write["agent"], write["uploaded"], write["pending"]) == \
        (setup.out, True, 3, 0)
    text = setup.stats().stdout.decode()
    assert f"read  {setup.local}" in text and f"{len(FILES)} opens, 0 from the cache" in text
    assert f"write {setup.out}" in text and "3 files uploaded" in text


def test_before_any_job_and_without_agents(setup):
    """A route nobody used yet: zeros and no agent, not an error."""
    m = metrics(setup.stats("--prometheus").stdout.decode())
    assert m[("rwsplit_read_opens_total", setup.local)] == 0
    assert ("rwsplit_write_uploaded_total", setup.out) not in m
    assert "no agent running" in setup.stats().stdout.decode()


def test_watch_prints_again(setup, minio, build):
    p = subprocess.Popen([str(build.rwsplit), "stats", "-c", str(setup.conf), "--json",
                          "--watch=1"], env=minio.child_env(), stdout=subprocess.PIPE)
    try:
        lines = [p.stdout.readline() for _ in range(2)]
    finally:
        p.kill()
        p.wait(timeout=10)
    docs = [json.loads(line) for line in lines]
    assert docs[1]["time"] > docs[0]["time"], docs


def free_port():
    from tests.harness.minio import free_port as fp
    return fp()


PORT = free_port()
PROM = Path(f"/tmp/rwsplit-metrics-{secrets.token_hex(4)}.prom")


@pytest.mark.parametrize("setup", [f"metrics = 127.0.0.1:{PORT}"], indirect=True)
def test_agent_serves_metrics_over_http(setup):
    """[global] metrics = 127.0.0.1:PORT: the fetch agent the job started answers GET
    /metrics with the same counters (text format 0.0.4), and 404 for other paths."""
    import time
    import urllib.error
    import urllib.request
    job(setup, "a")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline, text = time.monotonic() + 10, None
    while text is None and time.monotonic() < deadline:
        try:
            with opener.open(f"http://127.0.0.1:{PORT}/metrics", timeout=5) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = r.read().decode()
        except urllib.error.URLError:
            time.sleep(0.1)
    assert text is not None, "no metrics endpoint"
    m = metrics(text)
    assert m[("rwsplit_read_opens_total", setup.local)] == len(FILES)
    assert m[("rwsplit_write_uploaded_total", setup.out)] == 3
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(f"http://127.0.0.1:{PORT}/other", timeout=5)
    assert e.value.code == 404


@pytest.mark.parametrize("setup", [f"metrics = {PROM}"], indirect=True)
def test_agent_writes_a_textfile(setup):
    """metrics = /path.prom: the agent rewrites the file every 10 s (node_exporter's textfile
    collector reads it); it parses and counts the job."""
    import time
    try:
        job(setup, "a")
        deadline = time.monotonic() + 25
        m = {}
        while time.monotonic() < deadline:
            if PROM.exists():
                m = metrics(PROM.read_text())
                if m.get(("rwsplit_read_opens_total", setup.local)) == len(FILES):
                    break
            time.sleep(0.5)
        assert m.get(("rwsplit_read_opens_total", setup.local)) == len(FILES), m
    finally:
        PROM.unlink(missing_ok=True)


def test_bad_metrics_setting_is_a_config_error(minio, build, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[global]\nmetrics = localhost:http\n\n" + minio.config_text())
    res = proc.run([build.rwsplit, "stats", "-c", conf], minio.child_env(), TIMEOUT)
    assert res.returncode == 78, res.describe()
    assert "metrics: \"localhost:http\" is neither IPV4:PORT nor an absolute file path" in \
        res.stderr.decode(), res.describe()


def test_retries_are_counted(minio, mc, build, tmp_path):
    """GETs answered 503 SlowDown twice before they succeed (tests/harness/s3faults.py in
    front of MinIO): the read route's retries counter shows both, the bytes are right."""
    from tests.harness.s3faults import S3Faults
    bucket = random_bucket_name("sr")
    mc.mb(bucket)
    mc.put_bytes(f"{bucket}/data/one.bin", b"x" * 4321)
    tag = secrets.token_hex(4)
    cache = Path(f"/dev/shm/rwsplit-sr-{tag}")
    local = f"/mnt/rwsplit-sr-{tag}/data"
    try:
        with S3Faults(minio.port) as faults:
            conf = tmp_path / "rw.conf"
            conf.write_text(f"[global]\ncache_dir = {cache}\nagent = false\n\n" +
                            minio.config_text(routes=[("read", local, f"s3://{bucket}/data/",
                                                       {"prefetch": "off"})],
                                              endpoint=faults.endpoint))
            faults.add("GET", "", "503", times=2, no_query_key="list-type")
            env = proc.preload_env(minio, build.lib, conf, "info")
            res = expect_ok(proc.run(["cat", f"{local}/one.bin"], env, TIMEOUT))
            assert res.stdout == b"x" * 4321
            assert faults.hits("503") == 2
            st = expect_ok(proc.run([build.rwsplit, "stats", "-c", conf, "--prometheus"],
                                    minio.child_env(), TIMEOUT))
            m = metrics(st.stdout.decode())
            assert m[("rwsplit_read_retries_total", local)] == 2, m
            assert m[("rwsplit_read_get_failures_total", local)] == 0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        mc.rm(bucket, recursive=True)
