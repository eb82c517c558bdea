"""One way to start the headless, offline Chromium the browser tests drive (Debian's
``chromium`` and ``chromium-driver``; ``make browser-deps`` installs them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextlib.contextmanager
def offline_chromium(width: int = 1280, performance_log: bool = False) -> Iterator:
    """A selenium Chrome driver with no network at all (any host name fails to resolve),
    a fresh profile and a ``width`` x 900 window; quits and removes the profile after."""
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(binary).exists():
            pytest.fail(
                f"{binary} not found: install Debian's {package} (`make browser-deps`)",
                pytrace=False,
            )
    os.environ["SE_OFFLINE"] = "1"  # selenium-manager must not go to the network for drivers
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="resnet-lab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        # No network at all: any host name fails to resolve, like a machine offline.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--window-size={width},900",
    ):
        options.add_argument(arg)
    logs = {"browser": "ALL", **({"performance": "ALL"} if performance_log else {})}
    options.set_capability("goog:loggingPrefs", logs)
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)
