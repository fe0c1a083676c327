#!/usr/bin/env python3
"""`make demo`: the tf-mnist training job with its dataset and checkpoints in an object store.

1. starts a throw-away MinIO on 127.0.0.1 (temporary data dir),
2. uploads the Fashion-MNIST IDX files with `mc` to s3://rwsplit-demo/tf-train/train/data/,
3. runs `rwsplit run -c rwsplit.conf -- python main.py` unchanged (TEST_TMPDIR=/mnt; the read
   and write routes of rwsplit.conf are the guide's two volumes),
4. lists the checkpoint objects with `mc` and checks them (kept steps complete, `checkpoint`
   state file, event files, no temporary names, deleted checkpoints gone, no upload pending),
5. runs the job again, which resumes from the bucket's latest checkpoint,
6. runs it once more from a local copy of the dataset without rwsplit, for comparison,
7. prints a summary and stops MinIO. Exits non-zero when any check fails.

    .tools/venv/bin/python examples/tf-mnist/demo.py [--steps N] [--resume-steps N]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

sys.path.insert(0, str(HERE.parent))
import demo_common as common  # noqa: E402
from demo_common import say  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402

DATASET = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DATA_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CONFIG = HERE / "rwsplit.conf"
BUCKET = "rwsplit-demo"
DATA_PREFIX = "tf-train/train/data/"
LOGS_PREFIX = "tf-train/training_logs/"
PYTHON = REPO / ".tools" / "venv" / "bin" / "python"
# TensorFlow's start-up chatter, not the job's output.
NOISE = re.compile(r"oneDNN|cpu_feature_guard|rebuild TensorFlow|AVX|TF_ENABLE_ONEDNN|"
                   r"absl::InitializeLog|E0000|WARNING: All log messages")
# A temporary name TensorFlow (or anything else) may leave behind.
TEMP_NAME = re.compile(r"_temp|\.tmp|tmp[0-9a-f]{6,}|\.tempstate", re.IGNORECASE)


def localize_config(text, endpoint, bucket=BUCKET, spool=None, cache_dir=None):
    """rwsplit.conf pointed at another store endpoint, bucket, spool and cache directory."""
    return common.localize_config(text, endpoint, BUCKET, bucket, spool, cache_dir)


def new_pod(tree="/mnt/training_logs"):
    common.new_pod(tree)


def upload_dataset(mc, bucket=BUCKET):
    """The four IDX files into bucket/tf-train/train/data/, the way a user would."""
    for name in DATA_FILES:
        mc.put(DATASET / name, f"{bucket}/{DATA_PREFIX}{name}")


def parse_job_output(text):
    """The numbers the job printed (see main.py's docstring)."""
    def last(pattern, conv=float):
        found = re.findall(pattern, text, re.MULTILINE)
        return conv(found[-1]) if found else None
    return {
        "dataload_s": last(r"^dataload cost time: ([0-9.]+)"),
        "last_step": last(r"^Accuracy at step (\d+):", int),
        "accuracy": last(r"^Accuracy at step \d+: ([0-9.]+)"),
        "saved_steps": [int(s) for s in re.findall(r"^Save checkpoint at step (\d+)", text,
                                                   re.MULTILINE)],
        "restored_step": last(r"^Restored checkpoint \S+ at step (\d+)", int),
        "ms_per_step": last(r"\(([0-9.]+) ms/step\)"),
        "saves": last(r"checkpoint saves (\d+) taking", int),
        "save_s": last(r"checkpoint saves \d+ taking ([0-9.]+)s"),
        "uploaded": last(r"write summary: (?:\S+: )?(\d+) files uploaded", int),
        "pending": last(r"write summary: .* (\d+) pending", int),
        "failed": last(r"write summary: .* (\d+) failed", int),
    }


def check_checkpoints(keys, kept_steps, state_text=None):
    """Problems with the objects under training_logs/ (names relative to it), or []."""
    problems = []
    want = {"checkpoint"}
    for s in kept_steps:
        want |= {f"ckpt-{s}.index", f"ckpt-{s}.data-00000-of-00001"}
    missing = sorted(want - set(keys))
    if missing:
        problems.append(f"missing objects: {missing}")
    ckpts = {k for k in keys if k.startswith("ckpt-")}
    extra = sorted(ckpts - want)
    if extra:
        problems.append(f"checkpoints that should have been deleted: {extra}")
    temps = sorted(k for k in keys if TEMP_NAME.search(k))
    if temps:
        problems.append(f"temporary names left: {temps}")
    if not any(k.startswith("events.out.tfevents.") for k in keys):
        problems.append("no TensorBoard event file")
    if state_text is not None and kept_steps and \
            f'model_checkpoint_path: "ckpt-{max(kept_steps)}"' not in state_text:
        problems.append(f"the checkpoint state file does not name ckpt-{max(kept_steps)}: "
                        f"{state_text!r}")
    return problems


def run_job(cmd, env, label):
    return common.run_job(cmd, env, label, NOISE)


def kept(saved_steps, max_to_keep):
    return sorted(set(saved_steps))[-max_to_keep:]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="steps of the first run")
    ap.add_argument("--resume-steps", type=int, default=300, help="steps of the resumed run")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--no-compare", action="store_true", help="skip the local-disk run")
    args = ap.parse_args(argv)
    rwsplit = Path(args.build) / "bin" / "rwsplit"
    for need in (rwsplit, DATASET / DATA_FILES[0], PYTHON):
        if not Path(need).exists():
            sys.exit(f"demo: {need} is missing: run `make demo` (it installs and builds)")
    failures = []
    work = Path(tempfile.mkdtemp(prefix="rwsplit-demo-"))
    # The read cache on tmpfs, as configured for real use.
    cache = Path(tempfile.mkdtemp(prefix="rwsplit-demo-cache-",
                                  dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        with MinioServer() as minio, Mc(minio) as mc:
            say(f"MinIO at {minio.endpoint} (data in a temporary directory)")
            mc.mb(BUCKET)
            upload_dataset(mc)
            say(f"uploaded the dataset with mc: {len(mc.ls(f'{BUCKET}/{DATA_PREFIX}'))} "
                f"objects under s3://{BUCKET}/{DATA_PREFIX}")
            conf = work / "rwsplit.conf"
            conf.write_text(localize_config(CONFIG.read_text(), minio.endpoint,
                                            spool=work / "spool", cache_dir=cache))
            # The store's credentials under the names an OSS pod gets from its Secret.
            env = minio.child_env({"TEST_TMPDIR": "/mnt", "RWSPLIT_LOG": "info",
                                   "OSS_ACCESS_KEY_ID": minio.env()["AWS_ACCESS_KEY_ID"],
                                   "OSS_ACCESS_KEY_SECRET": minio.env()["AWS_SECRET_ACCESS_KEY"],
                                   "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                                   "TF_CPP_MIN_LOG_LEVEL": "2"})
            job = [str(rwsplit), "run", "-c", str(conf), "--", str(PYTHON),
                   str(HERE / "main.py")]
            runs = {}
            for label, steps in (("first run (cold cache)", args.steps),
                                 ("second run (resumes, warm cache)", args.resume_steps)):
                new_pod()
                rc, out, secs = run_job(job + ["--steps", str(steps)], env, label)
                r = runs[label] = parse_job_output(out) | {"rc": rc, "wall_s": secs}
                failures += common.run_problems(label, rc, r)
                keys = common.show_objects(mc, BUCKET, LOGS_PREFIX)
                state = mc.cat(f"{BUCKET}/{LOGS_PREFIX}checkpoint").decode() \
                    if "checkpoint" in keys else None
                saved = runs["first run (cold cache)"]["saved_steps"] + \
                    (r["saved_steps"] if label.startswith("second") else [])
                failures += [f"{label}: {p}" for p in check_checkpoints(keys, kept(saved, 3),
                                                                           state)]
            first, second = runs.values()
            if second["restored_step"] != (first["saved_steps"] or [None])[-1]:
                failures.append(f"the second run restored step {second['restored_step']}, "
                                f"not the last saved step {first['saved_steps'][-1:]}")
            local = None
            if not args.no_compare:
                data = work / "local" / "train" / "data"
                data.mkdir(parents=True)
                for name in DATA_FILES:
                    shutil.copy(DATASET / name, data / name)
                lenv = minio.child_env({"TEST_TMPDIR": str(work / "local"),
                                        "TF_CPP_MIN_LOG_LEVEL": "2"})
                rc, out, secs = run_job([str(PYTHON), str(HERE / "main.py"), "--steps",
                                         str(args.resume_steps)], lenv,
                                        "same job on local disk, no rwsplit (for comparison)")
                local = parse_job_output(out) | {"rc": rc, "wall_s": secs}
                if rc != 0:
                    failures.append(f"local-disk run: exit status {rc}")
            summary(first, second, local, len(keys))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return common.verdict(failures, "OK: checkpoints, state file and event files are in the "
                          "bucket, no temporary names, old checkpoints deleted, the second "
                          "run resumed from the last saved step, nothing left pending")


def summary(first, second, local, nobjects):
    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    def per_save(r):
        return r["save_s"] / r["saves"] if r and r["saves"] else None
    say("summary")
    print(f"    first run:  steps 0..{f(first['last_step'], '{}')}, final accuracy "
          f"{f(first['accuracy'], '{:.4f}')}, dataload {f(first['dataload_s'])} s, "
          f"{f(first['uploaded'], '{}')} uploads, {f(first['pending'], '{}')} pending")
    print(f"    second run: resumed at step {f(second['restored_step'], '{}')}, steps to "
          f"{f(second['last_step'], '{}')}, final accuracy {f(second['accuracy'], '{:.4f}')}, "
          f"dataload {f(second['dataload_s'])} s, {f(second['uploaded'], '{}')} uploads, "
          f"{f(second['pending'], '{}')} pending")
    print(f"    objects under training_logs/: {nobjects}")
    rows = [("dataload (s)", "dataload_s", "{:.3f}"), ("step time (ms)", "ms_per_step", "{:.1f}")]
    print(f"    {'':24}{'local disk':>12}{'rwsplit cold':>14}{'rwsplit warm':>14}")
    for name, key, fmt in rows:
        print(f"    {name:24}{f(local and local[key], fmt):>12}{f(first[key], fmt):>14}"
              f"{f(second[key], fmt):>14}")
    print(f"    {'checkpoint save (ms)':24}"
          f"{f(per_save(local) and per_save(local) * 1000, '{:.1f}'):>12}"
          f"{f(per_save(first) and per_save(first) * 1000, '{:.1f}'):>14}"
          f"{f(per_save(second) and per_save(second) * 1000, '{:.1f}'):>14}")
    print("    (checkpoint save: time manager.save() took in the training loop, per save; "
          "rwsplit uploads after close, in the background)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
