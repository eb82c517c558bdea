"""The training engine: SGD recipes, mixed precision, live history, checkpoints, resumable runs.

One function trains every network in the book::

    data = rl.data.load_data()                     # CIFAR-10 (or the offline copy)
    model = rl.build("resnet20")
    run = rl.engine.train(model, data, rl.engine.recipe("fast", epochs=5))
    run.history[-1]["test_error"]

Recipes (:func:`recipe`):

``paper``
    He et al. (2016, §4.2): SGD, momentum 0.9, weight decay 1e-4, batch 128,
    lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations in all. Nets of
    110 layers and deeper start at lr 0.01 "until the training error is below 80%
    (about 400 iterations)": implemented as the first 400 iterations at 0.01.
    ``epochs=`` turns the recipe into a shorter run whose milestones stay at the
    same fractions (1/2 and 3/4) of training; the 400-iteration warm-up is kept.
``fast``
    For short budgets (minutes on a GPU, one epoch on a CPU): a one-cycle
    schedule (Smith & Topin, 2019), linear rise to lr 0.2 over the first quarter of
    training then linear decay to zero, Nesterov momentum 0.9, weight decay 5e-4,
    label smoothing 0.1 (Szegedy et al., 2016), batch 128, 10 epochs.

``laptop``
    The laptop depth study (``results/README.md``): the paper's SGD (momentum 0.9, batch
    128, no label smoothing), weight decay 5e-4, a linear warm-up to lr 0.1 over the first
    5 % of steps (Goyal et al., 2017), then a linear decay to zero; 40 epochs.

Every field of :class:`TrainConfig` can be overridden: ``recipe("paper", lr=0.05)``.

Hardware choices (``amp="auto"``, ``channels_last=None``): bf16 autocast on GPUs
that have bf16 tensor cores (A100, H100), fp16 with gradient scaling on older GPUs (e.g.
the T4), bf16 on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX, see
:func:`cpu_has_native_bf16`), fp32 on other CPUs and on Apple MPS; channels-last memory
layout on CUDA and CPU. ``compile=True`` wraps the model in ``torch.compile``. Under
``torchrun`` the model is wrapped in DistributedDataParallel (see
:mod:`resnet_lab.distributed`). Every run records the precision it trained in
(``Run.precision``: 'fp32', 'bf16' or 'fp16').

Numerics under autocast (bf16 or fp16), chosen so that only the arithmetic of the
convolutions and the linear layer is lowered:

- the weights, their gradients, the momentum buffers and the SGD update stay fp32
  (autocast casts a copy of each weight for the convolution, never the parameter);
- BatchNorm reads the bf16 activations but keeps its affine parameters and running
  statistics in fp32 and accumulates its batch statistics in fp32, so the statistics
  that evaluation uses are fp32;
- the logits are cast to fp32 before the loss (cross-entropy and label smoothing in fp32),
  and the running sums of loss and errors are float64 (float32 on MPS);
- evaluation runs under the same autocast as training, so the test error is that of the
  network as it trains (logits cast to fp32 before the loss and the arg-max).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_lab import checkpoint as ckpt
from resnet_lab import distributed, provenance, runtime
from resnet_lab.data import GpuLoader, ImageData, default_channels_last
from resnet_lab.models.layers import weight_layers

__all__ = [
    "RECIPES",
    "ConfigError",
    "Fix",
    "OutOfMemory",
    "Run",
    "StopTraining",
    "TrainConfig",
    "TrainingDiverged",
    "evaluate",
    "lr_at",
    "cpu_has_native_bf16",
    "crop_padding",
    "model_depth",
    "precision_name",
    "precision_of",
    "recipe",
    "spell_argument",
    "train",
]

SCHEDULES = ("multistep", "onecycle", "cosine", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")
# Fields that may differ when a run is resumed: they do not change what is computed.
# A TrainConfig field marked so changes how often a run logs, evaluates, checkpoints or
# compiles, never what it computes: results that differ only there train alike.
_BOOKKEEPING = {"bookkeeping": True}


def bookkeeping_fields() -> frozenset[str]:
    """The :class:`TrainConfig` fields that do not change what a run computes."""
    return frozenset(
        f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("bookkeeping")
    )


class StopTraining(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a callback to end training cleanly (the run is marked ``stopped``)."""


def spell_argument(name: str, value: Any) -> str:
    """A setting as a Python caller writes it (``lr=0.05``); the command line spells its own."""
    if isinstance(value, float):
        return f"{name}={value:.3g}"
    return f"{name}={value!r}" if isinstance(value, str) and value != "N" else f"{name}={value}"


@dataclass(frozen=True)
class Fix:
    """One way out of a failure: what to do and the settings that do it (``{'lr': 0.05}``)."""

    what: str
    settings: dict[str, Any] = field(default_factory=dict)

    def say(self, spell: Callable[[str, Any], str] = spell_argument) -> str:
        if not self.settings:
            return self.what
        return f"{self.what} ({', '.join(spell(k, v) for k, v in self.settings.items())})"


class _Advised:
    """A failure that says why (``reason``) and what to try (``fixes``), in its caller's words:
    ``explain()`` spells settings as arguments, the command line passes its flag spelling."""

    reason: str = ""
    fixes: tuple[Fix, ...] = ()

    def explain(self, spell: Callable[[str, Any], str] = spell_argument) -> str:
        if not self.fixes:
            return self.reason
        return f"{self.reason}; " + ", or ".join(f.say(spell) for f in self.fixes)


class ConfigError(ValueError):
    """A :class:`TrainConfig` field holds an impossible value; ``.field`` and ``.value`` name it."""

    def __init__(self, name: str, value: Any, problem: str):
        self.field, self.value, self.problem = name, value, problem
        super().__init__(f"TrainConfig: {name} {problem}, got {value!r}")


