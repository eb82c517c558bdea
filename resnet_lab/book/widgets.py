"""Live ipywidgets controls for readers who run the notebooks (Jupyter, Colab, VS Code).

Only APIs present in both ipywidgets 7.7 (Colab) and 8.1 are used. Plots are drawn
explicitly inside the widgets (``with out:`` + ``display(fig)``), because figures made
in a widget callback are never shown by the inline backend on its own. A plot function
may return a matplotlib Figure, a Plotly figure or a :class:`resnet_lab.book.explorer.Explorer`
(the same interactive figure the book shows).

In the HTML book there is no kernel. ``live_plot(fn, static=explorer, ...)`` makes one
output for both readers: the live controls where a kernel runs, the kernel-free
explorer's HTML in the book (``_config.yml`` lets the book prefer HTML over a widget).
"""

from __future__ import annotations

import io
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    import ipywidgets as widgets
except ModuleNotFoundError as missing:  # an optional extra: training never needs it
    raise ModuleNotFoundError(
        "resnet_lab.book.widgets needs ipywidgets, part of the book's extra: "
        'pip install "resnet-lab[book]"',
        name=missing.name,
    ) from None

__all__ = ["LivePlot", "TrainPanel", "live_plot"]


def _control(name: str, spec: Any) -> widgets.ValueWidget:
    """A widget from a widget, a ``range`` (slider), a list/tuple (drop-down) or a bool."""
    if isinstance(spec, widgets.ValueWidget):
        if not getattr(spec, "description", None):
            spec.description = name
        return spec
    if isinstance(spec, bool):
        return widgets.Checkbox(value=spec, description=name)
    if isinstance(spec, range):
        if len(spec) == 0:
            raise ValueError(f"control {name!r}: the range {spec!r} is empty")
        return widgets.IntSlider(
            value=spec.start,
            min=spec.start,
            max=spec[-1],
            step=spec.step,
            description=name,
            continuous_update=False,  # redraw when the slider is released, not per pixel
        )
    if isinstance(spec, (list, tuple)) and spec:
        return widgets.Dropdown(options=list(spec), value=spec[0], description=name)
    raise ValueError(
        f"control {name!r}: give a widget, a range (slider), a non-empty list (drop-down) "
        f"or a bool (checkbox), not {spec!r}"
    )


