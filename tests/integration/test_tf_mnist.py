"""The TensorFlow example (issue 5), shortened: examples/tf-mnist/main.py runs unchanged under
rwsplit with examples/tf-mnist/rwsplit.conf against MinIO, then again to resume; and the pod
of examples/tf-mnist/k8s/ is run locally from its own manifests (init container command, env,
ConfigMap, Secret, mounts), so that the manifests cannot rot.

Results are checked with boto3: the exact checkpoint keys, the `checkpoint` state file, event
files, no temporary names, deleted checkpoints gone, and an empty spool.
"""

import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.harness import k8s
from tests.harness.proc import fetch_agents

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tf-mnist"
PYTHON = sys.executable
JOB_TIMEOUT = 300
# Short runs: a checkpoint every 20 steps, two kept, so the first run (100 steps) deletes
# three and the second (40 more) two.
SHORT = ["--save-every", "20", "--max-to-keep", "2", "--eval-every", "20"]


def _load_demo():
    spec = importlib.util.spec_from_file_location("tf_mnist_demo", EXAMPLE / "demo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


demo = _load_demo()

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="tensorflow-cpu is not installed: run scripts/deps.sh")


def logs_keys(boto, bucket):
    prefix = demo.LOGS_PREFIX
    pages = boto.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for p in pages for o in p.get("Contents", []))


def state_file(boto, bucket):
    return boto.get_object(Bucket=bucket, Key=demo.LOGS_PREFIX + "checkpoint")["Body"].read() \
        .decode()


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    text = p.stdout + p.stderr
    return p.returncode, text, f"$ {shlex.join(map(str, cmd))}\n-> {p.returncode}\n{text[-6000:]}"


def check_run(boto, bucket, rc, text, described, kept_steps, spool):
    assert rc == 0, described
    out = demo.parse_job_output(text)
    assert out["pending"] == 0 and out["failed"] == 0 and out["uploaded"], described
    keys = logs_keys(boto, bucket)
    problems = demo.check_checkpoints(keys, kept_steps, state_file(boto, bucket))
    assert problems == [], f"{problems}\nkeys: {keys}\n{described}"
    return out


@pytest.fixture
def dataset_bucket(mc, bucket):
    demo.upload_dataset(mc, bucket)
    return bucket


def test_training_job_resumes_from_bucket(build, minio, boto, dataset_bucket, tmp_path):
    """Run 1 (gzip.open reader, cold cache): 100 steps, checkpoints 20..100 of which 80 and
    100 stay. Run 2 (tf.io.gfile reader, warm cache): resumes at 100, runs to 140."""
    conf = tmp_path / "rwsplit.conf"
    spool = tmp_path / "spool"
    conf.write_text(demo.localize_config((EXAMPLE / "rwsplit.conf").read_text(),
                                         minio.endpoint, bucket=dataset_bucket, spool=spool,
                                         cache_dir=tmp_path / "cache"))
    env = minio.child_env({"TEST_TMPDIR": "/mnt", "RWSPLIT_LOG": "info",
                           "TF_CPP_MIN_LOG_LEVEL": "2"})
    job = [build.require(build.rwsplit), "run", "-c", conf, "--", PYTHON,
           EXAMPLE / "main.py"] + SHORT
    demo.new_pod()
    rc, text, described = run(job + ["--steps", "100", "--reader", "gzip"],
                              env | {"RWSPLIT_LOG": "debug"})
    first = check_run(boto, dataset_bucket, rc, text, described, [80, 100], spool)
    assert first["saved_steps"] == [20, 40, 60, 80, 100], described
    # manager.save() is local file work only: the job itself sent no write request to the
    # store (its uploads, copies and deletes are the tree agent's, logged there).
    writes = re.findall(r"debug: (?:PUT|DELETE|HEAD|POST) \S+ ->", text)
    assert "debug:" in text and writes == [], described
    assert first["last_step"] == 100 and first["dataload_s"] is not None, described
    assert first["restored_step"] is None, described

    demo.new_pod()  # the checkpoints are only in the bucket now
    rc, text, described = run(job + ["--steps", "40", "--reader", "gfile"], env)
    second = check_run(boto, dataset_bucket, rc, text, described, [120, 140], spool)
    assert second["restored_step"] == 100, described
    assert second["saved_steps"] == [120, 140] and second["last_step"] == 140, described
    # Run 2 read the dataset from the shared cache only.
    assert re.search(r"read summary: .* 0 bytes from the store", text), described
    events = [k for k in logs_keys(boto, dataset_bucket) if k.startswith("events.out")]
    assert len(events) == 2, events