class TrainingDiverged(_Advised, RuntimeError):
    """The loss, the test loss or the weights became NaN or infinite. ``.run`` holds the
    history up to the last epoch where all were finite; ``.checkpoint_step`` is the step
    whose state the checkpoint file holds (None: no file was saved)."""

    def __init__(
        self,
        message: str,
        run: Run | None,
        fixes: Sequence[Fix] = (),
        checkpoint_step: int | None = None,
    ):
        self.reason, self.fixes = message, tuple(fixes)
        self.run, self.checkpoint_step = run, checkpoint_step
        super().__init__(self.explain())


class OutOfMemory(_Advised, ValueError):
    """The device ran out of memory, or clearly would; the message says what to try.

    ``.run`` holds the history so far (``None`` if training did not start).
    """

    def __init__(self, message: str, run: Run | None, fixes: Sequence[Fix] = ()):
        self.reason, self.fixes, self.run = message, tuple(fixes), run
        super().__init__(self.explain())


# ----------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Everything that decides how a network is trained (stored with every result).

    Length: exactly one of ``epochs`` or ``iterations`` (optimizer steps).
    """

    recipe: str = "custom"
    #: passes over the training set (mutually exclusive with ``iterations``)
    epochs: int | None = 10
    #: optimizer steps in all; the paper counts iterations (64k)
    iterations: int | None = None
    #: global batch size (split across processes under torchrun)
    batch_size: int = 128
    #: peak learning rate
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    #: 'multistep' (paper), 'onecycle', 'cosine' or 'constant'
    schedule: str = "multistep"
    #: multistep: fractions of training where lr is multiplied by ``gamma`` (paper: 32k/64k, 48k/64k)
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    #: onecycle: fraction of training spent rising from 0 to ``lr``
    pct_start: float = 0.25
    #: constant warm-up (He et al. 2016, §4.2): this many first steps at ``warmup_lr`` ...
    warmup_steps: int = 0
    warmup_lr: float = 0.01
    #: ... only for networks at least this deep (paper: 110 layers)
    warmup_min_depth: int = 0
    label_smoothing: float = 0.0
    #: pad-4 random crop + horizontal flip (paper §4.2)
    augment: bool = True
    #: 'auto' (bf16 on A100/H100 and on CPUs with native bf16, fp16 + gradient scaling on
    #: older GPUs, else fp32),
    #: 'bf16', 'fp16' or 'off'
    amp: str = "auto"
    #: channels-last memory layout; None = on CUDA and CPU (not MPS)
    channels_last: bool | None = None
    #: wrap the model in torch.compile
    compile: bool = field(default=False, metadata=_BOOKKEEPING)
    #: evaluate on the test split every this many epochs (and always at the end)
    eval_every: int = 1
    #: also evaluate every this many steps, into that step's record (0 = never); gives
    #: test curves against iterations like the paper's Figure 6 for runs of few epochs
    eval_every_steps: int = field(default=0, metadata=_BOOKKEEPING)
    #: record a step entry (and call 'step' callbacks) every this many steps; 0 = never
    #: (a step evaluation from ``eval_every_steps`` still makes its record)
    log_every_steps: int = field(default=50, metadata=_BOOKKEEPING)
    #: record per-layer gradient norms (mean over each epoch) in the history
    grad_norms: bool = False
    #: seeds the data order and augmentation (build the model under torch.manual_seed yourself)
    seed: int = 0
    #: deterministic algorithms (resume reproduces the uninterrupted run exactly on CPU)
    deterministic: bool = False
    #: save a checkpoint every this many epochs (when a checkpoint path is given)
    checkpoint_every: int = field(default=1, metadata=_BOOKKEEPING)
    eval_batch_size: int = field(default=1000, metadata=_BOOKKEEPING)

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` (a ValueError naming the field) for impossible settings;
        returns self. Every field is checked: types, finiteness and ranges."""

        def bad(name: str, problem: str) -> None:
            raise ConfigError(name, getattr(self, name), problem)

        if (self.epochs is None) == (self.iterations is None):
            if self.epochs is None:
                bad("epochs", "is missing: give exactly one of epochs or iterations")
            bad("iterations", "is given with epochs: give exactly one of epochs or iterations")
        length = "epochs" if self.epochs is not None else "iterations"
        ints = {
            length: 1,
            "batch_size": 1,
            "eval_batch_size": 1,
            "eval_every": 1,
            "checkpoint_every": 1,
            "warmup_steps": 0,
            "warmup_min_depth": 0,
            "eval_every_steps": 0,
            "log_every_steps": 0,
            "seed": 0,
        }
        for name, least in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                bad(name, "must be a positive integer" if least else "must be an integer >= 0")
        # name: (lower bound, lower bound excluded, upper bound, always excluded)
        reals = {
            "lr": (0, True, math.inf),
            "warmup_lr": (0, True, math.inf),
            "momentum": (0, False, 1),
            "weight_decay": (0, False, math.inf),
            "gamma": (0, True, math.inf),
            "pct_start": (0, True, 1),
            "label_smoothing": (0, False, 1),
        }
        for name, (lo, strict, hi) in reals.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not (v > lo if strict else v >= lo) or not v < hi:
                if hi == math.inf:
                    bad(name, "must be a finite number " + ("> 0" if strict else ">= 0"))
                bad(name, f"must be in {'(' if strict else '['}{lo}, {hi})")
        if self.nesterov and not self.momentum > 0:
            bad("momentum", "must be > 0 with nesterov=True")
        for name in ("nesterov", "augment", "compile", "grad_norms", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "must be True or False")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            bad("channels_last", "must be True, False or None")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"is unknown; choose one of {', '.join(SCHEDULES)}")
        if self.amp not in AMP_MODES:
            bad("amp", f"is unknown; choose one of {', '.join(AMP_MODES)}")
        if not isinstance(self.milestones, (tuple, list)) or any(
            isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m < 1
            for m in self.milestones
        ):
            bad("milestones", "must be fractions of training between 0 and 1")
        return self

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run."""
        if self.iterations is not None:
            return self.iterations
        return self.epochs * steps_per_epoch  # type: ignore[operator]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    def trains_like(self, recipe: dict[str, Any]) -> bool:
        """Whether a stored recipe (``to_dict`` form, possibly from an older version) trains
        the same way: every field equal except how often it logs, evaluates, checkpoints,
        and whether it compiles."""
        bookkeeping = bookkeeping_fields()
        other = TrainConfig.from_dict(recipe).to_dict()
        mine = self.to_dict()
        return all(other[k] == mine[k] for k in mine if k not in bookkeeping)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "milestones" in kwargs:
            kwargs["milestones"] = tuple(kwargs["milestones"])
        return cls(**kwargs)


RECIPES: dict[str, dict[str, Any]] = {
    # He et al. (2016), §4.2 (CIFAR-10 experiments).
    "paper": dict(
        epochs=None,
        iterations=64_000,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        nesterov=False,
        schedule="multistep",
        milestones=(0.5, 0.75),
        gamma=0.1,
        warmup_steps=400,
        warmup_lr=0.01,
        warmup_min_depth=110,
        label_smoothing=0.0,
    ),
    # Short budgets: one-cycle (Smith & Topin 2019) + label smoothing (Szegedy et al. 2016).
    "fast": dict(
        epochs=10,
        iterations=None,
        batch_size=128,
        lr=0.2,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
        schedule="onecycle",
        pct_start=0.25,
        warmup_steps=0,
        label_smoothing=0.1,
    ),
    # The laptop depth study (results/README.md): the paper's SGD (momentum 0.9, no label
    # smoothing, batch 128) with a short linear warm-up (Goyal et al. 2017) to lr 0.1 over
    # the first 5 % of steps, then a linear decay to zero, so that every depth ends at a
    # small learning rate after a schedule a CPU can afford; weight decay 5e-4 for the
    # small training set.
    "laptop": dict(
        epochs=40,
        iterations=None,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=False,
        schedule="onecycle",
        pct_start=0.05,
        warmup_steps=0,
        label_smoothing=0.0,
    ),
}


def recipe(name: str = "fast", **overrides: Any) -> TrainConfig:
    """A named recipe ('paper' or 'fast') with any fields overridden.

    Giving ``epochs`` clears the recipe's ``iterations`` and vice versa, so
    ``recipe("paper", epochs=20)`` is a 20-epoch run with the paper's schedule shape.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown TrainConfig field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}"
        )
    fields = {**RECIPES[name], "recipe": name}
    overrides = {k: v for k, v in overrides.items() if v is not None or k in ("channels_last",)}
    if "epochs" in overrides and "iterations" not in overrides:
        fields["iterations"] = None
    if "iterations" in overrides and "epochs" not in overrides:
        fields["epochs"] = None
    fields.update(overrides)
    if "milestones" in fields:
        fields["milestones"] = tuple(fields["milestones"])
    return TrainConfig(**fields).validate()


