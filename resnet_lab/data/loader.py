"""The device-resident loader: whole splits on the training device, augmented a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from resnet_lab import runtime


def default_channels_last(device: torch.device) -> bool:
    """Channels-last (NHWC) pays on CUDA (tensor cores) and on CPUs (oneDNN's native layout:
    ResNet-20 trains about 1.3x faster per core); MPS support is patchy, so not there."""
    return device.type in ("cuda", "cpu")


class GpuLoader:
    """Batches from a dataset held as one ``uint8`` tensor on the training device.

    Augmentation of He et al. (2016, §4.2) on whole batches: pad 4 pixels of zeros
    on each side, take a random 32x32 crop and flip horizontally with probability
    1/2, independently per image. Crop and flip are one ``gather`` with per-image
    offsets, so a GPU never waits for data. Normalisation uses ``mean``/``std``
    (0..1 scale) on the device.

    Epoch ``e`` draws its order, crops and flips from a generator seeded with
    ``(seed, e)`` (:meth:`set_epoch`), so a resumed run sees the same batches.
    ``batch_size`` is global: under DistributedDataParallel each of ``world_size``
    processes takes its slice of every batch (:meth:`local_slice`), so the same
    seed gives the same global batches for any number of processes.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        train: bool,
        mean: Sequence[float],
        std: Sequence[float],
        device: str | torch.device | None = None,
        augment: bool = True,
        channels_last: bool | None = None,
        seed: int = 0,
        pad: int = 4,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if batch_size < world_size:
            raise ValueError(f"batch_size {batch_size} is smaller than the {world_size} processes")
        self.device = runtime.pick_device(device)
        self.images = images.to(self.device, non_blocking=True)
        self.labels = labels.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment and train
        self.channels_last = (
            default_channels_last(self.device) if channels_last is None else channels_last
        )
        self.seed = seed
        self.pad = pad
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        c = images.shape[1]
        std_t = torch.tensor(list(std), dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        mean_t = torch.tensor(list(mean), dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        # x/255 normalised in one multiply-add: (x/255 - m)/s = x * 1/(255 s) - m/s
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = mean_t / std_t
        self.epoch = 0
        self._plan: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None = None

    def __len__(self) -> int:
        n = len(self.labels)
        tail = n % self.batch_size
        # Under DDP every process needs at least one image of every batch it trains on.
        drop = self.drop_last or (self.train and self.world_size > 1 and 0 < tail < self.world_size)
        return n // self.batch_size if drop else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and augmentation the next iteration uses."""
        self.epoch = epoch
        self._plan = None

    def _make_plan(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.device), None, None
        # Drawn on the CPU so the same seed gives the same batches on every device.
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=gen)
        if not self.augment:
            return order.to(self.device), None, None
        shifts = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        return order.to(self.device), shifts.to(self.device), flips.to(self.device)

    def local_slice(self, n: int) -> slice:
        """This process's part of a global batch of ``n`` images."""
        bounds = [n * r // self.world_size for r in range(self.world_size + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def forever(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches epoch after epoch from this one on, each epoch with its own order and
        augmentation, without end (for timing a fixed number of steps)."""
        while True:
            yield from self
            self.set_epoch(self.epoch + 1)

    def iter_from(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate the current epoch from batch ``start`` (to resume in the middle of an epoch)."""
        if self._plan is None:
            self._plan = self._make_plan()
        order, shifts, flips = self._plan
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            idx = idx[self.local_slice(len(idx))]
            x = self.images[idx]
            if shifts is not None:
                x = augment_batch(x, shifts[idx], flips[idx], self.pad)
            yield self._normalise(x), self.labels[idx]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(-self._shift, x.float(), self._scale)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __repr__(self) -> str:
        return (
            f"GpuLoader({len(self.labels)} images, batch_size={self.batch_size}, "
            f"train={self.train}, augment={self.augment}, device={self.device})"
        )


def augment_batch(
    x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = 4
) -> torch.Tensor:
    """Random crop of the zero-padded images and horizontal flip, per image, as one gather.

    ``x``: (B, C, H, W); ``shifts``: (B, 2) offsets (dy, dx) in ``0..2*pad`` into the
    padded image; ``flips``: (B,) bool. Output pixel (i, j) of image b is padded pixel
    (dy + i, dx + j), or (dy + i, dx + W-1-j) when flipped.
    """
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    pw = w + 2 * pad
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], ar_w.flip(0), ar_w) + shifts[:, 1:2]  # (B, W)
    rows = ar_h + shifts[:, 0:1]  # (B, H)
    flat = (rows[:, :, None] * pw + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)
