"""The dataset: whole splits as ``uint8`` tensors (:class:`ImageData`), balanced subsets and synthetic images."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


class DataError(ValueError):
    """A dataset could not be found, downloaded, verified or read; the message says what to do."""


@dataclass(eq=False)  # tensors have no single truth value; compare fields yourself
class ImageData:
    """A labelled image dataset held in memory as tensors.

    ``train_x``/``test_x`` are ``uint8`` ``(N, 3, H, W)``, ``train_y``/``test_y``
    are ``int64`` class indices into ``classes``. ``variant`` names the data in
    provenance records (``cifar10``, ``cifar100``, ``cifar10-jpeg``, ``synthetic``);
    ``source`` is a file or folder name (never a full path); ``subset_sizes`` is
    ``(train_per_class, test_per_class)`` for a balanced subset, else ``None``.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    variant: str
    source: str = ""
    subset_sizes: tuple[int | None, int | None] | None = None
    _stats: tuple[tuple[float, ...], tuple[float, ...]] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("train_x", "test_x"):
            x = getattr(self, name)
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise DataError(
                    f"ImageData.{name} must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
                )
        if len(self.train_x) != len(self.train_y) or len(self.test_x) != len(self.test_y):
            raise DataError("ImageData: images and labels differ in length")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training split, on the 0..1 scale."""
        return self._statistics()[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the training split, on the 0..1 scale."""
        return self._statistics()[1]

    def _statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self._stats is None:
            # Exact statistics from a 256-bin histogram per channel: one pass, no float copy.
            values = torch.arange(256, dtype=torch.float64)
            means, stds = [], []
            for c in range(self.train_x.shape[1]):
                counts = torch.bincount(self.train_x[:, c].reshape(-1), minlength=256).double()
                p = counts / counts.sum()
                mean = float((p * values).sum())
                var = float((p * (values - mean) ** 2).sum())
                means.append(round(mean / 255.0, 6))
                stds.append(round(var**0.5 / 255.0, 6))
            self._stats = (tuple(means), tuple(stds))
        return self._stats

    def subset(
        self, train_per_class: int | None, test_per_class: int | None = None, seed: int = 0
    ) -> ImageData:
        """A deterministic, class-balanced subset (``None`` keeps a split whole); see :func:`subset`."""
        return subset(self, train_per_class, test_per_class, seed=seed)

    def fingerprint(self) -> str:
        """A hash of both splits' images and labels (BLAKE2b, 16 hex digits): equal for the
        same data, different for other data of the same name and sizes. A checkpoint keeps
        it, so that a resume on other data is refused."""
        h = hashlib.blake2b(digest_size=8)
        for t in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.detach().cpu().contiguous().numpy().data)
        return h.hexdigest()

    def info(self) -> dict:
        """Provenance of the data for results records."""
        out = {
            "variant": self.variant,
            "source": self.source,
            "train_size": len(self.train_y),
            "test_size": len(self.test_y),
            "num_classes": self.num_classes,
            "image_size": list(self.image_size),
        }
        if self.subset_sizes is not None:
            out["subset_per_class"] = list(self.subset_sizes)
        return out

    def __repr__(self) -> str:
        sub = f", subset={self.subset_sizes}" if self.subset_sizes else ""
        return (
            f"ImageData(variant={self.variant!r}, train={len(self.train_y)}, "
            f"test={len(self.test_y)}, classes={self.num_classes}, "
            f"size={'x'.join(map(str, self.image_size))}{sub})"
        )