def _show(fig: Any) -> None:
    """Display a figure (or draw pyplot's current one) and close it so it is shown once.

    Plotly figures and explorers display as themselves (their own mimetypes); matplotlib
    figures are closed after display so that the inline backend does not show them twice.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    if fig is None:
        plt.show()
        return
    display(fig)
    if hasattr(fig, "savefig"):
        plt.close(fig)


class LivePlot(widgets.VBox):
    """Controls above a plot that ``fn(**values)`` redraws whenever a control changes.

    Built by :func:`live_plot`. ``controls`` maps names to widgets, ``output`` is the
    :class:`ipywidgets.Output` the figure is shown in, ``values`` the current choice.
    """

    def __init__(
        self, fn: Callable[..., Any], controls: Mapping[str, Any], static: Any = None
    ) -> None:
        if not controls:
            raise ValueError("live_plot needs at least one control, e.g. depth=[20, 56, 110]")
        if static is not None and not hasattr(static, "_repr_html_"):
            raise ValueError(
                "static must have an HTML form for the book, e.g. a resnet_lab.book.explorer.Explorer"
            )
        self.fn = fn
        self.static = static
        self.controls = {name: _control(name, spec) for name, spec in controls.items()}
        self.output = widgets.Output()
        super().__init__(children=[widgets.HBox(list(self.controls.values())), self.output])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, change: Mapping[str, Any]) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        # ipywidgets 8 displays widgets through this; 7.7 uses _ipython_display_ and
        # never gets here, which only matters for the book (built with ipywidgets 8).
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.static is not None and bundle is not None:
            bundle = dict(bundle)
            bundle["text/html"] = self.static._repr_html_()
        return bundle

    def redraw(self) -> None:
        """Call ``fn`` with the current values and show its figure in ``output``."""
        from IPython.display import clear_output

        # Errors inside `with out:` are shown in the output area, not lost in the kernel log.
        with self.output:
            clear_output(wait=True)
            _show(self.fn(**self.values))


def live_plot(fn: Callable[..., Any], static: Any = None, **controls: Any) -> LivePlot:
    """Drop-downs/sliders that redraw ``fn(**values)`` on every change.

    ``fn`` returns a matplotlib Figure, a Plotly figure or an
    :class:`~resnet_lab.book.explorer.Explorer`. Each keyword is a control: a widget, a list
    (drop-down), a ``range`` (integer slider) or a bool (checkbox). ``static``, e.g. an
    Explorer of precomputed settings, is what the HTML book shows in place of the live
    controls, so that one cell serves both readers. Example::

        live_plot(lambda depth, act: plot_grad_norms(depth, act),
                  depth=[5, 10, 20, 50], act=["relu", "tanh", "sigmoid"])
    """
    return LivePlot(fn, controls, static=static)


def _stop_training() -> type[BaseException]:
    # The engine defines the exception its train() catches to stop cleanly; imported
    # lazily so that this module does not pull in the training stack.
    from resnet_lab.engine import StopTraining

    return StopTraining


def _plot_histories(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    variants: Mapping[str, str] | None = None,
) -> Any:
    """Test error (solid) and training error (dashed) per epoch for every run so far."""
    from matplotlib.figure import Figure

    # matplotlib.figure.Figure (not pyplot): safe to draw from the training thread.
    fig = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = [r["epoch"] for r in history]
        if history and "test_error" in history[0]:
            on = f" ({variants[name]})" if variants and name in variants else ""
            ax.plot(epochs, [100 * r["test_error"] for r in history], color=color, label=name + on)
        if history and "train_error" in history[0]:
            ax.plot(epochs, [100 * r["train_error"] for r in history], color=color, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)  (solid: test, dashed: train)")
    ax.grid(alpha=0.3)
    if histories:
        ax.legend(loc="upper right", fontsize="small")
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


class TrainPanel(widgets.VBox):
    """Train one network at a time from a panel: depth, plain/residual, Start and Stop.

    ``train_fn(depth, kind, callback)`` trains one network; it must pass ``callback``
    to :func:`resnet_lab.engine.train` (``callbacks=[callback]``) or call it as
    ``callback(event, run, record)`` itself after every step and epoch. The callback
    records each epoch's record, redraws the curves, and raises
    :class:`resnet_lab.engine.StopTraining` once Stop was clicked.

    Training runs in a background thread (``background=True``): a widget click is
    handled by the kernel only after the previous handler returns, so training inside
    the Start handler would make the Stop button unreachable. Start is disabled while
    a run is going, and a second Start is ignored, so runs never overlap. Finished
    runs stay on the plot, to compare plain and residual networks of each depth.
    """

    def __init__(
        self,
        train_fn: Callable[[int, str, Callable[..., None]], Any],
        depths: Sequence[int] = (20, 32, 44, 56, 110),
        kinds: Sequence[str] = ("plain", "residual"),
        plot_fn: Callable[[Mapping[str, Sequence[Mapping[str, float]]]], Any] | None = None,
        background: bool = True,
    ) -> None:
        if not depths or not kinds:
            raise ValueError("TrainPanel needs at least one depth and one kind of network")
        self.train_fn = train_fn
        self.plot_fn = plot_fn or (lambda histories: _plot_histories(histories, self.variants))
        self.background = background
        self.histories: dict[str, list[dict]] = {}
        self.variants: dict[str, str] = {}  # run name -> data variant, once training reports it
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.depth = widgets.Dropdown(options=list(depths), value=depths[0], description="depth")
        self.kind = widgets.ToggleButtons(options=list(kinds), value=kinds[0])
        self.start = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.status = widgets.HTML(value="Choose a depth and a network, then press Start.")
        self.plot = widgets.Image(format="png")
        self.start.on_click(self._on_start)
        self.stop.on_click(self._on_stop)
        super().__init__(
            children=[
                widgets.HBox([self.depth, self.kind]),
                widgets.HBox([self.start, self.stop, self.status]),
                self.plot,
            ]
        )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_start(self, _button: Any = None) -> None:
        # Button.click() runs handlers even on a disabled button: guard here too.
        with self._lock:
            if self.start.disabled or self.running:
                return
            self._set_running(True)
        depth, kind = self.depth.value, self.kind.value
        self._stop.clear()
        self.error = None
        name = f"{kind}-{depth}"
        self.histories[name] = []
        self.status.value = f"training {name} ..."
        if self.background:
            self._thread = threading.Thread(target=self._run, args=(depth, kind, name), daemon=True)
            self._thread.start()
        else:
            self._run(depth, kind, name)

    def _on_stop(self, _button: Any = None) -> None:
        self._stop.set()
        self.status.value = "stopping after the current step ..."

    def _set_running(self, running: bool) -> None:
        self.start.disabled = running
        self.stop.disabled = not running
        self.depth.disabled = running
        self.kind.disabled = running

    def _callback(self, name: str) -> Callable[..., None]:
        stop_training = _stop_training()

        def callback(event: str, run: Any = None, record: Mapping[str, Any] | None = None) -> None:
            if getattr(run, "variant", None):  # say what data made the curves (e.g. synthetic)
                self.variants[name] = run.variant
            if event == "epoch" and record is not None:
                self.histories[name].append(dict(record))
                self.redraw()
                epoch = record.get("epoch", len(self.histories[name]))
                error = record.get("test_error")
                detail = f", test error {100 * error:.1f}%" if error is not None else ""
                on = f" on {self.variants[name]}" if name in self.variants else ""
                self.status.value = f"training {name}{on}: epoch {epoch}{detail}"
            if self._stop.is_set():
                raise stop_training(f"stopped by the reader ({name})")

        return callback

    def _run(self, depth: int, kind: str, name: str) -> None:
        stop_training = _stop_training()
        try:
            self.train_fn(depth, kind, self._callback(name))
            stopped = self._stop.is_set()
            self.status.value = f"{name}: {'stopped' if stopped else 'finished'}"
        except stop_training:
            self.status.value = f"{name}: stopped"
        except Exception as error:  # shown in the panel: a thread's exception is otherwise lost
            self.error = error
            self.status.value = f"{name} failed: {type(error).__name__}: {error}"
            traceback.print_exc()
        finally:
            self._set_running(False)

    def redraw(self) -> None:
        """Redraw the curves of every run so far into the panel's image."""
        self.plot.value = _png(self.plot_fn(self.histories))

    def join(self, timeout: float | None = None) -> None:
        """Wait for the current run to end (scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
