"""PyTorch checkpoints into a write route (issue 14): torch.save, a keep-last-3 loop of
temp-then-rename saves, safetensors.torch.save_file (Rust: a raw renameat) and
torch.distributed.checkpoint.save in one process, then torch.load of a checkpoint that is
only in the bucket.

The same script runs against a plain local directory (not preloaded) and against the route
(preloaded, RWSPLIT_LOG=debug); the trees must match, the bucket (read with boto3) must hold
exactly one object per file of the tree, and what the objects load to (torch, safetensors,
dcp, all in this process) must equal the local files' tensors.

Requests: a preloaded program logs, at debug, every request it sends to the store itself
("debug: GET bucket/key -> 200 ...") and every time it waits for the tree's agent to
download or upload for it ("waits for its agent to ..."). The save phases of the script must
show none of either: a save is local file work, uploads happen behind it. The one exception
is dcp's default sync_files=True, whose fsync of each file is a request for durability and
waits for the upload; with sync_files=False dcp.save makes no request either.

Needs torch and safetensors (tests/requirements.txt, installed by scripts/deps.sh).
"""

import hashlib
import io
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness.proc import py
from tests.integration.test_write_tree import (assert_bucket, assert_same_tree,  # noqa: F401
                                               expected_objects, local, make_wtree, object_bytes,
                                               ok, wt)

import torch  # noqa: E402 - a missing torch fails the module: scripts/deps.sh installs it

# dcp without a process group says so; a single process is what is meant.
pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")

SAVE = r"""
import os, sys
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_file

out = sys.argv[1]
def phase(name):
    print("phase " + name, file=sys.stderr, flush=True)

torch.manual_seed(0)
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Linear(64, 1024), torch.nn.ReLU(),
                            torch.nn.Linear(1024, 2048), torch.nn.ReLU(),
                            torch.nn.Linear(2048, 10))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
def train_step():
    loss = model(torch.randn(8, 64)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

phase("mkdir")
os.makedirs(os.path.join(out, "ckpt"))
phase("keep-last-3")
for step in range(1, 6):
    train_step()
    tmp = os.path.join(out, "ckpt", ".ckpt-%d.pt.tmp" % step)
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict()}, tmp)
    os.replace(tmp, os.path.join(out, "ckpt", "ckpt-%d.pt" % step))
    kept = sorted(n for n in os.listdir(os.path.join(out, "ckpt")) if n.endswith(".pt"))
    for name in sorted(kept, key=lambda n: int(n[5:-3]))[:-3]:
        os.remove(os.path.join(out, "ckpt", name))
phase("torch.save")
torch.save(model.state_dict(), os.path.join(out, "model.pt"))
phase("safetensors")
save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          os.path.join(out, "model.safetensors"), metadata={"step": "5"})
phase("dcp-nosync")
dcp.save({"model": model.state_dict()},
         storage_writer=dcp.FileSystemWriter(os.path.join(out, "dcp-nosync"), sync_files=False))
phase("dcp")
dcp.save({"model": model.state_dict(), "opt": opt.state_dict()},
         checkpoint_id=os.path.join(out, "dcp"))
phase("end")
"""

REQUEST_RE = re.compile(r"debug: (?:GET|PUT|HEAD|DELETE|POST) \S+ ->|waits for its agent to")
# Phases that are plain saves of new files: not one request may appear in them.
NO_REQUEST_PHASES = ["mkdir", "keep-last-3", "torch.save", "safetensors", "dcp-nosync"]


def requests_by_phase(stderr):
    """phase -> the request lines the preloaded program logged while in it."""
    phase, out = "start", {"start": []}
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("phase "):
            phase = line[6:]
            out[phase] = []
        elif REQUEST_RE.search(line):
            out[phase].append(line)
    return out


def model_state():
    """The model's state_dict as the script builds it (same seed, same steps)."""
    ns = {}
    src = SAVE.split('phase("mkdir")')[0].replace("out = sys.argv[1]", "out = None")
    exec(src, ns)  # noqa: S102 - the test's own script, defining model/opt/train_step
    for _ in range(5):
        ns["train_step"]()
    return ns["model"].state_dict(), ns["opt"].state_dict()


def assert_tensors_equal(got, want, what):
    assert sorted(got) == sorted(want), f"{what}: keys {sorted(got)} vs {sorted(want)}"
    for k in want:
        assert torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype, f"{what}: {k}"


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "torch_save.py"
    p.write_text(textwrap.dedent(SAVE))
    return p


