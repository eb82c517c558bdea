"""The GPU suite: what one call of at most 10 minutes on one H100/H200 can measure.

Two parts, one device call each (README.md, "GPU suite", has the exact calls)::

    resnet-lab suite gpu --data .carry/cifar10-jpeg.tar.xz --out $OUT --store /tmp/store
    resnet-lab suite chapters --data .carry/cifar10-jpeg.tar.xz --wheels .carry/wheels --out $OUT
    resnet-lab suite gpu --dry-run --out /tmp/suite          # the same code, tiny, on a CPU

``gpu`` runs these stages inside a wall-clock budget (``--budget-s``, default 540 s),
checking the clock before each stage and each run and skipping (and recording) what no
longer fits:

``throughput``
    training images/s of ResNet-20, 56 and 110, bf16 autocast, channels-last, at batch
    128 and at a batch that fills the GPU (2048), with the engine's pieces: the dataset
    on the device (:class:`~resnet_lab.data.GpuLoader`), its optimizer (fused SGD) and
    autocast.
``compiled``
    the same under ``torch.compile``, in a child process that is killed at the stage's
    deadline (a compile cannot be interrupted otherwise); a compile error is recorded.
``target``
    ResNet-20 trained by the engine until the test accuracy reaches 91 %: a 30-epoch
    one-cycle run at batch 512 first, then, if it fell short, the longest one-cycle run
    the stage's time allows; reports the time to 91 % (the engine's wall time at the
    first evaluation at or above it).
``depth``
    plain and residual networks of depth 20, 32, 44, 56 and ResNet-110 (seed 0), the
    paper recipe at batch 128 shortened to the most epochs that fit in the time left.

Run records go to the results store (``--store``); ``--out`` receives
``gpu-summary.md``, ``gpu-summary.json``, ``gpu-records.zip`` (every record this call
wrote) and ``gpu-log.txt``, rewritten after every stage, so a call cut short still
returns what it measured. Few files on purpose: the device tool returns at most 8.

``chapters`` executes every chapter notebook at the standard tier with nbclient (a real
Jupyter kernel, as readers and the book build run them) and records each chapter's time
and first error in ``chapters-summary.md``/``.json``, the executed notebooks in
``chapters-executed.zip``. Where nbclient or ipykernel are missing it installs the
wheels given with ``--wheels`` (``tools/gpu_carry.py`` downloads them), else it runs
each chapter's code cells with plain Python (IPython magics skipped) and says how to
bring the wheels.
"""

from resnet_lab.suite.chapters import run_chapters
from resnet_lab.suite.common import DEFAULT_BUDGET_S, DRY_RUN, GPU, GPU_STAGES, Sizes, prepare_data
from resnet_lab.suite.gpu import run_gpu
from resnet_lab.suite.report import SCHEMA, Budget, Report
from resnet_lab.suite.throughput import time_training_steps

__all__ = [
    "DEFAULT_BUDGET_S",
    "DRY_RUN",
    "GPU",
    "GPU_STAGES",
    "SCHEMA",
    "Budget",
    "Report",
    "Sizes",
    "prepare_data",
    "run_chapters",
    "run_gpu",
    "time_training_steps",
]