def balanced_indices(
    labels: torch.Tensor, per_class: int, num_classes: int, seed: int = 0
) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class, chosen at random with ``seed``, sorted.

    One permutation is drawn for the whole split and each class takes its first
    ``per_class`` members in that order, so a smaller subset is contained in a
    larger one with the same seed.
    """
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels, minlength=num_classes)
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    if int(counts.min()) < per_class:
        c = int(counts.argmin())
        raise DataError(
            f"class {c} has only {int(counts[c])} examples, fewer than the {per_class} per class "
            f"asked for; use at most {int(counts.min())}"
        )
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=gen)
    permuted = labels[perm]
    chosen = [perm[permuted == c][:per_class] for c in range(num_classes)]
    return torch.cat(chosen).sort().values


def subset(
    data: ImageData,
    train_per_class: int | None,
    test_per_class: int | None = None,
    seed: int = 0,
) -> ImageData:
    """A deterministic, class-balanced subset of ``data`` (the quick tier's datasets).

    ``None`` keeps that split whole. The variant is unchanged; ``subset_sizes``
    records the sizes, and the normalisation statistics are recomputed from the
    subset's training split.
    """
    tr = te = None
    if train_per_class is not None:
        tr = balanced_indices(data.train_y, train_per_class, data.num_classes, seed)
    if test_per_class is not None:
        te = balanced_indices(data.test_y, test_per_class, data.num_classes, seed)
    return replace(
        data,
        train_x=data.train_x if tr is None else data.train_x[tr],
        train_y=data.train_y if tr is None else data.train_y[tr],
        test_x=data.test_x if te is None else data.test_x[te],
        test_y=data.test_y if te is None else data.test_y[te],
        subset_sizes=(train_per_class, test_per_class),
        _stats=None if tr is not None else data._stats,
    )


# ----------------------------------------------------------------------------- synthetic


def _check_room(n: int, size: int) -> None:
    """Refuse at once ``n`` synthetic images that cannot be made in the memory available (a
    lower bound: each split is drawn as float32 images plus as much noise, then kept as uint8)."""
    from resnet_lab import runtime
    from resnet_lab.summary import format_bytes

    per_image = 3 * size * size * (4 + 4 + 1)
    free = runtime.available_memory(torch.device("cpu"))
    if free is not None and n * per_image > free:
        raise DataError(
            f"{n:,} synthetic images of {size}x{size} need at least "
            f"{format_bytes(n * per_image)} of memory, but the CPU has {format_bytes(free)} "
            f"available; ask for at most {free // per_image:,} in all (a smaller subset: --subset N "
            "on the command line)"
        )


def synthetic(
    n_train: int = 5000,
    n_test: int = 1000,
    num_classes: int = 10,
    seed: int = 0,
    image_size: int = 32,
) -> ImageData:
    """Coloured stripe patterns, one per class, randomly shifted and noisy; generated in memory.

    Learnable (a small CNN reaches well above chance in a few epochs) but not
    trivial, so training curves look like training curves. Labels are balanced;
    the variant is ``synthetic`` so no result can pass for CIFAR.
    """
    _check_room(n_train + n_test, image_size)
    gen = torch.Generator().manual_seed(10_000 + seed)
    s = image_size
    yy, xx = torch.meshgrid(torch.arange(float(s)), torch.arange(float(s)), indexing="ij")
    angle = torch.rand(num_classes, generator=gen) * torch.pi
    freq = 0.2 + 0.4 * torch.rand(num_classes, generator=gen)
    colour = 0.25 + 0.5 * torch.rand(num_classes, 3, generator=gen)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
        # A random phase per image is a random shift of the class's stripes.
        offset = 2 * torch.pi * torch.rand(n, 1, 1, generator=gen)
        a, f = angle[y][:, None, None], freq[y][:, None, None]
        phase = (torch.cos(a) * xx + torch.sin(a) * yy) * f + offset  # (n, s, s)
        x = colour[y][:, :, None, None] * (1 + torch.sin(phase)[:, None]) / 2
        x += 0.15 * torch.randn(x.shape, generator=gen)
        x += 0.1 * torch.randn(n, 3, 1, 1, generator=gen)
        return (x.clamp_(0, 1) * 255).round_().to(torch.uint8), y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return ImageData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes=[f"pattern{c}" for c in range(num_classes)],
        variant="synthetic",
        source="generated",
    )
