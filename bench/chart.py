#!/usr/bin/env python3
"""Draws bench/results.png from the bench/results/*.json files the benchmark scripts leave
(schema: bench/common.py save_json), one panel per file, and links it from bench/RESULTS.md
(section `chart`). Every rwsplit bar is drawn in one colour, the ceilings and local rows in
grey, the alternatives in their own colours, so a panel reads at a glance.

    .tools/venv/bin/python bench/chart.py [--json-dir bench/results] [--png bench/results.png]
                                          [--out bench/RESULTS.md]
"""

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results_md import replace_section  # noqa: E402

# Panels in the order of the workloads; files not listed come after, by name.
ORDER = ["small_files", "small_files_cp", "many_files", "large_file", "checkpoint", "checkpoint_durable",
         "metadata", "passthrough", "memory"]


def colour(system):
    s = system.lower()
    if s.startswith("rwsplit"):
        return "#d62728"
    if "ceiling" in s or "s3get" in s:
        return "#555555"
    if "tmpfs" in s:
        return "#d0d0d0"
    if s.startswith("local"):
        return "#aaaaaa"
    if "s3fs" in s:
        return "#1f77b4" if "tuned" not in s else "#6baed6"
    if "rclone" in s:
        return "#2ca02c"
    if "s3torchconnector" in s:
        return "#e377c2"
    if "boto3" in s or "sdk" in s:
        return "#ff7f0e"
    if "mc " in s or s == "mc" or s.startswith("mc"):
        return "#9467bd"
    return "#8c564b"


def panel(ax, data):
    groups = data.get("groups", [])
    systems = []
    for g in groups:
        for name in g.get("values", {}):
            if name not in systems:
                systems.append(name)
    width = 0.8 / max(1, len(systems))
    for i, name in enumerate(systems):
        xs, ys = [], []
        for gi, g in enumerate(groups):
            v = g.get("values", {}).get(name)
            if v is not None:
                xs.append(gi - 0.4 + width * (i + 0.5))
                ys.append(v)
        ax.bar(xs, ys, width, label=name, color=colour(name),
               edgecolor="black" if name.lower().startswith("rwsplit") else "none",
               linewidth=0.6, hatch="//" if "tuned" in name or "all" in name else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g["label"] for g in groups], fontsize=8)
    unit = data.get("unit", "")
    better = "lower is better" if data.get("lower_is_better") else "higher is better"
    ax.set_ylabel(f"{unit} ({better})", fontsize=8)
    if data.get("log_scale"):
        ax.set_yscale("log")
    ax.set_title(data.get("title", ""), fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=6, loc="best", ncol=2)
    ax.grid(axis="y", alpha=0.3)


def load(json_dir):
    files = sorted(Path(json_dir).glob("*.json"),
                   key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER),
                                  p.stem))
    out = []
    for f in files:
        data = json.loads(f.read_text())
        if data.get("groups"):
            out.append((f.stem, data))
    return out


def draw(panels, png):
    cols = 2
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(14, 4.2 * rows), squeeze=False)
    for ax, (_, data) in zip(axes.flat, panels):
        panel(ax, data)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("rwsplit vs alternatives and ceilings on one MinIO (medians; see RESULTS.md)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(png, dpi=90)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json-dir", default=str(REPO / "bench" / "results"))
    ap.add_argument("--png", default=str(REPO / "bench" / "results.png"))
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    args = ap.parse_args(argv)
    panels = load(args.json_dir)
    if not panels:
        print(f"chart: no results in {args.json_dir}", file=sys.stderr)
        return 1
    draw(panels, args.png)
    rel = Path(args.png).resolve()
    try:
        rel = rel.relative_to(Path(args.out).resolve().parent)
    except ValueError:
        pass
    body = ("# Chart\n\n"
            f"![rwsplit benchmark chart]({rel})\n\n"
            f"Drawn by `bench/chart.py` from {', '.join(f'`{n}.json`' for n, _ in panels)} "
            "in bench/results/ (the medians of the tables below); rwsplit in red.\n")
    replace_section(args.out, "chart", body)
    print(f"chart: {len(panels)} panels -> {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
