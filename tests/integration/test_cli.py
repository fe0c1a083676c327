"""The rwsplit command against a real MinIO: check, ls and run, including their failures and
exit statuses (sysexits), with results compared to mc's view of the bucket."""

import os
import subprocess

import pytest

EX_USAGE, EX_NOINPUT, EX_UNAVAILABLE, EX_NOPERM, EX_CONFIG = 64, 66, 69, 77, 78


def run_cli(build, server, *args, env=None, timeout=60):
    full_env = server.child_env(env)
    return subprocess.run([str(build.require(build.rwsplit)), *map(str, args)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def routed_config(config_file, bucket, mc):
    """A config with one read and one write route in a fresh bucket; the read prefix has
    objects, the write prefix none."""
    mc.put_bytes(f"{bucket}/train/data/a.bin", b"a" * 1000)
    mc.put_bytes(f"{bucket}/train/data/sub/b.bin", b"b" * 10)
    return config_file(routes=[("read", "/mnt/rwsplit-cli/data", f"s3://{bucket}/train/data/"),
                               ("write", "/mnt/rwsplit-cli/logs", f"s3://{bucket}/logs/",
                                {"spool": "/tmp/rwsplit-cli-spool"})],
                       retry_time="2s", max_attempts=2, connect_timeout="1s")


def test_help_and_version(build, minio):
    for args in (["--help"], ["run", "--help"], ["check", "--help"], ["ls", "--help"]):
        res = run_cli(build, minio, *args)
        assert res.returncode == 0, res.stderr
        assert "usage: rwsplit" in res.stdout
    res = run_cli(build, minio, "--version")
    assert res.returncode == 0 and res.stdout.startswith("rwsplit ")
    res = run_cli(build, minio, "frobnicate")
    assert res.returncode == EX_USAGE and "unknown command" in res.stderr


def test_check_all_routes_ok(build, minio, routed_config, bucket):
    res = run_cli(build, minio, "check", "-c", routed_config)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    read = next(line for line in lines if line.startswith("/mnt/rwsplit-cli/data"))
    write = next(line for line in lines if line.startswith("/mnt/rwsplit-cli/logs"))
    assert f"s3://{bucket}/train/data/" in read and " read " in read
    assert "ok: bucket reachable, prefix has objects" in read
    assert "env AWS_ACCESS_KEY_ID" in read
    assert " write " in write and "ok: bucket reachable, prefix empty" in write


def test_check_uses_rwsplit_config_env(build, minio, routed_config):
    res = run_cli(build, minio, "check", env={"RWSPLIT_CONFIG": str(routed_config)})
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_missing_bucket(build, minio, config_file):
    conf = config_file(routes=[("read", "/mnt/x/data", "s3://no-such-bucket-rw/data/")],
                       retry_time="1s")
    res = run_cli(build, minio, "check", "-c", conf)
    assert res.returncode == EX_NOINPUT, res.stdout + res.stderr
    assert "FAIL: bucket no-such-bucket-rw: does not exist" in res.stdout


def test_check_wrong_credentials(build, minio, routed_config):
    res = run_cli(build, minio, "check", "-c", routed_config,
                  env={"AWS_SECRET_ACCESS_KEY": "wrong-secret-0000"})
    assert res.returncode == EX_NOPERM, res.stdout + res.stderr
    assert "access denied" in res.stdout
    assert "wrong-secret" not in res.stdout + res.stderr  # secrets never printed


def test_check_no_credentials(build, minio, routed_config, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "HOME": str(tmp_path)}
    res = run_cli(build, minio, "check", "-c", routed_config, env=env)
    assert res.returncode == EX_NOPERM, res.stdout + res.stderr
    assert "no credentials" in res.stdout


def test_check_unreachable_store(build, minio, config_file, bucket):
    # A port nothing listens on: connection refused, retried briefly, then EIO.
    conf = config_file(routes=[("read", "/mnt/x/data", f"s3://{bucket}/data/")],
                       endpoint="http://127.0.0.1:9", retry_time="1s", max_attempts=2)
    res = run_cli(build, minio, "check", "-c", conf, timeout=30)
    assert res.returncode == EX_UNAVAILABLE, res.stdout + res.stderr
    assert "ConnectionRefused" in res.stdout


def test_check_bad_config(build, minio, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[store]\nendpoint = http://127.0.0.1:9000\n\n[read /mnt/d]\n"
                    "url = s3://bucket/d/\ncache = 2GiX\n")
    res = run_cli(build, minio, "check", "-c", conf)
    assert res.returncode == EX_CONFIG
    assert f"{conf}:6: cache: bad size" in res.stderr


def test_ls_url_matches_mc(build, minio, mc, routed_config, bucket):
    res = run_cli(build, minio, "ls", "-c", routed_config, f"s3://{bucket}/train/data/")
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()]
    by_name = {row[-1]: row for row in rows}
    assert set(by_name) == {"a.bin", "sub/"}
    assert by_name["a.bin"][0] == "-rw-r--r--" and by_name["a.bin"][1] == "1000"
    assert by_name["sub/"][0] == "drwxr-xr-x"
    assert mc.stat(f"{bucket}/train/data/a.bin")["size"] == 1000


def test_ls_recursive_and_odd_names(build, minio, mc, config_file, bucket):
    names = ["dir one/ü + %=.bin", "dir one/plain", "top"]
    for name in names:
        mc.put_bytes(f"{bucket}/odd/{name}", b"x")
    conf = config_file()
    res = run_cli(build, minio, "ls", "-c", conf, "-R", f"s3://{bucket}/odd/")
    assert res.returncode == 0, res.stderr
    listed = sorted(line.split(None, 4)[-1] for line in res.stdout.splitlines())
    assert listed == sorted(names)


def test_ls_routed_path(build, minio, routed_config):
    res = run_cli(build, minio, "ls", "-c", routed_config, "/mnt/rwsplit-cli/data/sub")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == "b.bin"


def test_ls_errors(build, minio, routed_config, bucket):
    res = run_cli(build, minio, "ls", "-c", routed_config, f"s3://{bucket}/nothing/here/")
    assert res.returncode == EX_NOINPUT and "no such prefix" in res.stderr
    res = run_cli(build, minio, "ls", "-c", routed_config, "s3://no-such-bucket-rw/")
    assert res.returncode == EX_NOINPUT and "NoSuchBucket" in res.stderr
    res = run_cli(build, minio, "ls", "-c", routed_config, "/not/routed")
    assert res.returncode == EX_USAGE and "not inside any route" in res.stderr
    res = run_cli(build, minio, "ls", "-c", routed_config, "s3://")
    assert res.returncode == EX_USAGE


def test_run_sets_environment(build, minio, routed_config):
    res = run_cli(build, minio, "run", "-c", routed_config, "--", "env",
                  env={"LD_PRELOAD": "", "RWSPLIT_CONFIG": ""})
    assert res.returncode == 0, res.stderr
    env = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    assert env["LD_PRELOAD"] == os.path.realpath(build.lib)
    assert env["RWSPLIT_CONFIG"] == os.path.realpath(routed_config)


def test_run_prepends_to_existing_preload(build, minio, routed_config):
    other = "/lib/x86_64-linux-gnu/libm.so.6"
    res = run_cli(build, minio, "run", "-c", routed_config, "--", "env",
                  env={"LD_PRELOAD": other})
    env = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    assert env["LD_PRELOAD"] == f"{os.path.realpath(build.lib)}:{other}"


def test_run_exit_status_and_errors(build, minio, routed_config, tmp_path):
    res = run_cli(build, minio, "run", "-c", routed_config, "--", "sh", "-c", "exit 7")
    assert res.returncode == 7
    res = run_cli(build, minio, "run", "-c", routed_config, "--", "/no/such/program")
    assert res.returncode == 127 and "/no/such/program" in res.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[store]\nendpoint = ftp://x\n")
    res = run_cli(build, minio, "run", "-c", bad, "--", "true")
    assert res.returncode == EX_CONFIG and f"{bad}:2" in res.stderr


def test_preloaded_program_with_bad_config_exits_78(build, minio, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[read /mnt/x]\nurl = s3://bucket/x/\nstore = missing\n")
    env = minio.child_env({"LD_PRELOAD": str(build.require(build.lib)),
                           "RWSPLIT_CONFIG": str(bad)})
    res = subprocess.run(["true"], env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == EX_CONFIG
    assert "RWSPLIT_DISABLE=1" in res.stderr and str(bad) in res.stderr
    env["RWSPLIT_DISABLE"] = "1"
    res = subprocess.run(["true"], env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
