"""Credentials pods use (issue 16), against real servers: a web identity token exchanged with
MinIO's own STS (AssumeRoleWithWebIdentity) for temporary keys, MinIO trusting an OpenID
issuer the test runs on loopback (tests/harness/oidc.py); renewal during a job, shared by the
processes of the node through one file; a rotated token file; refused tokens as clear errors.

Results are checked with the server's root keys through boto3.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.minio import MinioServer, random_bucket_name
from tests.harness.oidc import Issuer
from tests.harness.proc import expect_ok

TIMEOUT = 120
ROLE = "arn:aws:iam::123456789012:role/trainer"


@pytest.fixture(scope="module")
def issuer():
    with Issuer() as iss:
        yield iss


@pytest.fixture(scope="module")
def sts(issuer):
    """A MinIO whose STS trusts the issuer (policy from the token's "policy" claim)."""
    server = MinioServer(extra_env=issuer.minio_env())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def setup(sts, issuer, build, tmp_path):
    """A bucket with data/, a config with a read and a write route and no keys, a token file
    and the environment of a pod with IRSA."""
    build.require(build.lib)
    boto = sts.boto3_client()
    bucket = random_bucket_name("cr")
    boto.create_bucket(Bucket=bucket)
    files = {f"f{i}.bin": os.urandom(1000 + i) for i in range(6)}
    for name, data in files.items():
        boto.put_object(Bucket=bucket, Key=f"data/{name}", Body=data)
    tag = secrets.token_hex(4)
    cache = Path(f"/dev/shm/rwsplit-cr-{tag}")
    token = tmp_path / "token"
    token.write_text(issuer.token())

    def config(read_opts=None, **store):
        store.setdefault("sts_endpoint", sts.endpoint)
        conf = tmp_path / f"rw-{secrets.token_hex(3)}.conf"
        conf.write_text(f"[global]\ncache_dir = {cache}\nagent = false\n\n" + sts.config_text(
            routes=[("read", f"/mnt/rwsplit-cr-{tag}/data", f"s3://{bucket}/data/",
                     read_opts or {}),
                    ("write", f"/mnt/rwsplit-cr-{tag}/out", f"s3://{bucket}/out/",
                     {"spool": str(tmp_path / "spool")})], **store))
        return conf

    env = proc.preload_env(sts, build.lib, config(), "debug")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OSS_ACCESS_KEY_ID",
              "OSS_ACCESS_KEY_SECRET"):
        env.pop(k, None)
    env.update({"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")})
    ctx = type("Ctx", (), {})()
    ctx.boto, ctx.bucket, ctx.files, ctx.token, ctx.env, ctx.config = \
        boto, bucket, files, token, env, config
    ctx.local, ctx.out = f"/mnt/rwsplit-cr-{tag}/data", f"/mnt/rwsplit-cr-{tag}/out"
    ctx.cache = cache
    try:
        yield ctx
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        proc.kill_tree_agents(ctx.out)


READ_WRITE = (
    "import hashlib, sys, time\n"
    "src, out, rounds, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])\n"
    "for r in range(rounds):\n"
    "    for i in range(6):\n"
    "        data = open(f'{src}/f{i}.bin', 'rb').read()\n"
    "        print(f'f{i}.bin', hashlib.sha256(data).hexdigest(), flush=True)\n"
    "    open(f'{out}/round-{r}.txt', 'w').write(f'round {r}\\n')\n"
    "    time.sleep(pause)\n")


def run_job(ctx, conf, rounds=1, pause=0.0, env=None):
    e = dict(ctx.env, RWSPLIT_CONFIG=str(conf), **(env or {}))
    return proc.run([sys.executable, "-c", READ_WRITE, ctx.local, ctx.out, rounds, pause], e,
                    TIMEOUT)


def check_reads(ctx, res):
    import hashlib
    want = {f"{n} {hashlib.sha256(d).hexdigest()}" for n, d in ctx.files.items()}
    got = set(res.stdout.decode().split("\n")) - {""}
    assert got == want, res.describe()


def out_keys(ctx):
    r = ctx.boto.list_objects_v2(Bucket=ctx.bucket, Prefix="out/")
    return {o["Key"]: ctx.boto.get_object(Bucket=ctx.bucket, Key=o["Key"])["Body"].read()
            for o in r.get("Contents", [])}


