"""Part 2, ``suite chapters``: every chapter notebook at the standard tier, with nbclient (a
Jupyter kernel) or, where it is missing, each code cell with plain Python in a child process."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnet_lab.io import atomic_write_text
from resnet_lab.suite.common import (
    _RESERVE_S,
    DEFAULT_BUDGET_S,
    _environ,
    _package_root,
    _pythonpath,
    prepare_data,
)
from resnet_lab.suite.report import Budget, Report, _render_chapters, _skipped, _tail

_JUPYTER = ("nbclient", "nbformat", "ipykernel", "IPython")


def _missing(modules: Sequence[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _install_wheels(wheels: Path, report: Report) -> Path | None:
    """Install carried wheels into a folder of their own (never the machine's Python);
    returns that folder, or None if pip failed."""
    files = sorted(str(w) for w in wheels.glob("*.whl"))
    if not files:
        report.log(f"no wheels in {wheels}")
        return None
    site = Path(tempfile.gettempdir()) / "resnet-lab-suite-site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--upgrade",
        "--target",
        str(site),
        *files,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        report.log(f"installing the wheels failed: {_tail(done.stderr)}")
        return None
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    report.log(f"installed {len(files)} wheels from {wheels} into {site}")
    return site


def _pick_executor(executor: str, wheels: Path | None, report: Report) -> tuple[str, Path | None]:
    """nbclient where it and a kernel can be imported (installing carried wheels if need be),
    else plain Python; returns (executor, folder of installed wheels)."""
    site = None
    missing = _missing(_JUPYTER)
    if missing and executor != "exec" and wheels is not None:
        site = _install_wheels(Path(wheels), report)
        missing = _missing(_JUPYTER)
    if not missing and executor != "exec":
        return "nbclient", site
    if executor == "nbclient":
        raise ValueError(f"{', '.join(missing)} not installed; {_WHEELS_HINT}")
    if missing:
        report.log(
            f"{', '.join(missing)} not installed: running the chapters' code cells with "
            f"plain Python instead ({_WHEELS_HINT})"
        )
    return "exec", site


_WHEELS_HINT = (
    "bring them: run `python tools/gpu_carry.py` where pip can download (it puts the wheels "
    "in .carry/wheels), carry .carry and add --wheels .carry/wheels"
)


def _chapter_plan(chapters: Sequence[str] | None) -> list[Path]:
    book = _package_root() / "book"
    found = sorted(book.glob("*.ipynb"))
    if not found:
        raise ValueError(f"no chapter notebooks in {book}; run `suite chapters` from a checkout")
    if chapters:
        chosen = [p for p in found if any(p.name.startswith(c) for c in chapters)]
        if not chosen:
            raise ValueError(
                f"no chapter starts with {' or '.join(chapters)}; chapters: "
                f"{', '.join(p.stem for p in found)}"
            )
        return chosen
    return found


def _code_cells(path: Path) -> int:
    """Code cells of a notebook (a notebook that is not valid JSON fails the plan here)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path.name} is not a readable notebook ({exc})") from exc
    return sum(c.get("cell_type") == "code" for c in nb.get("cells", []))


def _dry_run_notebook(folder: Path) -> Path:
    """A two-cell notebook that goes through the chapters' own first steps."""
    cells = [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Dry run"},
        {
            "cell_type": "code",
            "id": "setup",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": 'import sys\nif "google.colab" in sys.modules:\n    %pip install -q resnet-lab\n'
            "import resnet_lab as rl\nenv = rl.setup()\n"
            'assert env.tier == "standard", env.tier',
        },
        {
            "cell_type": "code",
            "id": "data",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "from resnet_lab.data import load_data\n"
            'print(len(load_data("synthetic", train_per_class=2, test_per_class=1).train_y))',
        },
    ]
    nb = {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    }
    path = folder / "00_dry_run.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _execute_nbclient(path: Path, deadline: float) -> tuple[dict[str, Any], bytes | None]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # Each cell may use what is left of the budget, so the whole chapter stays inside it.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),  # noqa: ARG005
        store_widget_state=True,
        startup_timeout=120,
    )
    result: dict[str, Any] = {"status": "ok"}
    try:
        client.execute()
    except CellTimeoutError:
        result = {"status": "timeout", "error": "a cell ran past the budget"}
    except CellExecutionError as exc:
        result = {"status": "error", "ename": exc.ename, "evalue": _tail(exc.evalue, 300)}
    except DeadKernelError as exc:
        result = {"status": "error", "ename": "DeadKernelError", "evalue": _tail(str(exc), 300)}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    ran = [i for i in code if nb.cells[i].get("execution_count")]
    result["code_cells"], result["cells_run"] = len(code), len(ran)
    if result["status"] != "ok" and ran:
        result["cell"] = ran[-1]
    return result, nbformat.writes(nb).encode()


