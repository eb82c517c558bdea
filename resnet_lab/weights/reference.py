"""Reference weights: the CIFAR-10 ResNet-20/32/44/56 of akamaster/pytorch_resnet_cifar10.

Trained by that repository's ``trainer.py`` (He et al.'s recipe: 200 epochs, lr 0.1 divided
by 10 at epochs 100 and 150, weight decay 1e-4, batch 128, crop + flip) on the official
CIFAR-10 files, and published under the BSD 2-clause licence (keep its ``LICENSE`` with any
copy). They are not in this package (9 MB in fp32, over the shipped-weights budget); a local
copy is found in, in order:

1. ``$RESNET_LAB_WEIGHTS`` (a folder holding the files, or holding ``akamaster/`` with them);
2. ``../shared/models/akamaster`` beside the repository (development machines);
3. torch.hub's cache (``~/.cache/torch/hub/checkpoints``), where a download lands.

If none has the file, it is downloaded from the repository's public address and checked
against its sha256 (``build(..., weights="akamaster")`` needs a network only then).

Their inputs are normalised with ImageNet's mean and std, not CIFAR-10's: the entries carry
that preprocessing, and ``resnet-lab eval`` applies it. Measured here on ``cifar10-jpeg``
(the JPEG copy: quality 75, chroma subsampling) they score far worse than the errors
reported on the official files (ResNet-20: 18.97 % against 8.27 %, ResNet-56: 16.80 %
against 6.61 %). That gap is JPEG compression, not the networks: numbers on the two data
variants are never comparable, in either direction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from resnet_lab.weights.entry import Weights, WeightsError, check_sha256

#: the first published version of the files (commit d5489e8 of the repository)
URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/{file}"
LICENCE = "BSD-2-Clause, (c) 2018 Yerlan Idelbayev (akamaster/pytorch_resnet_cifar10)"
#: their trainer's normalisation (ImageNet statistics), on the 0..1 scale
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCHEDULE = (
    "akamaster/pytorch_resnet_cifar10 trainer.py: 200 epochs of SGD (momentum 0.9, batch 128, "
    "weight decay 1e-4), lr 0.1 divided by 10 at epochs 100 and 150, crop + flip, official "
    "CIFAR-10 training files; the published file is the epoch with the best test accuracy"
)
NOTES = (
    "Trained on the official CIFAR-10 files; measured here on cifar10-jpeg, where JPEG "
    "compression costs about ten points: compare with runs on the same data variant only."
)

# depth: (file, sha256, test error reported on the official test set, and what
# `resnet-lab eval resnetNN --weights akamaster --data ../shared/data/cifar10-jpeg.zip`
# measured: wrong answers of the 10,000 test images, of the 50,000 training images (None:
# not measured yet) and of the 500-image test subset)
_FILES = {
    20: ("resnet20-12fca82f.th", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
         0.0827, (1897, None, 98)),
    32: ("resnet32-d509ac18.th", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
         0.0737, (1744, None, 89)),
    44: ("resnet44-014dd654.th", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
         0.0690, (1733, None, 83)),
    56: ("resnet56-4bfd9763.th", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
         0.0661, (1680, None, 83)),
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class Reference(Weights):
    """A reference entry: its file is looked for locally, else downloaded (``download``)."""

    def state_dict(self, download: bool = True) -> dict[str, torch.Tensor]:
        path = locate(self, download)
        check_sha256(path, self.sha256, self.name)
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return convert(saved["state_dict"] if "state_dict" in saved else saved)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """akamaster's keys as ours: no ``module.`` prefix (saved from ``DataParallel``), and the
    classifier ``linear.*`` is our ``fc.*``. Their files predate BatchNorm's
    ``num_batches_tracked``, which ``load_state_dict`` fills in for such old state dicts."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        out["fc." + key.removeprefix("linear.") if key.startswith("linear.") else key] = value
    return out


def search_path() -> list[Path]:
    """The folders searched for a local copy, in order."""
    folders = []
    env = os.environ.get("RESNET_LAB_WEIGHTS")
    if env:
        folders += [Path(env), Path(env) / "akamaster"]
    repo = Path(__file__).resolve().parents[2]
    folders += [repo.parent / "shared" / "models" / "akamaster"]
    folders += [Path(torch.hub.get_dir()) / "checkpoints"]
    return folders


def locate(entry: Weights, download: bool = True) -> Path:
    """The local file of ``entry``, downloaded into torch.hub's cache if none is found and
    ``download`` allows it; a one-line :class:`WeightsError` otherwise."""
    folders = search_path()
    for folder in folders:
        if (folder / str(entry.file)).is_file():
            return folder / str(entry.file)
    where = ", ".join(map(str, folders))
    fix = f"set RESNET_LAB_WEIGHTS to a folder holding it (public copy: {entry.url})"
    if not download:
        raise WeightsError(f"{entry.name}: {entry.file} is in none of {where}; {fix}")
    target = folders[-1] / str(entry.file)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(str(entry.url), str(target), hash_prefix=entry.sha256)
    except (OSError, RuntimeError) as exc:  # no network, a refused address, a wrong hash
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{entry.name}: {entry.file} is in none of {where}, and downloading it failed "
            f"({reason}); {fix}"
        ) from None
    return target


def entries() -> list[Weights]:
    """The reference entries, one per network."""
    out = []
    for depth, (file, sha256, reported, (test_wrong, train_wrong, subset_wrong)) in _FILES.items():
        metrics = {
            "test_error": None if test_wrong is None else test_wrong / 10_000,
            "test_wrong": test_wrong,
            "test_images": 10_000,
            "train_error": None if train_wrong is None else train_wrong / 50_000,
            "train_wrong": train_wrong,
            "train_images": 50_000,
            "subset": {"test_per_class": 50, "seed": 0, "images": 500, "wrong": subset_wrong},
        }
        out.append(
            Reference(
                name=f"resnet{depth}.akamaster",
                model=f"resnet{depth}",
                source="reference",
                sha256=sha256,
                data="cifar10-jpeg",
                mean=MEAN,
                std=STD,
                num_params=_PARAMS[depth],
                metrics=metrics,
                licence=LICENCE,
                file=file,
                schedule=SCHEDULE,
                url=URL.format(file=file),
                reported={"data": "cifar10", "test_error": reported},
                notes=NOTES,
            )
        )
    return out


# parameters of our resnetNN (option A shortcuts), which the files fill exactly
_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018}