def lr_at(config: TrainConfig, step: int, total: int, depth: int = 0) -> float:
    """The learning rate for optimizer step ``step`` (0-based) of a ``total``-step run."""
    if step < config.warmup_steps and depth >= config.warmup_min_depth:
        return config.warmup_lr
    if config.schedule == "multistep":
        passed = sum(step >= round(m * total) for m in config.milestones)
        return config.lr * config.gamma**passed
    if config.schedule == "onecycle":
        up = max(1, round(config.pct_start * total))
        if step < up:
            return config.lr * (step + 1) / up
        return config.lr * (total - step) / max(1, total - up)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
    return config.lr


def crop_padding(height: int) -> int:
    """Zero padding of the random-crop augmentation: the paper's 4 pixels at 32 pixels,
    scaled with the image (2 at 16 pixels), so smaller images are shifted alike."""
    return max(1, round(4 * height / 32))


def model_depth(model: nn.Module) -> int:
    """Weighted layers on the main path (the paper's 'depth'): convs and linears outside shortcuts."""
    depth = getattr(model, "depth", None)
    if isinstance(depth, int):
        return depth
    return len(weight_layers(model))


def _model_name(model: nn.Module, name: str | None) -> str:
    if name:
        return name
    for attr in ("name", "arch", "model_name"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__.lower()


# ----------------------------------------------------------------------------- the run


def history_curve(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of one key of a run's per-epoch history, skipping epochs where it is None.

    One rule for a run in memory (:meth:`Run.curve`) and a stored one
    (:meth:`resnet_lab.results.RunRecord.curve`)."""
    pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


@dataclass
class Run:
    """A training run: configuration, provenance and history (a list of per-epoch dicts).

    ``history`` entries: epoch, step, train_loss, train_error, test_loss,
    test_error (errors are fractions; test values are None on epochs without
    evaluation), lr, images_per_sec, wall_time (seconds since the start), and
    ``grad_norms`` when enabled. ``steps`` holds the every-N-steps entries.
    ``status``: running, completed, stopped (by a callback), interrupted (Ctrl-C),
    diverged or out_of_memory.
    """

    model_name: str
    config: TrainConfig
    data: dict[str, Any]
    device: str = "cpu"
    device_name: str = ""
    #: what the weights' arithmetic ran in: 'fp32', 'bf16' or 'fp16' (``amp`` resolved)
    precision: str = "fp32"
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    message: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    date: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    tags: list[str] = field(default_factory=list)
    # Taken when the run starts, so the record names the code that trained it.
    code_version: str = field(default_factory=lambda: provenance.code_version())
    grad_norm_layers: list[str] = field(default_factory=list)
    world_size: int = 1
    total_steps: int = 0
    steps_per_epoch: int = 0
    wall_time: float = 0.0
    checkpoint: str | None = None
    path: Path | None = None  # where the results store saved it
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def epochs(self) -> int:
        """Completed epochs."""
        return len(self.history)

    @property
    def variant(self) -> str:
        return self.data.get("variant", "")

    @property
    def final(self) -> dict[str, float | None]:
        """Train and test error after the last epoch (test error of the last evaluation)."""
        if not self.history:
            return {"train_error": None, "test_error": None, "test_loss": None}
        last = self.history[-1]
        tested = [h for h in self.history if h.get("test_error") is not None]
        return {
            "train_error": last["train_error"],
            "test_error": tested[-1]["test_error"] if tested else None,
            "test_loss": tested[-1]["test_loss"] if tested else None,
        }

    def curve(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one history key, skipping epochs where it is None."""
        return history_curve(self.history, key)

    def __repr__(self) -> str:
        f = self.final
        te = f"{f['test_error']:.4f}" if f["test_error"] is not None else "n/a"
        return (
            f"Run({self.model_name}, data={self.variant}, recipe={self.config.recipe}, "
            f"epochs={self.epochs}, status={self.status}, test_error={te})"
        )


# ----------------------------------------------------------------------------- evaluation


# The precision rules live with the other hardware choices in :mod:`resnet_lab.runtime`.
cpu_has_native_bf16 = runtime.cpu_has_native_bf16
precision_name = runtime.precision_name
_amp_dtype = runtime.amp_dtype


def precision_of(mode: str, device: str | torch.device) -> str:
    """The precision ``amp`` mode ``mode`` trains in on ``device`` (e.g. 'bf16' for 'auto')."""
    return precision_name(_amp_dtype(mode, torch.device(device)))


def _sum_dtype(device: torch.device) -> torch.dtype:
    """Running sums (loss, errors, counts) in float64, except on MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def _evaluate_loader(
    model: nn.Module, loader: GpuLoader, amp_dtype: torch.dtype | None
) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    dev = loader.device
    sums = torch.zeros(3, dtype=_sum_dtype(dev), device=dev)  # loss sum, wrong, count
    for x, y in loader:
        with _autocast(dev, amp_dtype):
            out = model(x)
        out = out.float()
        sums[0] += nn.functional.cross_entropy(out, y, reduction="sum").to(sums.dtype)
        sums[1] += (out.argmax(1) != y).sum()
        sums[2] += len(y)
    if loader.world_size > 1:  # each process saw its shard; an unsharded loader saw everything
        distributed.all_reduce_sum(sums)
    model.train(was_training)
    n = max(1.0, float(sums[2]))
    return float(sums[0]) / n, float(sums[1]) / n


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    amp: str = "off",
) -> dict[str, float]:
    """Loss, error and accuracy of ``model`` on a labelled set (eval mode, no augmentation).

    ``images``: ``uint8`` (normalised here with ``mean``/``std``, e.g. ``data.mean``)
    or float tensors already normalised.
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    if images.dtype == torch.uint8:
        if mean is None or std is None:
            raise ValueError("evaluate: uint8 images need mean= and std= (use data.mean, data.std)")
    else:
        c = images.shape[1]
        mean, std = (0.0,) * c, (1 / 255.0,) * c  # the loader's x*scale - shift becomes identity
        images = images.float()
    loader = GpuLoader(images, labels, batch_size, False, mean, std, device, channels_last=False)
    if images.dtype != torch.uint8:
        loader._scale = torch.ones_like(loader._scale)
        loader._shift = torch.zeros_like(loader._shift)
    loss, err = _evaluate_loader(model, loader, _amp_dtype(amp, device))
    return {"loss": loss, "error": err, "accuracy": 1.0 - err}


# ----------------------------------------------------------------------------- training


_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


class _Interrupted(Exception):  # noqa: N818
    pass


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """First Ctrl-C sets a flag checked between steps (the run then checkpoints and returns);
    a second one interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # pragma: no cover - not allowed in this interpreter state
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _deterministic(enabled: bool, device: torch.device) -> Iterator[None]:
    prev_alg = torch.are_deterministic_algorithms_enabled()
    prev_bench = torch.backends.cudnn.benchmark
    prev_det = torch.backends.cudnn.deterministic
    try:
        if enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        yield
    finally:
        torch.use_deterministic_algorithms(prev_alg)
        torch.backends.cudnn.benchmark = prev_bench
        torch.backends.cudnn.deterministic = prev_det


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every weight layer's weight, shortcuts included (for per-layer gradient norms)."""
    layers = weight_layers(model, shortcuts=True)
    return [(name, m.weight) for name, m in layers if m.weight.requires_grad]


class _Progress:
    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True
            )

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _call(callbacks: Iterable[Callable], event: str, run: Run, record: dict[str, Any]) -> None:
    for cb in callbacks:
        cb(event, run, record)


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay from ``config``; fused where torch supports it.

    The fused kernel updates every parameter in one pass instead of a loop of small
    element-wise ops: the same arithmetic, about 8 % of a ResNet-20 step on a 2-core CPU.
    """
    kwargs = dict(
        lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
    )
    if fused_sgd_supported(model):
        kwargs["fused"] = True
    return torch.optim.SGD(model.parameters(), **kwargs)


def fused_sgd_supported(model: nn.Module) -> bool:
    """Whether this torch has a fused SGD kernel for every parameter's device (checked here,
    because torch itself only checks at the first ``step()``)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # torch too old for fused SGD
        return False
    if "fused" not in inspect.signature(torch.optim.SGD).parameters:
        return False
    # CPU and CUDA only: MPS got its fused SGD kernel later than the generic device list says.
    devices = set(_get_fused_kernels_supported_devices()) & {"cpu", "cuda"}
    params = list(model.parameters())
    return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)