def _execute_plain(path: Path, deadline: float, log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="resnet-lab-suite-") as tmp:
        out = Path(tmp) / "result.json"
        with open(log, "a", encoding="utf-8") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "resnet_lab.suite", "exec-notebook", str(path), str(out)],
                cwd=path.parent,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": _pythonpath(), "MPLBACKEND": "Agg"},
            )
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"status": "timeout", "error": "ran past the budget"}
        if not out.exists():
            return {"status": "error", "ename": "crash", "evalue": f"exit status {proc.returncode}"}
        return json.loads(out.read_text())


def _plain_source(source: str) -> str:
    """A cell's code for plain Python: IPython magic and shell lines become ``pass``."""
    if source.lstrip().startswith("%%"):
        return "pass  # a cell magic, skipped"
    lines = []
    for line in source.splitlines():
        body = line.lstrip()
        if body.startswith(("%", "!")):
            line = line[: len(line) - len(body)] + "pass  # IPython magic skipped"
        lines.append(line)
    return "\n".join(lines)


def _exec_notebook_worker(path: str, result_path: str) -> int:
    """Child process of the plain-Python executor: every code cell in one namespace."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    result: dict[str, Any] = {"status": "ok", "code_cells": len(code), "cells_run": 0}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            exec(compile(_plain_source(source), f"{Path(path).name}:cell{i}", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - recorded for the summary
            traceback.print_exc()
            result.update(
                status="error", cell=i, ename=type(exc).__name__, evalue=_tail(str(exc), 300)
            )
            break
        result["cells_run"] += 1
    atomic_write_text(result_path, json.dumps(result))
    return 0


def run_chapters(
    out: Path,
    data: str | os.PathLike | None = None,
    wheels: Path | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    dry_run: bool = False,
    chapters: Sequence[str] | None = None,
    executor: str = "auto",
) -> int:
    """Part 2: every chapter at the standard tier; returns 0, or 1 if a chapter failed."""
    if executor not in ("auto", "nbclient", "exec"):
        raise ValueError(f"executor {executor!r} unknown; choose auto, nbclient or exec")
    budget = Budget(budget_s)
    report = Report(Path(out), "chapters", budget, _render_chapters)
    plan = _chapter_plan(chapters)
    kind, site = _pick_executor(executor, wheels, report)
    if _missing(["ipywidgets"]):
        report.log(
            f"ipywidgets is not installed, so chapters with live widgets will fail; {_WHEELS_HINT}"
        )
    env = {
        "RESNET_LAB_TIER": "standard",
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": _pythonpath(*([site] if site else [])),
    }
    spec = prepare_data(data, dry_run=False) if data is not None else None
    if spec is not None:
        env["RESNET_LAB_DATA"] = str(Path(spec).resolve())
    report.data.update(
        dry_run=dry_run,
        executor=kind,
        tier="standard",
        data=Path(spec).name if spec else "auto (RESNET_LAB_DATA or download)",
        plan={p.name: _code_cells(p) for p in plan},
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="resnet-lab-suite-") as tmp, _environ(**env):
        to_run = [_dry_run_notebook(Path(tmp))] if dry_run else plan
        report.log(
            f"{len(to_run)} notebook(s) with {kind}, tier standard, budget {budget.seconds:.0f} s"
        )
        for path in to_run:
            left = budget.left() - _RESERVE_S
            if left < 10:
                report.stage(path.stem, _skipped(f"{max(0.0, left):.0f} s of the budget were left"))
                continue
            t0 = time.monotonic()
            deadline = t0 + left
            try:
                if kind == "nbclient":
                    result, executed = _execute_nbclient(path, deadline)
                    report.extra[path.name] = executed
                else:
                    result = _execute_plain(path, deadline, report.log_path)
            except Exception as exc:  # noqa: BLE001 - one chapter's failure costs only that one
                result = {"status": "error", "ename": type(exc).__name__, "evalue": _tail(str(exc))}
            result["seconds"] = round(time.monotonic() - t0, 1)
            failed = failed or result["status"] != "ok"
            report.log(
                f"{path.name}: {result['status']} in {result['seconds']} s"
                + (
                    f" ({result.get('ename')}: {result.get('evalue')})"
                    if result["status"] == "error"
                    else ""
                )
            )
            report.stage(path.stem, result)
    report.flush()
    return 1 if failed else 0
