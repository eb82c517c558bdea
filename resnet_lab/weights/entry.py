"""One set of trained weights and what is known about it: :class:`Weights`.

An entry says where its tensors come from (``source``):

``"shipped"``
    a safetensors file inside the package (``resnet_lab/weights/shipped/``), named with the
    first eight hex digits of its sha256 as torchvision names its files; parameters in fp16,
    BatchNorm statistics in fp32, loaded back into fp32;
``"seed"``
    the initialisation of a zoo run, not stored at all: :func:`resnet_lab.build` rebuilds it
    from the run's seed and checks the result against the stored digest;
``"reference"``
    a file trained elsewhere (akamaster/pytorch_resnet_cifar10), found locally or downloaded,
    its keys renamed into ours (:mod:`resnet_lab.weights.reference`).

Every entry carries the numbers measured on it (test error and training error without
augmentation, in fp32 with BatchNorm in eval mode) and the data variant they were measured
on: numbers on ``cifar10-jpeg`` and on the official ``cifar10`` files are never comparable.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: where shipped files and their manifest live (package data, inside the wheel too)
SHIPPED = Path(__file__).resolve().parent / "shipped"
SOURCES = ("shipped", "seed", "reference")


class WeightsError(ValueError):
    """Unknown weights, a file that is missing or fails its hash, or weights that do not fit."""


@dataclass(frozen=True, eq=False)
class Weights:
    """Trained weights of one network, and how they were made and measured.

    ``name`` is ``<model>.<tag>``, e.g. ``resnet20.zoo`` (the end of the zoo run),
    ``resnet20.zoo:step200`` (a snapshot of it) or ``resnet56.akamaster``; ``build(model,
    weights=tag)`` takes the tag alone. ``metrics``: ``test_error`` and ``train_error``
    (fractions; the training error on the whole training set without augmentation), the
    counts behind them (``test_wrong`` of ``test_images``, ``train_wrong`` of
    ``train_images``) and ``subset``: the wrong answers on a fixed class-balanced subset of
    the test split (``test_per_class`` images of each class drawn with ``seed``, as
    ``--test-subset`` draws them), which the tests check. All measured on ``data``.
    """

    name: str
    model: str
    source: str
    sha256: str
    #: the data variant the metrics were measured on (and, for zoo runs, trained on)
    data: str
    #: input normalisation on the 0..1 scale: ``(x - mean) / std`` per channel
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_params: int
    metrics: dict[str, Any]
    licence: str
    #: 'init', 'step50', 'epoch1', ... or 'final'
    point: str = "final"
    #: optimizer steps behind the weights (None where unknown)
    step: int | None = None
    file: str | None = None
    #: the results-store id of the run that made them (``results/zoo/<run>.json``)
    run: str | None = None
    seed: int | None = None
    #: one line: recipe, length, optimizer, schedule, precision
    schedule: str = ""
    #: every TrainConfig field of the run, as stored in its record
    recipe: dict[str, Any] = field(default_factory=dict)
    #: where the file may be downloaded
    url: str | None = None
    #: numbers published with the weights, with the data they were measured on
    reported: dict[str, Any] | None = None
    notes: str = ""
    #: the folder holding ``file`` (None: the package's); not stored in manifests
    folder: Path | None = field(default=None, repr=False)

    @property
    def tag(self) -> str:
        """The name without the model: what ``build(model, weights=...)`` takes."""
        return self.name.split(".", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["folder"]
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], folder: Path | None = None) -> Weights:
        known = {f.name for f in dataclasses.fields(cls)} - {"folder"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise WeightsError(f"weights entry {d.get('name')!r} has unknown fields {unknown}")
        return cls(**{**d, "mean": tuple(d["mean"]), "std": tuple(d["std"]), "folder": folder})

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images ``(N, 3, H, W)`` as the network expects them (float, normalised)."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std).view(1, -1, 1, 1) * 255
        return (images.float() - mean) / std

    def build(self, construct: Callable[[], nn.Module], download: bool = True) -> nn.Module:
        """The model ``construct()`` makes, holding these weights (what ``build(model,
        weights=...)`` returns); the caller's random state is left as it was. A ``seed``
        entry is constructed under its run's seed and checked; any other takes the loaded
        tensors as they are (``assign``: no copy into the initialised ones)."""
        with torch.random.fork_rng(devices=[]):
            if self.source == "seed":
                torch.manual_seed(self.seed)
            model = construct()
        if self.source == "seed":
            return self.load_into(model)
        return self.load_into(model, self.state_dict(download=download), assign=True)

    def state_dict(self, download: bool = True) -> dict[str, torch.Tensor]:  # noqa: ARG002
        """The tensors in fp32, checked against ``sha256`` (not for ``seed`` entries: build
        those with :func:`resnet_lab.build`). ``download``: whether a reference entry that is
        not found locally may be downloaded (see :class:`resnet_lab.weights.reference.Reference`)."""
        if self.source == "shipped":
            path = (self.folder or SHIPPED) / str(self.file)
            if not path.is_file():
                raise WeightsError(
                    f"{self.name}: {path} is missing; reinstall resnet-lab (the wheel ships it)"
                )
            check_sha256(path, self.sha256, self.name)
            from safetensors.torch import load_file

            return {k: _fp32(v) for k, v in load_file(path).items()}
        raise WeightsError(
            f"{self.name} is rebuilt from seed {self.seed}, not stored: "
            f"use resnet_lab.build({self.model!r}, weights={self.tag!r})"
        )

    def load_into(
        self,
        model: nn.Module,
        state: Mapping[str, torch.Tensor] | None = None,
        assign: bool = False,
        download: bool = True,
    ) -> nn.Module:
        """Load the weights (or ``state``, already read) into ``model``, strictly: every name
        and shape must match. A ``seed`` entry instead checks that ``model`` was built into
        exactly its weights."""
        if self.source == "seed":
            digest = state_digest(model.state_dict())
            if digest != self.sha256:
                raise WeightsError(
                    f"{self.name}: {self.model} built under seed {self.seed} differs from the "
                    f"zoo run's initialisation (digest {digest[:8]}, stored {self.sha256[:8]}); "
                    "this torch draws random numbers differently, so the step-0 weights cannot "
                    "be rebuilt here"
                )
            return model
        try:
            state = self.state_dict(download=download) if state is None else state
            model.load_state_dict(state, assign=assign)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"{self.name} do not fit this {self.model}: {first}") from None
        return model


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, sha256: str, name: str) -> None:
    digest = file_sha256(path)
    if digest != sha256:
        raise WeightsError(
            f"{name}: {path} has sha256 {digest[:12]}..., expected {sha256[:12]}...: the file is "
            "damaged or another one; delete it and reinstall or download it again"
        )


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, dtypes, shapes and bytes, in name order: the same
    digest for the same tensors, whatever their memory layout."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
