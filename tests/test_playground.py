"""The depth playground (``book/playground/``) in headless Chromium, loaded straight from its
sources (no book build needed), offline.

- The page's TensorFlow.js network computes the package's ``spiral_mlp`` (same outputs and
  gradients from the same weights, to 1e-5).
- The page's claim (``book/playground.md``): with its default settings a plain network of
  depth 32 stalls while the residual one learns.
- A diverging learning rate stops cleanly; tfjs loads only when needed; it works at 390 px
  with touch.
- The time of one training step (depth 32, batch 128) and the bytes the playground adds are
  recorded in ``_build/playground/benchmark.json`` (a measurement, not an assertion).

Alone: ``.venv/bin/python -m pytest -m browser tests/test_playground.py``.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from offline_chromium import CHROMIUM, offline_chromium
from torch import nn

from resnet_lab.models import build

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND = ROOT / "book" / "playground"
PAGE = ROOT / "book" / "playground.md"
ARTEFACT = ROOT / "_build" / "playground" / "benchmark.json"

# What the playground adds to a page: its own files and the TensorFlow.js bundle.
ASSETS = ["playground.js", "net.js", "playground.css", "vendor/tf.es2017.min.js"]
MAX_PAGE_BYTES = 2 * 1024 * 1024
TOLERANCE = 1e-5
STRICT_DEPTH = 8  # nets up to this depth must agree with PyTorch to TOLERANCE
# The page's claim, asserted as the page states it (book/playground.md must say these numbers).
CLAIM_STEPS, PLAIN_ABOVE, RESIDUAL_BELOW = 300, 0.5, 0.35
PHONE_WIDTH = 390

sys.path.insert(0, str(ROOT / "tools"))
import vendor_tfjs  # noqa: E402


def _harness(folder: Path, spacer_px: int = 0) -> Path:
    """A page holding one playground, loading its files as the book's pages do."""
    css = (PLAYGROUND / "playground.css").as_uri()
    scripts = "".join(
        f'<script src="{(PLAYGROUND / name).as_uri()}"></script>'
        for name in ("net.js", "playground.js")
    )
    page = folder / f"playground-{spacer_px}.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="{css}">{scripts}</head><body>'
        f'<div style="height:{spacer_px}px"></div><div class="rl-playground"></div></body></html>'
    )
    return page


@pytest.fixture(scope="module")
def chrome():
    with offline_chromium() as driver:
        driver.set_script_timeout(600)
        driver.command_executor.client_config.timeout = 660
        yield driver


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("playground")
    return {"top": _harness(folder).as_uri(), "below": _harness(folder, 3000).as_uri()}


def _open(chrome, url: str) -> None:
    chrome.get_log("browser")
    chrome.get(url)
    chrome.execute_async_script(
        "const done = arguments[0]; ResnetPlayground.loadTf().then(() => done(), e => done(e));"
    )


def _errors(chrome) -> list[str]:
    return [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]


def _set(chrome, **settings) -> None:
    """Change controls as a reader does (each change resets the playground)."""
    chrome.execute_script(
        """const root = document.querySelector('.rl-playground');
        for (const [name, value] of Object.entries(arguments[0])) {
          const el = root.querySelector(`[data-setting="${name}"]`);
          el.value = String(value);
          el.dispatchEvent(new Event(el.type === 'range' ? 'input' : 'change'));
        }""",
        settings,
    )


def _train(chrome, steps: int) -> dict:
    return chrome.execute_async_script(
        """const done = arguments[1], pg = document.querySelector('.rl-playground').playground;
        pg.start(arguments[0]).then(() => done(Object.assign(pg.summary(),
          {status: pg.status.textContent, tensors: tf.memory().numTensors})));""",
        steps,
    )


# --- Files --------------------------------------------------------------------------------


def test_vendored_tfjs_matches_its_sums():
    assert not vendor_tfjs.check(), vendor_tfjs.check()
    assert "Apache License" in (PLAYGROUND / "vendor" / "LICENSE").read_text()


def test_playground_adds_at_most_2_mb():
    assert sum((PLAYGROUND / name).stat().st_size for name in ASSETS) <= MAX_PAGE_BYTES


def test_page_states_the_claim_the_test_checks():
    text = " ".join(PAGE.read_text().split())
    for number in (str(CLAIM_STEPS), str(PLAIN_ABOVE), str(RESIDUAL_BELOW)):
        assert number in text, f"book/playground.md does not state {number}"
    assert 'class="rl-playground"' in text and "resnet_lab.models.toy" in text


# --- In the browser -----------------------------------------------------------------------

# (depth, skip, norm). Float32 rounding differs between any two implementations (the order of
# sums), and depth amplifies it: activations of residual stacks grow with depth, plain
# BatchNorm stacks amplify perturbations (Yang et al. 2019). Shallow nets must agree to 1e-5;
# every net must be as close to the float64 result as PyTorch's own float32 result is.
CONFIGS = [
    (3, False, "none"),
    (8, False, "batchnorm"),
    (8, True, "none"),
    (8, True, "batchnorm"),
    (32, True, "batchnorm"),  # the page's residual network
    (32, False, "batchnorm"),  # the page's plain network
    (32, True, "none"),
]


