"""Make sure Debian's headless Chromium and ChromeDriver are installed (browser tests need them).

Installs the Debian packages `chromium` and `chromium-driver` with apt-get when
they are missing (as root, or through passwordless sudo); otherwise says what to run.
"""

import os
import shutil
import subprocess
import sys

PACKAGES = ["chromium", "chromium-driver"]


def main() -> int:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return 0
    if os.geteuid() == 0:
        prefix = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        print(
            "The browser test needs headless Chromium. Install it once with:\n"
            f"    sudo apt-get update && sudo apt-get install -y {' '.join(PACKAGES)}",
            file=sys.stderr,
        )
        return 1
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(PACKAGES)} with apt-get (once)")
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
