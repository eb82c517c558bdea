"""Fetch the pinned TensorFlow.js bundles for the book's playground from the npm registry.

The playground (``book/playground/``) trains a small network in the reader's browser with
TensorFlow.js: the minified browser bundle that npm publishes in ``@tensorflow/tfjs`` (core with
its gradients, the CPU and WebGL backends, layers; 1.1 MB as ES2017), committed under
``book/playground/vendor/`` with its licence and SHA-256 sum so that ``make book`` needs neither
node nor a network. (``@tensorflow/tfjs-core``'s own bundle is smaller but registers no
gradients.) This script is only for updating it::

    python tools/vendor_tfjs.py            # fetch VERSION with `npm pack`, write the files
    python tools/vendor_tfjs.py --check    # do the committed files match SHA256SUMS?

To move to a newer release, change VERSION, run it, rerun ``pytest tests/test_playground.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "4.22.0"
PACKAGES = {"@tensorflow/tfjs": "tf.es2017.min.js"}
VENDOR = Path(__file__).resolve().parent.parent / "book" / "playground" / "vendor"
SUMS = "SHA256SUMS"
# Debian's copy of the licence the package names (Apache-2.0); npm's tarball carries none.
LICENCE = Path("/usr/share/common-licenses/Apache-2.0")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(vendor: Path = VENDOR) -> list[str]:
    """What is wrong with the committed bundles (an empty list when they match their sums)."""
    sums = vendor / SUMS
    if not sums.exists():
        return [f"{sums} is missing: run `python tools/vendor_tfjs.py`"]
    problems = []
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = vendor / name.lstrip("*")
        if not path.exists():
            problems.append(f"{path} is missing: run `python tools/vendor_tfjs.py`")
        elif sha256(path) != digest:
            problems.append(f"{path} differs from {SUMS}: run `python tools/vendor_tfjs.py`")
    return problems


def fetch(vendor: Path = VENDOR) -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: install Node.js and npm (apt-get install npm) to update tfjs")
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{package}@{VERSION}" for package in PACKAGES]
        subprocess.run([npm, "pack", "--silent", *specs], cwd=tmp, check=True)
        for package, filename in PACKAGES.items():
            tarball = Path(tmp) / f"{package.lstrip('@').replace('/', '-')}-{VERSION}.tgz"
            with tarfile.open(tarball) as archive:
                member = archive.extractfile(f"package/dist/{filename}")
                assert member is not None, f"{tarball} has no dist/{filename}"
                (vendor / filename).write_bytes(member.read())
    shutil.copyfile(LICENCE, vendor / "LICENSE")
    lines = [f"{sha256(vendor / name)}  {name}" for name in sorted(PACKAGES.values())]
    (vendor / SUMS).write_text("\n".join(lines) + "\n")
    print(f"wrote tfjs {VERSION} to {vendor}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with SHA256SUMS")
    if parser.parse_args().check:
        problems = check()
        print("\n".join(problems) or "tfjs bundles match SHA256SUMS")
        return 1 if problems else 0
    fetch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