def _torch_outputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    out = {"loss": loss.detach(), "logits": logits.detach()}
    return out | {name: p.grad.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.browser
@pytest.mark.parametrize("depth, skip, norm", CONFIGS)
def test_forward_and_backward_match_pytorch(chrome, pages, depth, skip, norm):
    torch.manual_seed(depth)
    model = build("spiral_mlp", depth=depth, skip=skip, norm=norm, init="he")
    with torch.no_grad():  # biases and BatchNorm parameters away from 0 and 1, so they count
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.copy_(torch.randn_like(param) * 0.1 + (1 if "norms" in name else 0))
    x, y = torch.rand(64, 2) * 2 - 1, torch.randint(0, 2, (64,))  # points like the spirals
    ours = _torch_outputs(model, x, y)
    exact = _torch_outputs(copy.deepcopy(model).double(), x.double(), y)
    state = {k: v.tolist() for k, v in model.named_parameters()}
    _open(chrome, pages["top"])
    page = chrome.execute_script(
        """const [config, state, x, y] = arguments;
        const net = new ResnetPlaygroundNet.Net(config);
        net.load(state);
        const out = net.gradients(x, y);
        net.dispose();
        return out;""",
        {"depth": depth, "skip": skip, "norm": norm, "init": "he", "seed": 0},
        state,
        x.tolist(),
        y.tolist(),
    )
    assert set(page["grads"]) == set(dict(model.named_parameters()))
    browser = {"loss": page["loss"], "logits": page["logits"], **page["grads"]}
    report = []
    for name, value in browser.items():
        value = torch.tensor(value, dtype=torch.float64)
        diff = (value - ours[name].double()).abs().max().item()
        torch_error = (ours[name].double() - exact[name]).abs().max().item()
        page_error = (value - exact[name]).abs().max().item()
        report.append((name, diff, torch_error, page_error))
    for name, diff, torch_error, page_error in report:
        if depth <= STRICT_DEPTH:
            assert diff <= TOLERANCE, f"{name}: page and PyTorch differ by {diff:.2e}"
        assert page_error <= max(TOLERANCE, 4 * torch_error), (
            f"{name}: page is {page_error:.2e} from float64, PyTorch float32 {torch_error:.2e}"
        )
    worst = max(report, key=lambda r: r[1])
    print(
        f"\ndepth {depth} skip {skip} {norm}: max |page - torch| {worst[1]:.2e} ({worst[0]}), "
        f"max |torch - float64| {max(r[2] for r in report):.2e}"
    )
    assert not _errors(chrome)


@pytest.mark.browser
def test_residual_learns_where_plain_stalls(chrome, pages):
    """The page's claim, with its default settings (depth 32, BatchNorm, He, lr 0.01, seed 1)."""
    _open(chrome, pages["top"])
    defaults = chrome.execute_script(
        "return document.querySelector('.rl-playground').playground.settings();"
    )
    assert defaults == {
        "depth": 32,
        "nets": "both",
        "norm": "batchnorm",
        "init": "he",
        "lr": 0.01,
        "seed": 1,
    }
    half = _train(chrome, CLAIM_STEPS // 2)
    out = _train(chrome, CLAIM_STEPS)  # continues where it paused
    plain, residual = out["runs"]["plain"], out["runs"]["residual"]
    print(f"\nafter {out['step']} steps: {out['status']}")
    assert out["step"] == CLAIM_STEPS and plain["steps"] == residual["steps"] == CLAIM_STEPS
    assert plain["loss"] > PLAIN_ABOVE, out
    assert residual["loss"] < RESIDUAL_BELOW, out
    assert residual["accuracy"] > plain["accuracy"] + 0.2, out
    assert out["tensors"] == half["tensors"], "training leaks tensors"
    assert f"Step {CLAIM_STEPS}" in out["status"]
    assert not _errors(chrome)


@pytest.mark.browser
def test_a_diverging_learning_rate_stops_cleanly(chrome, pages):
    """Without BatchNorm, He-initialised residual branches add up until a large learning rate
    diverges at once: that network says so and stops, the plain one trains on; when every
    network has diverged, training stops."""
    _open(chrome, pages["top"])
    _set(chrome, norm="none", lr=3, depth=8)
    out = _train(chrome, 100)
    assert out["runs"]["residual"]["diverged"] is not None, out
    assert out["runs"]["plain"]["diverged"] is None and out["runs"]["plain"]["steps"] == 100
    assert "residual: diverged at step" in out["status"], out
    _set(chrome, nets="residual")
    out = _train(chrome, 100)
    assert out["step"] < 100 and "(stopped)" in out["status"], out
    running = chrome.execute_script(
        "return document.querySelector('.rl-playground').playground.running;"
    )
    assert running is False
    assert not _errors(chrome)


@pytest.mark.browser
def test_tfjs_loads_only_when_needed(chrome, pages):
    chrome.get_log("browser")
    chrome.get(pages["below"])  # the playground is 3000 px below the top
    time.sleep(1)
    assert chrome.execute_script("return typeof window.tf") == "undefined"
    chrome.execute_script("document.querySelector('.rl-playground').scrollIntoView();")
    deadline = time.monotonic() + 30
    while chrome.execute_script("return typeof window.tf") == "undefined":
        assert time.monotonic() < deadline, "tfjs did not load when the playground came into view"
        time.sleep(0.2)
    assert not _errors(chrome)


# Widths and heights at phone size: the playground's box, every control, every canvas.
LAYOUT_JS = """
const root = document.querySelector('.rl-playground');
const box = (e) => e.getBoundingClientRect();
return {width: window.innerWidth, right: Math.max(...Array.from(root.querySelectorAll('*'))
          .filter(e => box(e).width > 0).map(e => box(e).right)),
        controls: Array.from(root.querySelectorAll('select, input, button')).map(e => box(e).height),
        canvases: Array.from(root.querySelectorAll('canvas')).filter(c => !c.hidden)
          .map(c => [box(c).width, box(c).height])};
"""


@pytest.mark.browser
def test_works_at_phone_width_with_touch(chrome, pages):
    metrics = {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    chrome.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    try:
        _open(chrome, pages["top"])
        _set(chrome, depth=6)
        layout = chrome.execute_script(LAYOUT_JS)
        assert layout["right"] <= layout["width"] + 1, layout
        assert min(layout["controls"]) >= 32, layout
        assert all(w > 100 and h > 100 for w, h in layout["canvases"]), layout
        button = chrome.execute_script(
            "const b = document.querySelector('[data-action=start]').getBoundingClientRect();"
            "return [b.x + b.width / 2, b.y + b.height / 2];"
        )
        point = [{"x": button[0], "y": button[1]}]
        chrome.execute_cdp_cmd(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point}
        )
        chrome.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        deadline = time.monotonic() + 30
        script = "return document.querySelector('.rl-playground').playground.step;"
        while chrome.execute_script(script) < 5:
            assert time.monotonic() < deadline, "a tap on Start did not start training"
            time.sleep(0.2)
        chrome.execute_script("document.querySelector('.rl-playground').playground.pause();")
        assert not _errors(chrome)
    finally:
        chrome.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
        chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# --- The measurement ----------------------------------------------------------------------

TIME_JS = """
const [config, steps, done] = arguments;
const P = ResnetPlaygroundNet;
const net = new P.Net(config);
const batches = new P.Batches(P.twoSpirals(512, 1), 128, 1);
const step = () => { const b = batches.next(); net.step(b); tf.dispose([b.x, b.y]); };
for (let i = 0; i < 10; i++) step();  // warm-up
const start = performance.now();
for (let i = 0; i < steps; i++) step();
const ms = (performance.now() - start) / steps;
net.dispose();
done(ms);
"""


def _process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (Linux /proc; 0 elsewhere)."""
    if not Path("/proc").exists():
        return 0.0
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total


@pytest.mark.browser
def test_record_step_time_and_page_weight(chrome, pages):
    """One training step (depth 32, batch 128) as wall time in the page and as CPU time of
    the browser's processes (CPU time is what one free core would take, when the machine
    is shared); written to the artefact, not asserted: a speed goal is a measurement."""
    _open(chrome, pages["top"])
    steps, pid = 40, chrome.service.process.pid
    timings = {}
    for norm in ("batchnorm", "none"):
        for skip in (True, False):
            config = {"depth": 32, "skip": skip, "norm": norm, "init": "he", "seed": 1}
            cpu = _process_tree_cpu_seconds(pid)
            wall_ms = chrome.execute_async_script(TIME_JS, config, steps)
            cpu_ms = (_process_tree_cpu_seconds(pid) - cpu) * 1000 / (steps + 10)
            name = (
                f"{'residual' if skip else 'plain'}, BatchNorm {'on' if norm != 'none' else 'off'}"
            )
            timings[name] = {"wall_ms": round(wall_ms, 2), "cpu_ms": round(cpu_ms, 2)}
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    assets = {name: (PLAYGROUND / name).stat().st_size for name in ASSETS}
    record = {
        "what": "one training step of the playground's network, depth 32, batch 128 "
        "(forward, backward, SGD update), TensorFlow.js CPU backend, headless Chromium",
        "ms_per_step": timings,
        "target_ms": 20,
        "steps_timed": steps,
        "page_bytes": {"files": assets, "total": sum(assets.values()), "limit": MAX_PAGE_BYTES},
        "browser": version.strip(),
        "tfjs": vendor_tfjs.VERSION,
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "made": datetime.now(UTC).isoformat(timespec="seconds"),
        "how": "pytest -m browser tests/test_playground.py -k record",
    }
    ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTEFACT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["ms_per_step"], indent=2))
    assert all(t["wall_ms"] > 0 for t in timings.values())
    assert not _errors(chrome)


def _cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else platform.processor()