def test_torch_checkpoints(wt, local, script, tmp_path):
    """torch.save, keep-last-3, safetensors, dcp: same tree as local disk, bucket exact,
    objects load to the script's tensors, no request in the save phases."""
    ok(local.run(py(script, local.out), timeout=120))
    res = ok(wt.run(py(script, wt.out), timeout=120, extra_env={"RWSPLIT_LOG": "debug"}))
    stderr = res.stderr.decode(errors="replace")
    assert "debug:" in stderr and "phase end" in stderr, res.describe()

    # dcp's metadata pickles objects whose bytes need not repeat between two runs; what
    # they load to is compared below.
    assert_same_tree(wt.out, local.out, content_differs={"dcp/.metadata", "dcp-nosync/.metadata"},
                     context=res.describe())
    names = sorted(p.name for p in Path(wt.out, "ckpt").iterdir())
    assert names == ["ckpt-3.pt", "ckpt-4.pt", "ckpt-5.pt"], names
    assert_bucket(wt, expected_objects(wt), context=res.describe())

    requests = requests_by_phase(res.stderr)
    for phase in NO_REQUEST_PHASES:
        assert requests.get(phase) == [], f"requests while in {phase}: {requests.get(phase)}\n" \
            f"{res.describe()}"
    # dcp with fsync: the only requests are the waits for the fsync'd files' uploads.
    assert requests["dcp"], f"dcp's fsyncs did not wait for the store\n{res.describe()}"
    assert all("upload (fsync)" in line for line in requests["dcp"]), requests["dcp"]

    model_sd, opt_sd = model_state()
    blob = object_bytes(wt.boto, wt.bucket, wt.key("ckpt/ckpt-5.pt"))
    ck = torch.load(io.BytesIO(blob), weights_only=True)
    assert ck["step"] == 5
    assert_tensors_equal(ck["model"], model_sd, "ckpt-5.pt model")
    assert ck["opt"]["param_groups"] == opt_sd["param_groups"]
    blob = object_bytes(wt.boto, wt.bucket, wt.key("model.pt"))
    assert_tensors_equal(torch.load(io.BytesIO(blob), weights_only=True), model_sd, "model.pt")

    from safetensors.torch import load as st_load
    blob = object_bytes(wt.boto, wt.bucket, wt.key("model.safetensors"))
    assert_tensors_equal(st_load(blob), model_sd, "model.safetensors")

    import torch.distributed.checkpoint as dcp
    for name in ("dcp", "dcp-nosync"):
        d = tmp_path / f"from-bucket-{name}"
        d.mkdir()
        for key in expected_objects(wt, name):
            (d / key.rsplit("/", 1)[1]).write_bytes(object_bytes(wt.boto, wt.bucket, key))
        target = {"model": {k: torch.zeros_like(v) for k, v in model_sd.items()}}
        dcp.load(target, checkpoint_id=str(d))
        assert_tensors_equal(target["model"], model_sd, f"{name} from the bucket")


RESUME = r"""
import hashlib, sys, torch
ck = torch.load(sys.argv[1], weights_only=True)
print(ck["step"], hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


def test_torch_load_resumes_from_the_bucket(make_wtree, bucket, script, tmp_path):
    """A new pod: the checkpoints are only in the bucket. A preloaded torch.load of the
    newest reads the object (downloaded on first open), step and bytes as saved."""
    first = make_wtree(bucket)
    ok(first.run(py(script, first.out), timeout=120))
    saved = object_bytes(first.boto, bucket, first.key("ckpt/ckpt-5.pt"))
    first.kill_agents()
    pod = make_wtree(bucket)          # another route path, the same prefix: nothing local
    resume = tmp_path / "resume.py"
    resume.write_text(RESUME)
    res = ok(pod.run(py(resume, pod.path("ckpt/ckpt-5.pt")), timeout=60,
                     extra_env={"RWSPLIT_LOG": "debug"}))
    assert "waits for its agent to download ckpt/ckpt-5.pt" in res.stderr.decode(), \
        res.describe()
    assert res.stdout.decode().split() == ["5", hashlib.sha256(saved).hexdigest()], \
        res.describe()
    assert object_bytes(pod.boto, bucket, pod.key("ckpt/ckpt-5.pt")) == saved
