"""Live widgets, driven programmatically: redraw on change, one training run at a time, Stop."""

from __future__ import annotations

import threading

import ipywidgets as widgets
import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from resnet_lab.book import widgets as rw  # noqa: E402


def _figure(**values):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, values.get("depth", 1)])
    return fig


def test_live_plot_builds_controls_and_redraws_on_change():
    plt.close("all")  # figures other tests left open are not this widget's
    calls = []

    def fn(**values):
        calls.append(values)
        return _figure(**values)

    box = rw.live_plot(fn, depth=[20, 56, 110], act=("relu", "tanh"), width=range(8, 65, 8))
    assert isinstance(box, widgets.VBox)
    assert isinstance(box.controls["depth"], widgets.Dropdown)
    assert isinstance(box.controls["width"], widgets.IntSlider)
    assert (box.controls["width"].min, box.controls["width"].max) == (8, 64)
    assert calls == [{"depth": 20, "act": "relu", "width": 8}]  # drawn once at creation
    box.controls["depth"].value = 56
    box.controls["act"].value = "tanh"
    assert calls[1:] == [
        {"depth": 56, "act": "relu", "width": 8},
        {"depth": 56, "act": "tanh", "width": 8},
    ]
    # Figures are closed after display, so callbacks do not pile up open figures.
    assert plt.get_fignums() == []


def _curves(depth):
    from resnet_lab.book.explorer import Explorer

    return Explorer.single(
        {f"depth {depth}": ([1, 2], [1, depth])}, title="t", xlabel="x", ylabel="y (%)"
    )


def test_live_plot_shows_plotly_figures_inside_its_output(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    box = rw.live_plot(_curves, depth=[20, 56])
    box.controls["depth"].value = 56
    figures = [obj._repr_mimebundle_() for obj in shown]
    assert len(figures) == 2
    # The Plotly figure a JupyterLab reader sees, redrawn with the new value.
    last = figures[-1]["application/vnd.plotly.v1+json"]
    assert last["data"][0]["name"] == "depth 56" and last["data"][0]["y"] == [1, 56]


def test_live_plot_static_is_what_the_book_shows():
    explorer = _curves(20)
    box = rw.live_plot(_curves, static=explorer, depth=[20, 56])
    bundle = box._repr_mimebundle_()
    # Jupyter and Colab render the live widget; the book (no kernel) renders the HTML.
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == explorer._repr_html_()
    plain = rw.live_plot(_curves, depth=[20, 56])._repr_mimebundle_()
    assert "text/html" not in plain
    with pytest.raises(ValueError, match="static must have an HTML form"):
        rw.live_plot(_curves, static=object(), depth=[20])


def test_live_plot_accepts_widgets_and_checks_specs():
    slider = widgets.FloatSlider(value=0.5, min=0, max=1)
    seen = []
    box = rw.live_plot(lambda **v: seen.append(v) or _figure(), lr=slider, bn=True)
    assert box.controls["lr"] is slider and slider.description == "lr"
    assert isinstance(box.controls["bn"], widgets.Checkbox)
    slider.value = 0.25
    assert seen[-1] == {"lr": 0.25, "bn": True}
    with pytest.raises(ValueError, match="control 'depth'"):
        rw.live_plot(_figure, depth=[])
    with pytest.raises(ValueError, match="at least one control"):
        rw.live_plot(_figure)


class _Stop(Exception):
    pass


@pytest.fixture
def stop_exception(monkeypatch):
    """The panel's stop exception (the engine's StopTraining), patched for engine-free tests."""
    monkeypatch.setattr(rw, "_stop_training", lambda: _Stop)
    return _Stop


def _fake_train(calls, epochs=3, gate=None):
    def train(depth, kind, callback):
        calls.append((depth, kind))
        for epoch in range(1, epochs + 1):
            if gate is not None:
                gate.wait(5)
            callback("step", None, {"step": epoch})
            callback(
                "epoch",
                None,
                {"epoch": epoch, "train_error": 0.5 / epoch, "test_error": 0.6 / epoch},
            )
        callback("end", None, {})

    return train


def test_train_panel_runs_the_chosen_network_and_plots(stop_exception):
    calls = []
    panel = rw.TrainPanel(_fake_train(calls), depths=(20, 56), background=False)
    panel.depth.value = 56
    panel.kind.value = "residual"
    panel.start.click()
    assert calls == [(56, "residual")]
    assert [r["epoch"] for r in panel.histories["residual-56"]] == [1, 2, 3]
    assert panel.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "finished" in panel.status.value
    assert not panel.start.disabled and panel.stop.disabled  # ready for the next run


def test_train_panel_curves_name_the_data_they_come_from(stop_exception):
    class FakeRun:
        variant = "synthetic"

    def train(depth, kind, callback):
        callback("epoch", FakeRun(), {"epoch": 1, "train_error": 0.5, "test_error": 0.6})

    panel = rw.TrainPanel(train, background=False)
    panel.start.click()
    assert panel.variants == {"plain-20": "synthetic"}
    assert len(panel.histories["plain-20"]) == 1


def test_train_panel_never_runs_twice_and_stop_stops(stop_exception):
    calls = []
    gate = threading.Event()
    panel = rw.TrainPanel(_fake_train(calls, epochs=50, gate=gate), background=True)
    panel.start.click()
    assert panel.running and panel.start.disabled and not panel.stop.disabled
    panel.start.click()  # a second Start while training is ignored
    panel._on_start()
    panel.stop.click()
    gate.set()  # the run goes on only now, and sees the Stop at its first callback
    panel.join(timeout=10)
    assert not panel.running
    assert calls == [(20, "plain")]
    assert panel.histories["plain-20"] == []
    assert "stopped" in panel.status.value and panel.error is None
    assert not panel.start.disabled and panel.stop.disabled


def test_train_panel_reports_errors(stop_exception):
    def broken(depth, kind, callback):
        raise RuntimeError("out of memory")

    panel = rw.TrainPanel(broken, background=False)
    panel.start.click()
    assert isinstance(panel.error, RuntimeError)
    assert "out of memory" in panel.status.value and not panel.start.disabled


def test_stop_uses_the_engines_stop_training():
    from resnet_lab.engine import StopTraining

    assert rw._stop_training() is StopTraining
