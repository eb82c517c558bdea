"""What decides how a network trains: :class:`TrainConfig`, the recipes and the learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from resnet_lab.engine.errors import ConfigError
from resnet_lab.runtime import AMP_MODES

SCHEDULES = ("multistep", "onecycle", "cosine", "constant")
# A TrainConfig field marked so changes how often a run logs, evaluates, checkpoints or
# compiles, never what it computes: results that differ only there train alike.
_BOOKKEEPING = {"bookkeeping": True}


def _flag(spelling: str, help: str | None = None, **argparse_options: Any) -> dict[str, Any]:
    """Metadata that gives a TrainConfig field a flag of ``resnet-lab train`` and ``sweep``.

    ``resnet_lab.cli`` makes the flag from it and the field's type (a ``bool`` becomes a
    switch); ``argparse_options`` may be ``metavar`` and ``choices``. Every other field is
    reached with ``--set FIELD=VALUE``.
    """
    return {"flag": spelling, "help": help, **argparse_options}


def bookkeeping_fields() -> frozenset[str]:
    """The :class:`TrainConfig` fields that do not change what a run computes."""
    return frozenset(
        f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("bookkeeping")
    )


@dataclass
class TrainConfig:
    """Everything that decides how a network is trained (stored with every result).

    Length: exactly one of ``epochs`` or ``iterations`` (optimizer steps).
    """

    recipe: str = "custom"
    #: passes over the training set (mutually exclusive with ``iterations``)
    epochs: int | None = field(
        default=10, metadata=_flag("--epochs", "passes over the training set")
    )
    #: optimizer steps in all; the paper counts iterations (64k)
    iterations: int | None = field(
        default=None, metadata=_flag("--iterations", "optimizer steps (the paper: 64000)")
    )
    #: global batch size (split across processes under torchrun)
    batch_size: int = field(
        default=128,
        metadata=_flag("--batch-size", "global batch size (split across processes under torchrun)"),
    )
    #: peak learning rate
    lr: float = field(default=0.1, metadata=_flag("--lr", "peak learning rate"))
    momentum: float = field(default=0.9, metadata=_flag("--momentum", "SGD momentum"))
    weight_decay: float = field(default=1e-4, metadata=_flag("--weight-decay", "SGD weight decay"))
    nesterov: bool = False
    #: 'multistep' (paper), 'onecycle', 'cosine' or 'constant'
    schedule: str = field(
        default="multistep",
        metadata=_flag(
            "--schedule", "learning-rate schedule (the paper's: multistep)", choices=SCHEDULES
        ),
    )
    #: multistep: fractions of training where lr is multiplied by ``gamma`` (paper: 32k/64k, 48k/64k)
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    #: onecycle: fraction of training spent rising from 0 to ``lr``
    pct_start: float = 0.25
    #: constant warm-up (He et al. 2016, §4.2): this many first steps at ``warmup_lr`` ...
    warmup_steps: int = field(
        default=0, metadata=_flag("--warmup-steps", "steps at the warm-up lr (paper: 400)")
    )
    warmup_lr: float = 0.01
    #: ... only for networks at least this deep (paper: 110 layers)
    warmup_min_depth: int = 0
    label_smoothing: float = field(
        default=0.0, metadata=_flag("--label-smoothing", "label smoothing of the loss (0: none)")
    )
    #: pad-4 random crop + horizontal flip (paper §4.2)
    augment: bool = True
    #: 'auto' (bf16 on A100/H100 and on CPUs with native bf16, fp16 + gradient scaling on
    #: older GPUs, else fp32; the environment variable RESNET_LAB_AMP can force it),
    #: 'bf16', 'fp16' or 'off'
    amp: str = field(
        default="auto",
        metadata=_flag(
            "--amp",
            "mixed precision (auto: bf16 where the device has it, fp16 on older GPUs, else off)",
            choices=AMP_MODES,
        ),
    )
    #: channels-last memory layout; None = on CUDA and CPU (not MPS)
    channels_last: bool | None = None
    #: wrap the model in torch.compile
    compile: bool = field(
        default=False, metadata=_BOOKKEEPING | _flag("--compile", "use torch.compile")
    )
    #: evaluate on the test split every this many epochs (and always at the end)
    eval_every: int = 1
    #: also evaluate every this many steps, into that step's record (0 = never); gives
    #: test curves against iterations like the paper's Figure 6 for runs of few epochs
    eval_every_steps: int = field(
        default=0,
        metadata=_BOOKKEEPING
        | _flag(
            "--eval-every-steps",
            "also evaluate on the test split every STEPS steps (test curves against "
            "iterations; costs one test pass each)",
            metavar="STEPS",
        ),
    )
    #: record a step entry (and call 'step' callbacks) every this many steps; 0 = never
    #: (a step evaluation from ``eval_every_steps`` still makes its record)
    log_every_steps: int = field(
        default=50,
        metadata=_BOOKKEEPING
        | _flag("--log-every", "record a step entry every STEPS steps", metavar="STEPS"),
    )
    #: record per-layer gradient norms (mean over each epoch) in the history
    grad_norms: bool = field(
        default=False, metadata=_flag("--grad-norms", "record per-layer gradient norms each epoch")
    )
    #: seeds the data order and augmentation (build the model under torch.manual_seed yourself)
    seed: int = 0
    #: deterministic algorithms (resume reproduces the uninterrupted run exactly on CPU)
    deterministic: bool = field(
        default=False,
        metadata=_flag("--deterministic", "deterministic algorithms (exactly reproducible on CPU)"),
    )
    #: keep the model's weights after these optimizer steps (0: at initialisation) in
    #: ``snapshots/step-NNNNNN.pt`` beside the checkpoint (when a checkpoint path is given):
    #: the early points of a run, for analyses of training itself
    snapshot_steps: tuple[int, ...] = field(
        default=(),
        metadata=_BOOKKEEPING
        | _flag(
            "--snapshot-steps",
            "keep the weights after these steps beside the checkpoint (0: at initialisation), "
            "e.g. 0,50,200,391",
            metavar="STEPS",
        ),
    )
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
        if not isinstance(self.snapshot_steps, (tuple, list)) or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in self.snapshot_steps
        ):
            bad("snapshot_steps", "must be step counts, integers >= 0")
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
        d["snapshot_steps"] = list(self.snapshot_steps)
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
        for name in ("milestones", "snapshot_steps"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
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
    for name in ("milestones", "snapshot_steps"):
        if name in fields:
            fields[name] = tuple(fields[name])
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
