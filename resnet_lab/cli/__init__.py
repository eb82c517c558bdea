"""``resnet-lab``: train, sweep, benchmark and inspect ResNets from the command line.

Examples::

    resnet-lab train resnet20 --recipe fast --epochs 5             # CIFAR-10 (or RESNET_LAB_DATA)
    resnet-lab train resnet110 --recipe paper --output runs/r110   # paper schedule
    resnet-lab train resnet110 --recipe paper --output runs/r110 --resume  # continue it
    torchrun --nproc_per_node 4 -m resnet_lab.cli train resnet56   # several GPUs
    resnet-lab sweep --models plain20 resnet20 --seeds 0 1 2 --epochs 10
    resnet-lab bench resnet20 --batch-size 128
    resnet-lab info resnet56
    resnet-lab weights                                             # trained weights
    resnet-lab eval resnet20 --weights zoo                         # test and training error

Mistakes in the arguments (an unknown model, a missing data path) print one line
on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from resnet_lab.cli.commands import _cmd_bench, _cmd_info, _cmd_suite
from resnet_lab.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from resnet_lab.cli.flags import _failure
from resnet_lab.cli.parser import _parser
from resnet_lab.cli.sweep import _cmd_sweep
from resnet_lab.cli.train import _cmd_train
from resnet_lab.cli.weights import _cmd_eval, _cmd_weights

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "main"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"resnet-lab: warning: {message}", file=sys.stderr)


COMMANDS = {
    "train": _cmd_train,
    "sweep": _cmd_sweep,
    "bench": _cmd_bench,
    "info": _cmd_info,
    "suite": _cmd_suite,
    "weights": _cmd_weights,
    "eval": _cmd_eval,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``resnet-lab`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad arguments
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for sweep --jobs
    from resnet_lab.engine import OutOfMemory, TrainingDiverged

    try:
        with warnings.catch_warnings():  # one line each, without the source line of the library
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        print(f"resnet-lab: {_failure(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OutOfMemory as exc:
        print(f"resnet-lab: {_failure(exc)}", file=sys.stderr)
        # refused before training (it clearly cannot fit) is a usage mistake
        return EXIT_FAILED if exc.run is not None else EXIT_USAGE
    except ValueError as exc:  # user mistakes: bad names, paths, settings
        print(f"resnet-lab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("resnet-lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a full disk, a folder that became read-only, ...
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(
            f"resnet-lab {args.command}: cannot read or write{where}: "
            f"{exc.strerror or exc}; free space or choose other folders "
            "(--output, --store)",
            file=sys.stderr,
        )
        return EXIT_FAILED
