"""Prepare what a GPU machine needs for `resnet-lab suite`: the data and the Jupyter wheels.

    python tools/gpu_carry.py --data ../shared/data/cifar10-jpeg.zip

writes into ``.carry/`` (ignored by git; a device call takes it with ``carry=[".carry"]``):

``cifar10-jpeg.tar.xz``
    every file of the zip, byte for byte, in one solid xz stream: about 18 MB instead of
    62, because the zip compresses each 1 kB JPEG alone and cannot share their identical
    headers. ``resnet-lab suite --data .carry/cifar10-jpeg.tar.xz`` turns it back into
    ``cifar10-jpeg.zip`` (same files, same order, so the same pixels and the same variant).
``wheels/``
    nbclient, ipykernel, ipywidgets and everything they need that the GPU image lacks,
    for its Python 3.12 (``suite chapters --wheels .carry/wheels`` installs them with
    ``pip install --no-index``).

Then it prints the size of what a call would send against the device tool's 64 MiB.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / ".carry"
LIMIT = 64 * 2**20

# What the chapters need and the GPU image lacks (it has torch, numpy, matplotlib, tqdm,
# pygments, packaging, psutil, python-dateutil, attrs: /work/.library/device/KINDS.md).
WANTED = ["nbclient", "nbformat", "ipykernel", "ipython", "ipywidgets"]
ON_GPU_IMAGE = {
    "attrs",
    "jinja2",
    "markupsafe",
    "packaging",
    "psutil",
    "pygments",
    "python-dateutil",
    "six",
    "typing-extensions",
    "setuptools",
    "pip",
    "wheel",
    "numpy",
    "matplotlib",
    "tqdm",
}
# The GPU image's interpreter (KINDS.md: Python 3.12.3, x86-64).
TARGET = [
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--abi",
    "cp312",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux1_x86_64",
]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def pack_data(zip_path: Path, dest: Path) -> Path:
    """The zip's files as one .tar.xz, checked to hold exactly the same bytes."""
    out = dest / f"{zip_path.stem}.tar.xz"
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(zip_path) as zf, tarfile.open(tmp, "w:xz", preset=6) as tf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            blob = zf.read(info)
            member = tarfile.TarInfo(info.filename)
            member.size, member.mtime, member.mode = len(blob), 0, 0o644
            tf.addfile(member, io.BytesIO(blob))
    with zipfile.ZipFile(zip_path) as zf, tarfile.open(tmp, "r:xz") as tf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        got = 0
        for member, name in zip(tf, names, strict=True):
            f = tf.extractfile(member)
            if member.name != name or f is None or f.read() != zf.read(name):
                raise SystemExit(f"packing check failed at {name}: {tmp} removed")
            got += 1
    tmp.replace(out)
    print(
        f"{_shown(out)}: {got} files, {out.stat().st_size / 2**20:.1f} MiB "
        f"(the zip: {zip_path.stat().st_size / 2**20:.1f} MiB), contents checked"
    )
    return out


def download_wheels(dest: Path) -> list[Path]:
    """Wheels of WANTED and their requirements for the GPU image, minus what it already has."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        *TARGET,
        "-c",
        str(ROOT / "constraints.txt"),
        "-d",
        str(dest),
        *WANTED,
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    for w in wheels:
        if _norm(w.name.split("-")[0]) in ON_GPU_IMAGE:
            w.unlink()
    wheels = sorted(dest.glob("*.whl"))
    _check_complete(wheels)
    total = sum(w.stat().st_size for w in wheels)
    print(f"{_shown(dest)}: {len(wheels)} wheels, {total / 2**20:.1f} MiB")
    return wheels


def _check_complete(wheels: list[Path]) -> None:
    """Every requirement of every wheel is another wheel here or on the GPU image."""
    from packaging.requirements import Requirement

    env = {
        "python_version": "3.12",
        "python_full_version": "3.12.3",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    have = {_norm(w.name.split("-")[0]) for w in wheels} | ON_GPU_IMAGE
    missing = set()
    for w in wheels:
        with zipfile.ZipFile(w) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            lines = zf.read(meta).decode().splitlines()
        for line in lines:
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (req.marker is None or req.marker.evaluate(env)) and _norm(req.name) not in have:
                    missing.add(f"{req.name} (for {w.name})")
    if missing:
        raise SystemExit("wheels incomplete, missing: " + ", ".join(sorted(missing)))


def travelling_size() -> int:
    """Bytes a device call sends: tracked and untracked-not-ignored files, plus .carry/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    tree = sum(
        (ROOT / n.decode()).stat().st_size for n in listed if n and (ROOT / n.decode()).is_file()
    )
    carried = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    return tree + carried


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="the CIFAR-10 JPEG zip to pack")
    parser.add_argument("--no-wheels", action="store_true", help="skip the Jupyter wheels")
    args = parser.parse_args()
    CARRY.mkdir(exist_ok=True)
    if args.data is not None:
        pack_data(args.data.expanduser(), CARRY)
    if not args.no_wheels:
        download_wheels(CARRY / "wheels")
    size = travelling_size()
    print(f"a call with carry=['.carry'] sends {size / 2**20:.1f} MiB of the 64 MiB allowed")
    return 0 if size <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
