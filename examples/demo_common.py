"""What the examples' demo scripts (examples/*/demo.py) share: messages, a config pointed at
the demo's MinIO, a fresh pod's write-route tree, and running a job with its output echoed."""

import os
import re
import shutil
import subprocess
import time


def say(msg):
    print(f"[demo] {msg}", flush=True)


def localize_config(text, endpoint, bucket_from, bucket=None, spool=None, cache_dir=None):
    """An example's rwsplit.conf pointed at another store endpoint, bucket (in place of
    bucket_from), spool and cache directory."""
    text = re.sub(r"(?m)^(endpoint\s*=\s*)\S+", lambda m: m.group(1) + endpoint, text)
    if bucket:
        text = text.replace(f"s3://{bucket_from}/", f"s3://{bucket}/")
    if spool:
        text = re.sub(r"(?m)^(spool\s*=\s*)\S+", lambda m: m.group(1) + str(spool), text)
    if cache_dir:
        text = re.sub(r"(?m)^(cache_dir\s*=\s*)\S+", lambda m: m.group(1) + str(cache_dir),
                      text)
    return text


def new_pod(tree):
    """What a new pod starts from: the write route's tree (an emptyDir) empty, and no agent
    of an earlier run keeping it in sync (`rwsplit agent --tree TREE`). The checkpoints are
    then only in the bucket, as placeholders once the job's agent takes the tree over."""
    def agents():
        return subprocess.run(["pgrep", "-f", "--", f"--tree {tree}$"], capture_output=True,
                              text=True).stdout.split()
    for pid in agents():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not agents():
            break
        time.sleep(0.05)
    shutil.rmtree(tree, ignore_errors=True)


def run_job(cmd, env, label, noise=None):
    """Runs the job, echoing its lines (but those noise matches) as they come; returns
    (returncode, output, seconds)."""
    say(f"{label}: {' '.join(str(c) for c in cmd)}")
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors="replace")
    out = []
    for line in p.stdout:
        out.append(line)
        if not (noise and noise.search(line)):
            print(f"    {line}", end="", flush=True)
    p.wait()
    return p.returncode, "".join(out), time.time() - t0


def run_problems(label, rc, r):
    """The problems of one run: its exit status and its write summary (pending, failed)."""
    problems = []
    if rc != 0:
        problems.append(f"{label}: exit status {rc}")
    if r["pending"] or r["failed"] or r["uploaded"] is None:
        problems.append(f"{label}: uploads pending or failed (summary: {r['uploaded']} "
                        f"uploaded, {r['pending']} pending, {r['failed']} failed)")
    return problems


def show_objects(mc, bucket, prefix):
    """Lists bucket/prefix with mc, the independent client, prints it and returns the keys
    (relative to prefix)."""
    entries = mc.ls(f"{bucket}/{prefix}")
    say(f"objects in s3://{bucket}/{prefix} (listed by mc):")
    for e in entries:
        print(f"    {e['size']:>10}  {e['key']}")
    return [e["key"] for e in entries]


def verdict(failures, ok_message):
    """Prints the failures, or ok_message when there are none; returns the exit status."""
    if failures:
        say("FAILED:")
        for f in failures:
            print(f"    - {f}")
        return 1
    say(ok_message)
    return 0
