"""The PyTorch example (issue 16), shortened: examples/pytorch/main.py runs unchanged under
rwsplit with examples/pytorch/rwsplit.conf against MinIO on an ImageFolder of a few hundred
Fashion-MNIST PNGs (made by prepare.py, uploaded with mc): DataLoader workers started with
fork and with spawn, torch.save checkpoints of which the last 3 stay, a resume from the
bucket after the pod's tree is gone, the same with torch.distributed.checkpoint, and the Pod
of examples/pytorch/k8s/ run locally from its own manifests (its prefill init container
included, after which the job reads with no GET).

Checkpoints are checked with boto3 (exact keys, and torch.load of the newest); every run is
compared with the same job on the local PNG tree.
"""

import importlib.util
import io
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.harness import k8s
from tests.harness.proc import fetch_agents

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "pytorch"
PYTHON = sys.executable
JOB_TIMEOUT = 300
# 300 training images in batches of 32: 10 steps an epoch, a checkpoint every 4 steps.
SHORT = ["--batch-size", "32", "--workers", "2", "--save-every", "4"]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


demo = _load("pytorch_demo", EXAMPLE / "demo.py")


@pytest.fixture(scope="module")
def dataset(mc, tmp_path_factory):
    """A bucket holding the PNG tree under pytorch/fashion/, and the local tree."""
    from tests.harness.minio import random_bucket_name
    tree = tmp_path_factory.mktemp("pt-data") / "fashion"
    demo.prepare(tree, limit=300)
    bucket = random_bucket_name("pt")
    mc.mb(bucket)
    demo.upload_dataset(mc, tree, bucket)
    try:
        yield bucket, tree
    finally:
        mc.rb(bucket)


def ckpt_keys(boto, bucket):
    prefix = demo.CKPT_PREFIX
    pages = boto.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for p in pages for o in p.get("Contents", []))


def run(cmd, env):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                       timeout=JOB_TIMEOUT)
    text = p.stdout + p.stderr
    return p.returncode, text, f"$ {shlex.join(map(str, cmd))}\n-> {p.returncode}\n{text[-6000:]}"


def job_config(minio, bucket, tmp_path):
    conf = tmp_path / f"rwsplit-{secrets.token_hex(3)}.conf"
    conf.write_text(demo.localize_config((EXAMPLE / "rwsplit.conf").read_text(),
                                         minio.endpoint, bucket=bucket,
                                         spool=tmp_path / "spool",
                                         cache_dir=tmp_path / "cache"))
    return conf


def check_run(boto, bucket, rc, text, described, saved, dcp=False):
    assert rc == 0, described
    out = demo.parse_job_output(text)
    assert out["pending"] == 0 and out["failed"] == 0 and out["uploaded"], described
    keys = ckpt_keys(boto, bucket)
    problems = demo.check_checkpoints(keys, saved, dcp=dcp)
    assert problems == [], f"{problems}\nkeys: {keys}\n{described}"
    return out


def newest_step(boto, bucket, key):
    import torch
    body = boto.get_object(Bucket=bucket, Key=demo.CKPT_PREFIX + key)["Body"].read()
    return torch.load(io.BytesIO(body), weights_only=True)["step"]


@pytest.fixture
def clean_pod(boto, dataset):
    """No agent, an empty tree, and no checkpoint in the bucket from an earlier test."""
    demo.new_pod()
    for key in ckpt_keys(boto, dataset[0]):
        boto.delete_object(Bucket=dataset[0], Key=demo.CKPT_PREFIX + key)
    yield
    demo.new_pod()


def local_run(dataset, tmp_path, *extra):
    """The same job on the local PNG tree, without rwsplit: the comparison."""
    rc, text, described = run([PYTHON, EXAMPLE / "main.py", "--data", dataset[1],
                               "--checkpoints", tmp_path / "local-ckpt", *SHORT, *extra],
                              dict(os.environ, LD_PRELOAD="", RWSPLIT_CONFIG=""))
    assert rc == 0, described
    return demo.parse_job_output(text)


def test_fork_then_spawn_workers_save_and_resume(build, minio, boto, dataset, tmp_path,
                                                 clean_pod):
    """Run 1 (fork workers): one epoch, checkpoints at steps 4 and 8. Run 2 (spawn workers)
    from an empty tree: resumes at step 8, runs to two epochs; the last three checkpoints
    (20, 24, 28) stay, the others are removed from the bucket."""
    bucket = dataset[0]
    conf = job_config(minio, bucket, tmp_path)
    env = minio.child_env({"RWSPLIT_LOG": "info"})
    job = [build.require(build.rwsplit), "run", "-c", conf, "--", PYTHON, EXAMPLE / "main.py",
           *SHORT]
    rc, text, described = run(job + ["--epochs", "1", "--start-method", "fork"], env)
    first = check_run(boto, bucket, rc, text, described, [4, 8])
    assert first["saved_steps"] == [4, 8] and first["restored_step"] is None, described
    local = local_run(dataset, tmp_path, "--epochs", "1")
    assert local["saved_steps"] == first["saved_steps"], (local, first)

    demo.new_pod()  # the checkpoints are only in the bucket now
    rc, text, described = run(job + ["--epochs", "2", "--start-method", "spawn"], env)
    second = check_run(boto, bucket, rc, text, described, [4, 8, 12, 16, 20, 24, 28])
    assert second["restored_step"] == 8, described
    assert second["saved_steps"] == [12, 16, 20, 24, 28], described
    assert newest_step(boto, bucket, "ckpt-28.pt") == 28
    # The main process's reads (the test set) came from the cache the first run filled.
    assert second["from_store"] == 0, described


