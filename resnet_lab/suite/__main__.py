"""The suite's child processes: ``python -m resnet_lab.suite compiled JOB.json`` (the compiled
stage) and ``exec-notebook NB RESULT.json`` (the plain-Python chapter executor)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from resnet_lab.suite.chapters import _exec_notebook_worker
from resnet_lab.suite.throughput import _compiled_worker


def _worker_main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "compiled":
        return _compiled_worker(argv[1])
    if len(argv) == 3 and argv[0] == "exec-notebook":
        return _exec_notebook_worker(argv[1], argv[2])
    print(
        "usage: python -m resnet_lab.suite compiled JOB.json | exec-notebook NB RESULT.json "
        "(internal; use `resnet-lab suite`)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
