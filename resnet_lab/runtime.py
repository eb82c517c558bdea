"""Where code runs: the device, its precision, the size tier and where datasets live.

Every notebook starts with ``rl.setup()``; the command line and the training
engine use the same functions, so one environment variable changes all of them.

Environment variables
---------------------
``RESNET_LAB_TIER``
    ``quick`` (CPU: CI and laptops, about a minute a chapter) or ``standard``
    (one GPU such as Colab's T4, a few minutes a chapter). Unset: quick on a CPU,
    standard on a GPU. Paper-scale runs (``full``) belong to ``resnet-lab train``.
``RESNET_LAB_DATA``
    Where datasets live: either an image-folder dataset (a directory or a
    ``.zip`` holding ``train/<class>/...`` and ``test/<class>/...``), or a
    directory used as the download cache for the official archives.
    A ``data=`` argument to the data functions overrides it.
``RESNET_LAB_DEVICE``
    Force a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
``RESNET_LAB_AMP``
    Force the precision that ``amp="auto"`` (the default everywhere the chapters
    train) resolves to: ``off`` (fp32), ``bf16`` or ``fp16``; ``auto`` or unset: chosen
    by the hardware (:func:`amp_dtype`). An explicit ``amp`` other than ``auto`` wins.
    ``make test`` checks the chapters with ``off``, so a bf16 machine proves the fp32
    path too.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

TIERS = ("quick", "standard", "full")
AMP_MODES = ("auto", "bf16", "fp16", "off")
NOTEBOOK_TIERS = ("quick", "standard")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The training device: an explicit choice, else ``RESNET_LAB_DEVICE``, else cuda > mps > cpu."""
    choice = device if device is not None else os.environ.get("RESNET_LAB_DEVICE") or None
    if choice is not None:
        try:
            dev = torch.device(choice)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"unknown device {str(choice)!r}; use cpu, cuda, cuda:N or mps"
            ) from exc
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(
                f"device {str(choice)!r} was asked for, but this PyTorch has no Apple GPU (MPS) "
                "here; use device='cpu' or unset RESNET_LAB_DEVICE"
            )
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {str(choice)!r} was asked for, but PyTorch sees no CUDA GPU here; "
                "use device='cpu' or unset RESNET_LAB_DEVICE"
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_tier(tier: str | None = None, device: torch.device | None = None) -> str:
    """The size tier: an explicit choice, else ``RESNET_LAB_TIER``, else quick on CPU, standard on GPU."""
    choice = tier or os.environ.get("RESNET_LAB_TIER") or None
    if choice is None:
        device = device if device is not None else pick_device()
        return "quick" if device.type == "cpu" else "standard"
    choice = choice.strip().lower()
    if choice not in TIERS:
        raise ValueError(
            f"unknown tier {choice!r}: RESNET_LAB_TIER must be one of {', '.join(TIERS)}"
        )
    return choice


def data_location(data: str | os.PathLike | None = None) -> Path | None:
    """Where datasets live: the ``data`` argument, else ``RESNET_LAB_DATA``, else None (the default cache)."""
    choice = data if data is not None else os.environ.get("RESNET_LAB_DATA") or None
    return Path(choice).expanduser() if choice else None


def cache_dir() -> Path:
    """The download cache for official archives (``$XDG_CACHE_HOME/resnet_lab`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "resnet_lab"


def device_name(device: torch.device) -> str:
    """A human-readable device name for provenance records, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX), as torch reports it.

    Only then is CPU autocast worth it: oneDNN runs bf16 convolutions natively there (about
    1.7x the fp32 speed of a ResNet-20 step on a 2-core AVX512-BF16 EPYC), while on CPUs
    without it bf16 is emulated and many times slower than fp32 (9 against 240 img/s on an
    AVX2-only EPYC).
    """
    caps = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.6
    if caps is not None:
        try:
            found = caps()
            return bool(found.get("avx512_bf16") or found.get("amx_bf16"))
        except Exception:  # noqa: BLE001 - a probe must never stop training
            pass
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def forced_amp() -> str:
    """The ``amp`` mode ``RESNET_LAB_AMP`` forces on ``auto`` ('auto' when unset: no override)."""
    choice = (os.environ.get("RESNET_LAB_AMP") or "auto").strip().lower()
    if choice not in AMP_MODES:
        raise ValueError(
            f"unknown precision {choice!r}: RESNET_LAB_AMP must be one of "
            f"{', '.join(AMP_MODES)} (off = fp32), or unset"
        )
    return choice


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` mode on ``device`` (None: fp32).

    ``auto``: what ``RESNET_LAB_AMP`` forces, if set; else on CUDA bf16 from compute capability 8.0 (A100, H100), fp16 with gradient
    scaling below (T4); on CPU bf16 where the CPU has native bf16 arithmetic, else fp32;
    fp32 on MPS.
    """
    if mode == "auto":
        mode = forced_amp()
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type == "cuda":
        # bf16 only where the tensor cores have it (sm_80+: A100, H100); since torch 2.4
        # is_bf16_supported() also says yes for emulated bf16 on a T4, which is slow there.
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None  # MPS, and CPUs without native bf16: fp32


def available_memory(device: torch.device) -> int | None:
    """Bytes a run may still take: available RAM on a CPU, free memory on a CUDA GPU."""
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


def precision_name(dtype: torch.dtype | None) -> str:
    """'fp32', 'bf16' or 'fp16': what a run trains in, for records and printed lines."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Setup:
    """What a notebook runs with; printed by :func:`setup` as one line."""

    device: torch.device
    tier: str
    seed: int

    def __str__(self) -> str:
        from resnet_lab._version import __version__

        return (
            f"resnet_lab {__version__} | torch {torch.__version__} | "
            f"device {self.device.type} | precision {precision_name(amp_dtype('auto', self.device))}"
            f" | tier {self.tier} | seed {self.seed}"
        )


def setup(tier: str | None = None, seed: int = 0, quiet: bool = False) -> Setup:
    """Pick device and tier for a notebook, seed every generator and print one summary line.

    Notebooks run the ``quick`` or ``standard`` tier; ``full`` paper-scale runs
    belong to the command line (``resnet-lab train --recipe paper``).
    """
    device = pick_device()
    chosen = pick_tier(tier, device)
    if chosen not in NOTEBOOK_TIERS:
        raise ValueError(
            f"tier {chosen!r} is for the command line; notebooks run 'quick' or 'standard'. "
            "Unset RESNET_LAB_TIER or set it to quick/standard, and use "
            "`resnet-lab train --recipe paper` for paper-scale runs."
        )
    torch.manual_seed(seed)
    if not quiet:
        _quiet_notebook_noise()
    result = Setup(device=device, tier=chosen, seed=seed)
    if not quiet:
        print(result)
    return result


def _quiet_notebook_noise() -> None:
    """Matplotlib defaults that make figures readable in the HTML book."""
    try:
        import matplotlib as mpl
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.4, 3.6),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            # The same SVG for the same figure in every run (no random ids).
            "svg.hashsalt": "resnet-lab",
        }
    )
    _sharp_notebook_figures()


def _sharp_notebook_figures() -> None:
    """Notebook figures as SVG: sharp on any screen, and for the book's line charts lighter
    than a PNG at twice the resolution (an 8-curve chart: 47 kB, against 153 kB). Only
    inside IPython."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - both come with ipykernel
        return
    if get_ipython() is None:
        return
    # No creation date in the file: a re-run changes nothing that did not change.
    set_matplotlib_formats("svg", metadata={"Date": None})
