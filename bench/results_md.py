"""bench/RESULTS.md holds one section per benchmark, each between its own marker comments

    <!-- NAME:begin -->
    ...
    <!-- NAME:end -->

so that every script rewrites only its own section and keeps the others as they are.
"""

import os
from pathlib import Path


def markers(name):
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(path, name, body):
    """Puts body between NAME's markers in path: replaces the section when the file has it,
    appends it when not (a new file holds only this section). A file with only one of the two
    markers is an error: guessing where the section ends could drop another one."""
    path = Path(path)
    begin, end = markers(name)
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines()
    section = [begin] + body.rstrip("\n").splitlines() + [end]
    has_begin, has_end = begin in lines, end in lines
    if has_begin != has_end:
        raise ValueError(f"{path}: has {'only ' + begin if has_begin else 'only ' + end}; "
                         f"fix the file by hand")
    if has_begin:
        i, j = lines.index(begin), lines.index(end)
        if j < i:
            raise ValueError(f"{path}: {end} comes before {begin}")
        lines[i:j + 1] = section
    else:
        lines += ([""] if lines and lines[-1].strip() else []) + section
    # Written beside the file and renamed over it, so an interrupted run leaves the old file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