def test_dcp_save_and_resume(build, minio, boto, dataset, tmp_path, clean_pod):
    """--dcp: torch.distributed.checkpoint directories (.metadata and the data file) in the
    bucket, the oldest removed with shutil.rmtree, and a resume that reads one back."""
    bucket = dataset[0]
    conf = job_config(minio, bucket, tmp_path)
    env = minio.child_env({"RWSPLIT_LOG": "info"})
    job = [build.require(build.rwsplit), "run", "-c", conf, "--", PYTHON, EXAMPLE / "main.py",
           *SHORT, "--dcp"]
    rc, text, described = run(job + ["--epochs", "1"], env)
    check_run(boto, bucket, rc, text, described, [4, 8], dcp=True)
    demo.new_pod()
    rc, text, described = run(job + ["--epochs", "2", "--keep", "2"], env)
    out = check_run(boto, bucket, rc, text, described, [24, 28], dcp=True)
    assert out["restored_step"] == 8, described
    assert not any(k.startswith(("dcp-4/", "dcp-8/", "dcp-12/")) for k in
                   ckpt_keys(boto, bucket)), ckpt_keys(boto, bucket)


# -- the Kubernetes manifests ----------------------------------------------------------------


def pod_config(text, endpoint, bucket, cache):
    """The ConfigMap's OSS config pointed at MinIO: the store section, bucket and cache."""
    assert re.search(r"(?m)^addressing\s*=\s*virtual", text), "the OSS config must be virtual"
    assert "s3://examplebucket/" in text
    text = re.sub(r"(?m)^(region\s*=\s*)\S+", r"\1us-east-1", text)
    text = re.sub(r"(?m)^(addressing\s*=\s*)\S+", r"\1path", text)
    text = re.sub(r"(?m)^(endpoint\s*=\s*)\S+", lambda m: m.group(1) + endpoint, text)
    text = re.sub(r"(?m)^(cache_dir\s*=\s*)\S+", lambda m: m.group(1) + str(cache), text)
    return text.replace("s3://examplebucket/", f"s3://{bucket}/")


def test_k8s_pod_runs_locally(build, minio, boto, dataset, tmp_path, clean_pod):
    """The Pod as written: the first init container's command fills the library emptyDir,
    the second prefills the cache with the manifest's command, and the training container's
    command then runs with the manifest's env, the ConfigMap as its config (store, bucket and
    cache_dir switched to this MinIO and a temporary directory, nothing else) and the
    Secret's OSS keys carrying MinIO's: its reads cost no GET."""
    docs = k8s.manifests(EXAMPLE / "k8s")
    pod, cm, secret = docs["Pod"], docs["ConfigMap"], docs["Secret"]
    cache = tmp_path / "shm" / "rwsplit"
    vols = k8s.PodVolumes(pod, cm, tmp_path,
                          lambda name, text: pod_config(text, minio.endpoint, dataset[0], cache))
    translate = vols.translate

    # Paths the routes and the cache own (/mnt/..., /dev/shm, the spool) stay as they are:
    # they are the config's own.
    own = ("/dev/shm", "/var/tmp/rwsplit", "/mnt/checkpoints")
    keys = {"OSS_ACCESS_KEY_ID": minio.env()["AWS_ACCESS_KEY_ID"],
            "OSS_ACCESS_KEY_SECRET": minio.env()["AWS_SECRET_ACCESS_KEY"]}
    assert set(secret["stringData"]) == set(keys)
    base = minio.child_env({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None} | keys)
    copy, prefill = pod["spec"]["initContainers"]
    for m in copy["volumeMounts"]:
        vols.mount(m)
    cmd = [translate(a.replace("/opt/rwsplit/", f"{build.root}/")) for a in copy["command"]]
    subprocess.run(cmd, check=True, timeout=30)
    for m in prefill["volumeMounts"]:
        if m["mountPath"] not in own:
            vols.mount(m)
    assert prefill["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
    rc, text, described = run([translate(a) for a in prefill["command"]], base)
    assert rc == 0 and re.search(r"prefill /mnt/fashion: 400 files .*: 400 downloaded", text), \
        described

    [train] = pod["spec"]["containers"]
    for m in train["volumeMounts"]:
        if m["mountPath"] not in own:
            vols.mount(m)
    env = dict(base)
    for e in train["env"]:
        env[e["name"]] = translate(e["value"])
    assert train["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
    assert Path(env["LD_PRELOAD"]).is_file() and Path(env["RWSPLIT_CONFIG"]).is_file(), env
    config = Path(env["RWSPLIT_CONFIG"])
    config.write_text(demo.localize_config(config.read_text(), minio.endpoint,
                                           spool=tmp_path / "spool"))
    command = [{"python": PYTHON, "/app/main.py": str(EXAMPLE / "main.py")}.get(a, a)
               for a in train["command"]]
    # Shortened: the manifest's epochs and workers stay, the batch and save interval shrink.
    try:
        rc, text, described = run(command + ["--batch-size", "64", "--save-every", "3"], env)
        check_run(boto, dataset[0], rc, text, described, [3, 6, 9])
        assert re.search(r"read summary: .* 0 bytes from the store, .* 0 GETs", text), described
        running = fetch_agents(cache)
        agent = f"{vols.mounts['/rwsplit']}/rwsplit"
        assert all(argv[0] == agent for argv in running.values()), running
    finally:
        for pid in fetch_agents(cache):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(cache, ignore_errors=True)