def test_web_identity_job_reads_and_writes(setup, build):
    """No keys anywhere: the process and its tree agent exchange the token for temporary
    keys at MinIO's STS; reads come back whole and the written file lands in the bucket."""
    conf = setup.config()
    res = expect_ok(run_job(setup, conf))
    check_reads(setup, res)
    assert out_keys(setup) == {"out/round-0.txt": b"round 0\n"}
    log = res.stderr.decode(errors="replace")
    assert "credentials (web identity " + ROLE in log, res.describe()
    # rwsplit stats reports when the node's temporary credentials expire (1 h asked).
    from prometheus_client.parser import text_string_to_metric_families
    # The command runs without the library preloaded (as a user runs it).
    st = expect_ok(proc.run([build.rwsplit, "stats", "-c", conf, "--prometheus"],
                            dict(setup.env, LD_PRELOAD=""), TIMEOUT))
    [left] = [s.value for f in text_string_to_metric_families(st.stdout.decode())
              for s in f.samples if s.name == "rwsplit_credentials_expiry_seconds"]
    assert 3000 < left <= 3600, left


def test_renewed_during_a_job_and_shared_by_processes(setup):
    """credentials_refresh just under the keys' 900 s life: they are renewed every few
    seconds while three processes read and write for ~10 s. The renewals come from the STS
    about once per period for the whole node, the other processes take them from the shared
    file; no request fails."""
    # listing_ttl 1 s: every round lists the directory again, a signed request
    conf = setup.config(read_opts={"listing_ttl": "1s"}, credentials_refresh="896s",
                        credentials_duration="15m")
    env = dict(setup.env, RWSPLIT_CONFIG=str(conf))
    procs = [subprocess.Popen([sys.executable, "-c", READ_WRITE, setup.local, setup.out, "10",
                               "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    logs = "".join(err.decode(errors="replace") for _, err in outs)
    fresh = len(re.findall(r"credentials \(web identity [^)]*\): new ones from the service",
                           logs))
    shared = len(re.findall(r"credentials \(web identity [^)]*\): taken from the node's "
                            r"shared file", logs))
    renewed = len(re.findall(r"credentials \(web identity [^)]*\) renewed", logs))
    # Renewal is lazy (the first request signed after the refresh point): a 10-round job
    # spans two or three 4 s periods, depending on how fast the machine runs it.
    assert renewed >= 2, logs[-4000:]
    assert shared >= 1, logs[-4000:]
    # ~10 s of job at a renewal every 4 s: one process asks, the others read its answer.
    assert fresh <= 8, (fresh, shared, renewed)
    assert not re.search(r"^rwsplit\[\d+\] (error|warn)", logs, re.MULTILINE), logs[-4000:]
    assert set(out_keys(setup)) == {f"out/round-{r}.txt" for r in range(10)}


def shared_files(cache):
    return list(Path(cache).glob("u*/creds-*[!k]"))


def test_rotated_token_file_is_read_again(setup, issuer):
    """The kubelet rewrites the token file: renewals read it again. The first token expires
    after the first job; renewals after that can only have used the second, and the node's
    shared file shows one made after it was written, with no warning in the job."""
    setup.token.write_text(issuer.token(lifetime=5))
    conf = setup.config(read_opts={"listing_ttl": "1s"}, credentials_refresh="897s",
                        credentials_duration="15m")
    expect_ok(run_job(setup, conf))
    time.sleep(6)  # the first token has expired
    rotated = time.time()
    setup.token.write_text(issuer.token(subject="trainer-2"))
    res = expect_ok(run_job(setup, conf, rounds=2, pause=3.5))
    check_reads(setup, res)
    [shared] = shared_files(setup.cache)
    fetched = int(shared.read_text().split("\n")[1])
    assert fetched >= int(rotated), (fetched, rotated)
    assert oct(shared.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("case", ["wrong-audience", "expired", "garbage", "missing-file"])
def test_refused_token_is_a_clear_error(setup, issuer, case):
    """A token the STS refuses: the read fails (EACCES, the job sees it) and the log names
    the call and the STS's error code; nothing is written to the bucket."""
    if case == "wrong-audience":
        setup.token.write_text(issuer.token(audience="someone-else"))
    elif case == "expired":
        setup.token.write_text(issuer.token(lifetime=-60))
    elif case == "garbage":
        setup.token.write_text("not.a.jwt")
    else:
        setup.token.unlink()
    res = run_job(setup, setup.config())
    assert res.returncode != 0, res.describe()
    log = res.stderr.decode(errors="replace")
    if case == "missing-file":
        assert re.search(r"token file \S+: No such file or directory", log), res.describe()
    else:
        assert re.search(r"AssumeRoleWithWebIdentity refused \(HTTP 400, \w+", log), \
            res.describe()
    assert out_keys(setup) == {}


# -- the EC2 instance metadata service (AWS's amazon-ec2-metadata-mock, IMDSv2 only) --------

EC2_MOCK = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "ec2-metadata-mock"


@pytest.fixture
def imds(sts, tmp_path):
    """The mock on a free loopback port, IMDSv2 only, handing out the server's root keys
    (the mock's own are not valid anywhere) with an expiry an hour away."""
    import json
    from tests.harness.minio import free_port
    port = free_port()
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    cfg = tmp_path / "aemm.json"
    cfg.write_text(json.dumps({"metadata": {"values": {
        "iam-security-credentials-role": "trainer-node",
        "iam-security-credentials": {
            "Code": "Success", "LastUpdated": "2026-12-03T00:00:00Z", "Type": "AWS-HMAC",
            "AccessKeyId": sts.access_key, "SecretAccessKey": sts.secret_key, "Token": "",
            "Expiration": expires}}}}))
    p = subprocess.Popen([str(EC2_MOCK), "-n", "127.0.0.1", "-p", str(port), "-I", "-c",
                          str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    for _ in range(100):
        try:
            req = urllib.request.Request(url + "/latest/api/token", method="PUT", headers={
                "X-aws-ec2-metadata-token-ttl-seconds": "60"})
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        p.kill()
        raise AssertionError(f"ec2-metadata-mock did not start: {p.stderr.read()[-2000:]}")
    try:
        yield url
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.mark.parametrize("how", ["auto", "imds"])
def test_instance_metadata_credentials(setup, imds, how):
    """No keys, no token: the credentials come from the instance metadata service (IMDSv2:
    a PUT for the session token, the role, then its keys), found by the auto chain when
    AWS_EC2_METADATA_SERVICE_ENDPOINT names it, or asked for with credentials = imds."""
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds, "AWS_ROLE_ARN": "",
           "AWS_WEB_IDENTITY_TOKEN_FILE": ""}
    conf = setup.config(**({"credentials": "imds"} if how == "imds" else {}))
    res = expect_ok(run_job(setup, conf, env=env))
    check_reads(setup, res)
    assert out_keys(setup) == {"out/round-0.txt": b"round 0\n"}
    assert f"credentials (instance metadata {imds})" in res.stderr.decode(errors="replace")


def test_instance_metadata_down_is_a_clear_error(setup):
    from tests.harness.minio import free_port
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{free_port()}",
           "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": ""}
    res = run_job(setup, setup.config(credentials="imds"), env=env)
    assert res.returncode != 0
    assert re.search(r"instance metadata http://127\.0\.0\.1:\d+: .*(refused|connect)",
                     res.stderr.decode(errors="replace"), re.IGNORECASE), res.describe()


def test_failed_renewal_is_logged_and_the_job_goes_on(setup):
    """The token file goes bad after the keys were obtained: renewals are refused. The job
    goes on with the keys it has (they last 15 minutes), the failures are warnings naming the
    call, retried with backoff; nothing is lost."""
    conf = setup.config(read_opts={"listing_ttl": "1s"}, credentials_refresh="897s",
                        credentials_duration="15m")
    expect_ok(run_job(setup, conf))
    setup.token.write_text("not.a.jwt")
    time.sleep(3.5)
    res = run_job(setup, conf, rounds=3, pause=2.5)
    assert res.returncode == 0, res.describe()
    check_reads(setup, res)
    log = res.stderr.decode(errors="replace")
    assert re.search(r"warn: credentials \(web identity [^)]*\): (cannot get new ones|renewal "
                     r"failed) \(AssumeRoleWithWebIdentity refused", log), res.describe()
    assert set(out_keys(setup)) == {"out/round-0.txt", "out/round-1.txt", "out/round-2.txt"}