# -- the Kubernetes manifests ----------------------------------------------------------------


def test_k8s_pod_runs_locally(build, minio, boto, dataset_bucket, tmp_path):
    """The Pod as written: its init container's command fills the emptyDir, its training
    container's command runs with the manifest's env, the ConfigMap as its config file (store
    endpoint, region, addressing and bucket switched from OSS to this MinIO, nothing else),
    and the Secret's OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET carrying MinIO's keys."""
    docs = k8s.manifests(EXAMPLE / "k8s")
    pod, cm, secret = docs["Pod"], docs["ConfigMap"], docs["Secret"]
    vols = k8s.PodVolumes(pod, cm, tmp_path, lambda name, text: pod_config(
        text, minio.endpoint, dataset_bucket) if name == "rwsplit.conf" else text)
    translate = vols.translate

    # The init container, with the image's /opt/rwsplit being the build dir.
    [init] = pod["spec"]["initContainers"]
    for m in init["volumeMounts"]:
        vols.mount(m)
    cmd = [translate(a.replace("/opt/rwsplit/", f"{build.root}/")) for a in init["command"]]
    subprocess.run(cmd, check=True, timeout=30)

    [train] = pod["spec"]["containers"]
    for m in train["volumeMounts"]:
        if m["mountPath"] in ("/dev/shm", "/var/tmp/rwsplit", "/mnt/training_logs"):
            continue  # cache, spool and the write route's tree: the config's own paths
        vols.mount(m)
    env = minio.child_env({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                           "TF_CPP_MIN_LOG_LEVEL": "2"})
    for e in train["env"]:
        env[e["name"]] = translate(e["value"])
    [source] = train["envFrom"]
    assert source["secretRef"]["name"] == secret["metadata"]["name"]
    assert set(secret["stringData"]) == {"OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"}
    env["OSS_ACCESS_KEY_ID"] = minio.env()["AWS_ACCESS_KEY_ID"]
    env["OSS_ACCESS_KEY_SECRET"] = minio.env()["AWS_SECRET_ACCESS_KEY"]
    assert Path(env["LD_PRELOAD"]).is_file() and Path(env["RWSPLIT_CONFIG"]).is_file(), env
    spool = tmp_path / "spool"
    config = Path(env["RWSPLIT_CONFIG"])
    config.write_text(demo.localize_config(config.read_text(), minio.endpoint,
                                           bucket=dataset_bucket, spool=spool,
                                           cache_dir=tmp_path / "cache"))
    # The image's python and /app/main.py are this venv's and the example's.
    command = [{"python": PYTHON, "/app/main.py": str(EXAMPLE / "main.py")}.get(a, a)
               for a in train["command"]]
    try:
        demo.new_pod()
        rc, text, described = run(command + SHORT + ["--steps", "40"], env)
        check_run(boto, dataset_bucket, rc, text, described, [20, 40], spool)
        assert "dataload cost time:" in text and "Accuracy at step 40:" in text, described
        # The reads went through the fetch agent the init container put beside the library.
        running = fetch_agents(tmp_path / "cache")
        assert [argv[0] for argv in running.values()] == \
            [f"{vols.mounts['/rwsplit']}/rwsplit"], running
    finally:
        for pid in fetch_agents(tmp_path / "cache"):
            os.kill(pid, signal.SIGKILL)


def pod_config(text, endpoint, bucket):
    """The ConfigMap's OSS config pointed at MinIO: only the store section and bucket."""
    assert re.search(r"(?m)^addressing\s*=\s*virtual", text), "the OSS config must be virtual"
    assert "s3://examplebucket/" in text
    text = re.sub(r"(?m)^(region\s*=\s*)\S+", r"\1us-east-1", text)
    text = re.sub(r"(?m)^(addressing\s*=\s*)\S+", r"\1path", text)
    text = re.sub(r"(?m)^(endpoint\s*=\s*)\S+", lambda m: m.group(1) + endpoint, text)
    return text.replace("s3://examplebucket/", f"s3://{bucket}/")
