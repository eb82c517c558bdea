"""Execute chapter notebooks in place, so their stored outputs are fresh and tidy.

nbval compares the cells marked ``# NBVAL_CHECK_OUTPUT`` against these stored
outputs, so re-run this after changing a chapter or the package:

    RESNET_LAB_TIER=quick python tools/execute_notebooks.py book/*.ipynb

Outputs are stored from the quick tier, execution counts are numbered 1..n,
timing metadata is dropped and widget state is not stored (the book's
kernel-free explorers carry their own data).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def tidy(nb: nbformat.NotebookNode) -> None:
    """Sequential execution counts, no per-cell timing, no widget state."""
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        for output in cell.get("outputs", []):
            if "execution_count" in output:
                output["execution_count"] = count
    nb.metadata.pop("widgets", None)


def execute(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # True, or nbclient fails on cells that display widgets; tidy() drops the state.
        store_widget_state=True,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    tidy(nb)
    nbformat.write(nb, path)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    os.environ.setdefault("RESNET_LAB_TIER", "quick")
    for path in args.notebooks:
        print(f"executing {path} (tier {os.environ['RESNET_LAB_TIER']}) ...", flush=True)
        print(f"  {execute(path, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
