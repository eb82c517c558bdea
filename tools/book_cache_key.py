"""Drop jupyter-book's execution cache when what the notebooks depend on changes.

jupyter-cache keys executed notebooks on their code cells only; it ignores
environment variables (the size tier, the forced precision) and the package the notebooks import.
This script folds those into one key and empties the cache when the key changes.

Usage: python tools/book_cache_key.py BUILD_DIR
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_key() -> str:
    from resnet_lab.runtime import forced_amp, pick_tier

    digest = hashlib.sha256()
    digest.update(f"tier={pick_tier()}\n".encode())
    digest.update(f"amp={forced_amp()}\n".encode())  # RESNET_LAB_AMP: the precision trained in
    digest.update(f"data={os.environ.get('RESNET_LAB_DATA', '')}\n".encode())
    for folder in ("resnet_lab", "results"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def main(build_dir: str) -> None:
    build = Path(build_dir)
    key_file = build / ".cache-key"
    key = cache_key()
    if key_file.exists() and key_file.read_text().strip() == key:
        print("book cache: up to date (notebooks already executed for this tier and code)")
        return
    cache = build / ".jupyter_cache"
    if cache.exists():
        print("book cache: tier, package or results changed; re-executing every notebook")
        shutil.rmtree(cache)
    build.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "_build")