def train(
    model: nn.Module,
    data: ImageData,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    callbacks: Sequence[Callable[[str, Run, dict], None]] = (),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    name: str | None = None,
    tags: Sequence[str] = (),
    resume_hint: str = "resume=True",
) -> Run:
    """Train ``model`` on ``data`` with ``config`` (default: ``recipe("fast")``); returns the Run.

    ``callbacks`` are called as ``cb(event, run, record)`` with event 'step' (every
    ``log_every_steps``), 'epoch' and 'end'; raising :class:`StopTraining` ends
    the run cleanly. ``checkpoint``: a file saved every ``checkpoint_every``
    epochs, when stopped and on Ctrl-C; ``resume=True`` continues from it (if it
    exists). ``name``: the model's name in records (default: ``model.name`` or the class
    name). Saving the finished run is the caller's: ``resnet_lab.results.save_run(run)``.

    Errors: :class:`ConfigError` (an impossible setting), :class:`TrainingDiverged` (a
    NaN/inf loss, test loss, weight or BatchNorm statistic), :class:`OutOfMemory` (also
    raised before training when a batch clearly cannot fit); the last two carry ``.run``
    with the history so far. A diverged run keeps only epochs where everything was finite,
    and the checkpoint file holds the last of them. The first Ctrl-C stops after the
    current step, saves the checkpoint and returns the run marked ``interrupted``; its
    message says how to continue (``resume_hint``: the command line passes ``--resume``).
    """
    config = (config or recipe("fast")).validate()
    ctx = distributed.context()
    if device is None:
        device = distributed.device_for(ctx)
    device = runtime.pick_device(device)
    main = ctx.is_main
    channels_last = (
        default_channels_last(device) if config.channels_last is None else config.channels_last
    )
    amp_dtype = _amp_dtype(config.amp, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    _check_memory(model, data, config, device, amp_dtype, ctx.world_size)
    try:  # the whole dataset moves to the device here
        train_loader = GpuLoader(
            data.train_x,
            data.train_y,
            config.batch_size,
            True,
            data.mean,
            data.std,
            device,
            augment=config.augment,
            channels_last=channels_last,
            seed=config.seed,
            pad=crop_padding(data.image_size[1]),
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        test_loader = GpuLoader(
            data.test_x,
            data.test_y,
            config.eval_batch_size,
            False,
            data.mean,
            data.std,
            device,
            channels_last=channels_last,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
    except _OOM:
        size = (data.train_x.numel() + data.test_x.numel()) / 2**20
        msg = (
            f"the dataset ({size:.0f} MiB as uint8) does not fit in the memory of "
            f"{runtime.device_name(device)}"
        )
        fixes = [
            Fix("free the GPU (other runs, notebooks)"),
            Fix("use a subset", {"train_per_class": "N"}),
            Fix("train on the CPU", {"device": "cpu"}),
        ]
        raise OutOfMemory(msg, None, fixes) from None
    spe = len(train_loader)
    total = config.total_steps(spe)
    n_epochs = math.ceil(total / spe)
    depth = model_depth(model)
    layers = _weight_layers(model) if config.grad_norms else []

    optimizer = make_optimizer(model, config, lr_at(config, 0, total, depth))
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    run = Run(
        model_name=_model_name(model, name),
        config=config,
        data=data.info(),
        device=device.type,
        device_name=runtime.device_name(device),
        precision=precision_name(amp_dtype),
        tags=list(tags),
        grad_norm_layers=[n for n, _ in layers],
        world_size=ctx.world_size,
        total_steps=total,
        steps_per_epoch=spe,
        model=model,
        checkpoint=Path(checkpoint).name if checkpoint else None,
    )

    # Progress counters; sums live on the device so the GPU is never made to wait.
    step = epoch = batch_in_epoch = 0
    sum_dtype = _sum_dtype(device)
    acc = torch.zeros(4, dtype=sum_dtype, device=device)  # loss*n, wrong, n, grad-norm steps
    gsum = torch.zeros(len(layers), dtype=sum_dtype, device=device)
    # Training seconds of the current epoch: earlier sessions (resume) + this one's clock
    # since t_epoch - evaluations in between; images/s counts training only.
    epoch_train_time = epoch_eval_time = 0.0
    t_epoch: float | None = None
    wall_offset = 0.0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = ckpt.load_checkpoint(checkpoint, map_location="cpu")
        _check_resume(Path(checkpoint), state, config, run)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ckpt.CheckpointError(checkpoint, f"does not fit this model ({exc})") from exc
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state.get("rng", {}))
        p = state["progress"]
        step, epoch, batch_in_epoch = int(p["step"]), int(p["epoch"]), int(p["batch_in_epoch"])
        acc = p["acc"].to(device=device, dtype=sum_dtype)
        if layers and p.get("gsum") is not None and len(p["gsum"]) == len(layers):
            gsum = p["gsum"].to(device=device, dtype=sum_dtype)
        epoch_train_time = float(p.get("epoch_train_time", 0.0))
        wall_offset = float(state.get("wall_time", 0.0))
        run.history = list(state["history"])
        run.steps = list(state.get("steps", []))
        info = state.get("run", {})
        run.id, run.date = info.get("id", run.id), info.get("date", run.date)
        run.tags = run.tags or list(info.get("tags", []))

    # The checkpoint file holds the state after saved_step (None: no file of this run yet);
    # good_step is the last epoch end where losses, weights and BN statistics were finite.
    resumed = resume and checkpoint is not None and Path(checkpoint).exists()
    saved_step: int | None = step if resumed else None
    good_step = step
    last_good: dict[str, Any] | None = None  # checkpoint_every > 1: the good epoch not saved

    net: nn.Module = model
    if ctx.is_distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    fwd = torch.compile(net) if config.compile else net

    def epoch_seconds() -> float:
        running = time.perf_counter() - t_epoch if t_epoch is not None else 0.0
        return epoch_train_time + running - epoch_eval_time

    def snapshot() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "config": config.to_dict(),
            "progress": {
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "acc": acc.cpu(),
                "gsum": gsum.cpu(),
                "epoch_train_time": epoch_seconds(),  # a Ctrl-C mid-epoch keeps its time
            },
            "history": run.history,
            "steps": run.steps,
            "run": {
                "model": run.model_name,
                "id": run.id,
                "date": run.date,
                "data": run.data,
                "tags": run.tags,
            },
            "rng": ckpt.rng_state(),
            "wall_time": wall_offset + (time.perf_counter() - t_start),
        }

    evaluating = False  # an out-of-memory error then names eval_batch_size, not batch_size

    def evaluate_test() -> tuple[float, float]:
        nonlocal evaluating
        evaluating = True
        result = _evaluate_loader(model, test_loader, amp_dtype)
        evaluating = False
        return result

    def save_ckpt() -> None:
        nonlocal saved_step, last_good
        if checkpoint is not None:
            if main:
                ckpt.save_checkpoint(snapshot(), checkpoint)
            saved_step, last_good = step, None
        distributed.barrier()

    bar = _Progress(progress and main, total, step, run.model_name)
    bar.write(_start_line(run, channels_last, total))
    t_start = time.perf_counter()
    bad_step = torch.full((), -1, dtype=torch.int64, device=device)
    check_every = _nan_check_interval(device, config)
    window = (step, acc.clone(), time.perf_counter())  # for step records
    lr = lr_at(config, step, total, depth)

    def diverged(at: int, what: str) -> None:
        nonlocal saved_step
        if last_good is not None:  # the last good epoch was not saved yet: save it, not this
            if main:
                ckpt.save_checkpoint(last_good, checkpoint)
            saved_step = int(last_good["progress"]["step"])
        run.steps = [s for s in run.steps if s["step"] <= good_step]
        run.checkpoint = Path(checkpoint).name if saved_step is not None else None
        at_lr = lr_at(config, at, total, depth)
        reason = f"training diverged: {what} at step {at} (lr {at_lr:.4g})"
        unusual = _unusual_settings(config)
        if unusual:
            reason += "; unusual: " + ", ".join(note for note, _ in unusual)
            usual = {k: v for _, settings in unusual for k, v in settings.items()}
            fixes = [Fix("go back to the usual values", usual)]
        else:
            fixes = [Fix("lower the learning rate", {"lr": at_lr / 2})]
            if not config.warmup_steps:
                fixes.append(Fix("add a warm-up", {"warmup_steps": 400, "warmup_lr": 0.01}))
            if amp_dtype == torch.float16:
                fixes.append(Fix("with fp16, try bf16 or fp32", {"amp": "bf16"}))
        exc = TrainingDiverged(reason, run, fixes, checkpoint_step=saved_step)
        run.status, run.message = "diverged", str(exc)
        raise exc

    def check_state() -> None:
        """Before a checkpoint of a stopped run: the steps since the last check were finite."""
        b = -1 if ctx.is_distributed else int(bad_step)
        if b >= 0:
            diverged(b, "the training loss became NaN or infinite")
        what = _nonfinite_state(model)
        if what:
            diverged(max(0, step - 1), what)

    try:
        with _graceful_interrupt() as interrupted, _deterministic(config.deterministic, device):
            model.train()
            while step < total:
                train_loader.set_epoch(epoch)
                t_epoch = time.perf_counter()
                for x, y in train_loader.iter_from(batch_in_epoch):
                    lr = lr_at(config, step, total, depth)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    with _autocast(device, amp_dtype):
                        out = fwd(x)
                        loss = loss_fn(out.float(), y)
                    n_local = len(y)
                    # Under DDP gradients are averaged over processes; weighting by the
                    # local share makes that the mean over the global batch even when the
                    # last batch splits unevenly.
                    weight = n_local * ctx.world_size / _global_batch(train_loader, batch_in_epoch)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss * weight).backward()
                        if layers:
                            scaler.unscale_(optimizer)
                    else:
                        (loss * weight).backward()
                    if layers:
                        norms = torch.stack([p.grad.detach().float().norm() for _, p in layers])
                        # fp16 steps that the scaler skips have inf gradients: leave them out
                        ok = torch.isfinite(norms).all()
                        gsum += torch.where(ok, norms, 0.0).to(sum_dtype)
                        acc[3] += ok
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    with torch.no_grad():
                        # In-place sums with Python scalars: no host-to-device copy, which
                        # would make the GPU wait every step.
                        ld = loss.detach().to(sum_dtype)
                        acc[0] += ld * n_local
                        acc[1] += (out.detach().argmax(1) != y).sum()
                        acc[2] += n_local
                        finite = torch.isfinite(ld)
                        bad_step = torch.where(~finite & (bad_step < 0), step, bad_step)
                    step += 1
                    batch_in_epoch += 1
                    epoch_end_evaluates = batch_in_epoch >= spe and (
                        (epoch + 1) % config.eval_every == 0
                    )
                    eval_now = (
                        config.eval_every_steps
                        and step % config.eval_every_steps == 0
                        and not epoch_end_evaluates  # evaluated there a moment later
                        and step < total  # the run's end always evaluates
                    )
                    log_now = eval_now or (
                        config.log_every_steps and step % config.log_every_steps == 0
                    )
                    stop_now = False
                    # (also at each epoch end, so that no epoch record holds a NaN loss)
                    if step % check_every == 0 or log_now or step >= total or batch_in_epoch >= spe:
                        if ctx.is_distributed:  # every process learns of a NaN or a Ctrl-C
                            flags = torch.stack([bad_step, _flag(interrupted, device)])
                            b, stop_now = distributed.all_reduce_max(flags).tolist()
                        else:
                            b = int(bad_step)
                        if b >= 0:
                            diverged(b, "the training loss became NaN or infinite")
                    if log_now:
                        test, t_eval = None, 0.0
                        if eval_now:
                            t0 = time.perf_counter()
                            distributed.broadcast_buffers(model)
                            test = evaluate_test()
                            if not math.isfinite(test[0]):
                                diverged(step - 1, "the test loss became NaN or infinite")
                            t_eval = time.perf_counter() - t0
                            epoch_eval_time += t_eval
                        window = _step_record(
                            run,
                            window,
                            acc,
                            step,
                            spe,
                            lr,
                            wall_offset,
                            t_start,
                            callbacks,
                            bar,
                            test,
                            t_eval,
                        )
                    else:
                        bar.update(1)
                    # Under DDP a process stops only when all agreed to (else the others
                    # would wait for it in the next all-reduce for ever).
                    if stop_now or (interrupted.is_set() and not ctx.is_distributed):
                        raise _Interrupted
                    if step >= total:
                        break
                epoch_time = epoch_seconds()
                # End of epoch: sum over processes, evaluate, record.
                tot = distributed.all_reduce_sum(acc.clone()).cpu()
                n = max(1.0, float(tot[2]))
                epoch += 1
                test_loss = test_error = None
                if epoch % config.eval_every == 0 or step >= total:
                    distributed.broadcast_buffers(model)  # one set of BN statistics: rank 0's
                    test_loss, test_error = evaluate_test()
                # A run is good only while everything it saves is finite: losses, weights
                # and BatchNorm statistics (a huge lr can leave the loss finite for a step).
                what = _nonfinite_state(model, float(tot[0]) / n, test_loss)
                if what:
                    diverged(step - 1, what)  # (step counts the steps done; at is 0-based)
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": float(tot[0]) / n,
                    "train_error": float(tot[1]) / n,
                    "test_loss": test_loss,
                    "test_error": test_error,
                    "lr": lr,
                    "images_per_sec": float(tot[2]) / max(epoch_time, 1e-9),
                    "wall_time": wall_offset + time.perf_counter() - t_start,
                }
                if layers:
                    record["grad_norms"] = (gsum / max(1.0, float(tot[3]))).tolist()
                run.history.append(record)
                run.wall_time = record["wall_time"]
                batch_in_epoch = 0
                acc.zero_()
                gsum.zero_()
                epoch_train_time = epoch_eval_time = 0.0
                t_epoch = None
                window = (step, acc.clone(), time.perf_counter())
                bar.write(_epoch_line(record, n_epochs))
                good_step = step
                if epoch % config.checkpoint_every == 0 or step >= total:
                    save_ckpt()
                elif checkpoint is not None:
                    last_good = ckpt.cpu_copy(snapshot()) if main else {"progress": {"step": step}}
                _call(callbacks, "epoch", run, record)
                if ctx.is_distributed:
                    if distributed.all_reduce_max(_flag(interrupted, device)).item():
                        raise _Interrupted
                elif interrupted.is_set():
                    raise _Interrupted
        run.status = "completed"
    except StopTraining:
        check_state()
        run.status = "stopped"
        save_ckpt()
    except _Interrupted:
        check_state()
        run.status = "interrupted"
        save_ckpt()
        where = (
            f"; checkpoint saved to {checkpoint}, resume with {resume_hint}" if checkpoint else ""
        )
        run.message = f"interrupted at step {step}{where}"
        bar.write(run.message)
    except _OOM:
        run.status = "out_of_memory"
        if evaluating:
            oom_reason = (
                f"the GPU ran out of memory evaluating batches of "
                f"{config.eval_batch_size} test images ({run.device_name})"
            )
            oom_fixes = [Fix("try", {"eval_batch_size": max(1, config.eval_batch_size // 2)})]
        else:
            oom_reason = (
                f"the GPU ran out of memory at batch size {config.batch_size} ({run.device_name})"
            )
            oom_fixes = [Fix("try", {"batch_size": max(1, config.batch_size // 2)})]
            if amp_dtype is None:
                oom_fixes.append(Fix("mixed precision", {"amp": "bf16"}))
            oom_fixes.append(Fix("a smaller model"))
        run.message = OutOfMemory(oom_reason, None, oom_fixes).explain()
    finally:
        bar.close()
        run.wall_time = wall_offset + time.perf_counter() - t_start
    if run.status == "out_of_memory":
        # Raised outside the except block, with this frame's big locals dropped: the
        # exception (kept by a notebook or a widget) must not keep the batch, its graph
        # and the data on the GPU, or a retry with a smaller batch runs out again.
        x = y = out = loss = optimizer = scaler = train_loader = test_loader = None  # noqa: F841
        net = fwd = None  # noqa: F841
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory(oom_reason, run, oom_fixes)
    _call(callbacks, "end", run, run.history[-1] if run.history else {})
    return run


def _nan_check_interval(device: torch.device, config: TrainConfig) -> int:
    """Steps between NaN checks: every step on CPU; on a GPU a check waits for the device."""
    return 1 if device.type == "cpu" else max(1, min(config.log_every_steps or 50, 50))


def _nonfinite_state(
    model: nn.Module, train_loss: float | None = None, test_loss: float | None = None
) -> str:
    """What is NaN or infinite among the losses, weights and buffers ('' when all are finite)."""
    problems = []
    if train_loss is not None and not math.isfinite(train_loss):
        problems.append(f"the training loss is {train_loss}")
    if test_loss is not None and not math.isfinite(test_loss):
        problems.append(f"the test loss is {test_loss}")
    named = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
    if named:
        finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu().tolist()
        bad = [k for (k, _), ok in zip(named, finite, strict=True) if not ok]
        if bad:
            problems.append(f"{len(bad)} weight/BatchNorm tensors are not finite (first: {bad[0]})")
    return " and ".join(problems)


# Values outside these ranges are rarely meant: a divergence hint names them first.
_USUAL = {
    "lr": (1.0, "above 1"),
    "warmup_lr": (1.0, "above 1"),
    "momentum": (0.99, "above 0.99"),
    "weight_decay": (0.01, "above 0.01"),
    "gamma": (1.0, "above 1: the learning rate grows at each milestone"),
}


def _unusual_settings(config: TrainConfig) -> list[tuple[str, dict[str, Any]]]:
    """(note, the recipe's usual value) for each setting out of its usual range."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    usual = {**defaults, **RECIPES.get(config.recipe, {})}
    out = []
    for name, (limit, note) in _USUAL.items():
        value = getattr(config, name)
        if value > limit and usual[name] <= limit:
            out.append((f"{name} {value:.4g} is {note}", {name: usual[name]}))
    return out


def _available_memory(device: torch.device) -> int | None:
    """Bytes this run may still take: available RAM on a CPU, free memory on a CUDA GPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None  # MPS shares the RAM in ways torch does not report
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this system
        return None


def _check_memory(
    model: nn.Module,
    data: ImageData,
    config: TrainConfig,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    world_size: int,
) -> None:
    """Refuse, before anything is allocated, a batch that clearly cannot fit (the estimate
    is a lower bound, so a refusal is certain; an accepted batch may still run out)."""
    from resnet_lab.summary import estimate_memory, format_bytes

    free = _available_memory(device)
    est = estimate_memory(model, (1, *data.image_size)) if free is not None else None
    if est is None:
        return
    half = 0.5 if amp_dtype is not None else 1.0  # layer outputs in 16 bits under autocast
    fixed = 2 * est.weights  # gradients and momentum
    if device.type != "cpu":  # the whole dataset moves to the device
        fixed += data.train_x.numel() + data.test_x.numel()
    checks = [
        (
            "a training batch",
            "batch_size",
            config.batch_size,
            len(data.train_y),
            half * est.train_per_image + 2 * est.input_per_image,
        ),
        (
            "an evaluation batch",
            "eval_batch_size",
            config.eval_batch_size,
            len(data.test_y),
            half * est.eval_per_image + est.input_per_image,
        ),
    ]
    for what, name, batch, n_images, per_image in checks:
        local = math.ceil(min(batch, n_images) / world_size)
        need = fixed + local * per_image
        if need <= free:
            continue
        where = f"{runtime.device_name(device)} has {format_bytes(free)} available"
        fits = int((free - fixed) // per_image) * world_size
        reason = (
            f"{what} of {local} images needs at least {format_bytes(need)} of memory, but {where}"
        )
        if fits < 1:
            raise OutOfMemory(reason, None, [Fix("use a smaller model or another device")])
        raise OutOfMemory(reason, None, [Fix("use at most the batch that fits", {name: fits})])


def _flag(event: threading.Event, device: torch.device) -> torch.Tensor:
    return torch.full((), int(event.is_set()), dtype=torch.int64, device=device)


def _global_batch(loader: GpuLoader, batch_index: int) -> int:
    start = batch_index * loader.batch_size
    return max(1, min(loader.batch_size, loader.num_images - start))


def _step_record(
    run, window, acc, step, spe, lr, wall_offset, t_start, callbacks, bar, test=None, t_eval=0.0
):
    step0, acc0, t0 = window
    tot = distributed.all_reduce_sum(acc.clone())
    prev = distributed.all_reduce_sum(acc0.clone())
    d = (tot - prev).cpu()
    n = max(1.0, float(d[2]))
    now = time.perf_counter()
    record = {
        "step": step,
        "epoch": step / spe,
        "train_loss": float(d[0]) / n,
        "train_error": float(d[1]) / n,
        "lr": lr,
        "images_per_sec": float(d[2]) / max(now - t0 - t_eval, 1e-9),
        "wall_time": wall_offset + now - t_start,
    }
    if test is not None:
        record["test_loss"], record["test_error"] = test
    run.steps.append(record)
    bar.update(
        1, loss=f"{record['train_loss']:.3f}", err=f"{record['train_error']:.3f}", lr=f"{lr:.3g}"
    )
    _call(callbacks, "step", run, record)
    return (step, acc.clone(), time.perf_counter())


def _start_line(run: Run, channels_last: bool, total: int) -> str:
    layout = "channels-last" if channels_last else "NCHW"
    return (
        f"{run.model_name} on {run.variant or 'data'}: {total} step{'' if total == 1 else 's'} "
        f"of {run.config.batch_size} on {run.device_name}, {run.precision} ({layout})"
    )


def _epoch_line(r: dict[str, Any], n_epochs: int) -> str:
    test = (
        f" | test loss {r['test_loss']:.3f} err {r['test_error']:.4f}"
        if r["test_error"] is not None
        else ""
    )
    return (
        f"epoch {r['epoch']}/{n_epochs} | train loss {r['train_loss']:.3f} err "
        f"{r['train_error']:.4f}{test} | lr {r['lr']:.3g} | {r['images_per_sec']:.0f} img/s"
    )


def _check_resume(path: Path, state: dict[str, Any], config: TrainConfig, run: Run) -> None:
    saved = state["config"]
    now = config.to_dict()
    # amp may change too: it is a request ('auto' is bf16 on one CPU, fp32 on another), and
    # so a run may continue on another machine.
    resume_free = bookkeeping_fields() | {"amp"}
    diffs = [
        f"{k}={saved.get(k)!r} (checkpoint) vs {now[k]!r} (now)"
        for k in now
        if k not in resume_free and k in saved and saved.get(k) != now[k]
    ]
    if diffs:
        raise ckpt.CheckpointError(
            path,
            "was made with different settings: "
            + "; ".join(diffs)
            + ". Resume with the same settings, or start a new run without resume",
        )
    saved_model = state.get("run", {}).get("model")
    if saved_model and saved_model != run.model_name:
        raise ckpt.CheckpointError(
            path, f"belongs to model {saved_model!r}, not {run.model_name!r}; pick another --output"
        )
    saved_variant = state.get("run", {}).get("data", {}).get("variant")
    if saved_variant and saved_variant != run.data.get("variant"):
        raise ckpt.CheckpointError(
            path, f"was trained on data {saved_variant!r}, not {run.data.get('variant')!r}"
        )
