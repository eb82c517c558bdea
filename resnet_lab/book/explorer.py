"""Kernel-free explorers: precomputed curves a reader can vary in the static HTML book.

Most readers never start a kernel, yet they should still be able to change the depth
of a network and watch its curves change. An :class:`Explorer` holds every precomputed
combination of a few controls (say depth x plain/residual) and shows them as one
`Plotly <https://plotly.com/python/>`_ figure: the values of one control are drawn
together (toggle them from the legend), the other controls are drop-down lists, hover
shows every value with its unit, and the axes refit to what is shown.

One output works everywhere:

- the HTML book: a ``text/html`` fragment that draws with the page's plotly.js (shipped
  once with the site by ``tools/plotly_static.py``, never from a CDN, never inlined per
  figure), with a drop-down row for the controls;
- JupyterLab, VS Code: the ``application/vnd.plotly.v1+json`` mimetype, with the
  controls as a Plotly drop-down menu;
- Colab (which renders ``text/html`` only): the same fragment, loading plotly.js itself;
- wherever scripts do not run (GitHub's viewer, an untrusted notebook): a static
  picture of the default choice.

Example::

    from resnet_lab.book.explorer import Explorer

    data = {
        (str(d), kind): {"test error": (epochs, errors[d, kind])}
        for d in (20, 56) for kind in ("plain", "residual")
    }
    Explorer(data, {"depth": ["20", "56"], "network": ["plain", "residual"]},
             title="CIFAR-10 test error", xlabel="epoch", ylabel="test error (%)")
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_lab.book.explorer_html import CSS, SCRIPT, colab_plotlyjs, standalone_page

__all__ = ["Explorer", "Series"]

# Colour-blind-safe palette (Okabe-Ito, then a few extras); readable on light and dark pages.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#7F7F7F",
    "#B8860B",
    "#8C564B",
    "#9467BD",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
REFERENCE_COLOR = "#555555"
SEPARATOR = "|"
AUTO = "auto"
# Font sizes in px (plotly does not scale text down on a phone). A log axis draws its
# 2 and 5 labels at 3/4 of the tick size: 14 px keeps them above 10 px.
FONT_SIZE, TICK_SIZE, LOG_TICK_SIZE = 14, 12, 14
HEIGHT = 460


@dataclass(frozen=True)
class Series:
    """One curve: ``xs``, ``ys`` and optionally a band (``low``, ``high``), colour, dash.

    A band (e.g. the spread over seeds) is drawn shaded behind the curve and toggles with
    it from the legend. ``color`` and ``dash`` fix the style; by default the explorer
    picks a colour that stays the same for the series across every setting.
    """

    xs: Sequence[float]
    ys: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    color: str | None = None
    dash: str | None = None


Curve = tuple[Sequence[float], Sequence[float]] | Series


def _round(value: float | None) -> float | None:
    """4 significant digits keep the page small; NaN and inf become gaps (JSON null)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


def _key(value: str | Sequence[object], names: Sequence[str]) -> str:
    """The canonical key of a combination: control values joined with '|'."""
    parts = value.split(SEPARATOR) if isinstance(value, str) else [str(v) for v in value]
    if len(parts) != len(names):
        raise ValueError(
            f"key {value!r} has {len(parts)} value(s) but there are {len(names)} controls "
            f"({', '.join(names)}); give one value per control, in that order"
        )
    return SEPARATOR.join(parts)


def _series(label: str, curve: Curve) -> Series:
    if not isinstance(curve, Series):
        curve = Series(*curve)
    xs, ys = [_round(x) for x in curve.xs], [_round(y) for y in curve.ys]
    if len(xs) != len(ys):
        raise ValueError(f"curve {label!r} has {len(xs)} x values but {len(ys)} y values")
    band = None, None
    if (curve.low is None) != (curve.high is None):
        raise ValueError(f"curve {label!r}: give both low and high for a band, or neither")
    if curve.low is not None and curve.high is not None:
        band = [_round(v) for v in curve.low], [_round(v) for v in curve.high]
        if not len(band[0]) == len(band[1]) == len(xs):
            raise ValueError(f"curve {label!r}: low and high need one value per x ({len(xs)})")
    return Series(xs, ys, band[0], band[1], curve.color, curve.dash)


def _unit_free(label: str) -> str:
    return label.split(" (")[0] if label.endswith(")") else label


class Explorer:
    """Precomputed curves behind a few controls, one Plotly figure without a kernel.

    Args:
        data: maps a combination of control values to the curves to show for it,
            ``{label: (xs, ys)}`` or ``{label: Series(...)}``. A combination is a tuple
            of values in the order of ``controls`` (or the values joined with ``'|'``).
            Combinations that are absent show ``missing_text`` and the chosen values.
        controls: ordered ``{name: [value, ...]}``.
        title: shown above the chart.
        xlabel: x-axis label, with units (``"epoch"``, ``"depth (layers)"``).
        ylabel: y-axis label, with units (``"test error (%)"``); hover repeats both.
        logy, xlog: logarithmic axes (gradient norms span many decades).
        ylim: fixed ``(low, high)`` y range; by default the axes fit what is shown.
        caption: a sentence under the chart.
        reference: curves drawn dashed in grey in every setting, e.g. the paper's numbers.
        default: the setting shown first (tuple, ``'|'``-joined string or
            ``{name: value}``); by default the first entry of ``data``.
        markers: a dot at every point; by default only for curves of at most 20 points.
        missing_text: what a setting without data says.
        overlay: the control whose values are drawn together on the plot, one colour
            each (the other curves of a setting differ by dash); ``None`` draws one
            setting at a time, one colour per curve. ``"auto"``: the first control when
            every setting has at most two curves, else ``None``.
        static: embed a picture of the default setting for pages that run no scripts.
    """

    def __init__(
        self,
        data: Mapping[str | tuple, Mapping[str, Curve]],
        controls: Mapping[str, Sequence[object]],
        title: str,
        xlabel: str,
        ylabel: str,
        logy: bool = False,
        xlog: bool = False,
        ylim: tuple[float, float] | None = None,
        caption: str | None = None,
        reference: Mapping[str, Curve] | None = None,
        default: str | tuple | Mapping[str, object] | None = None,
        markers: bool | None = None,
        missing_text: str = "not computed for",
        overlay: str | None = AUTO,
        static: bool = True,
    ) -> None:
        if not controls:
            raise ValueError("an Explorer needs at least one control, e.g. {'depth': ['20', '56']}")
        if not data:
            raise ValueError("an Explorer needs data for at least one combination of controls")
        self.controls = {str(name): [str(v) for v in values] for name, values in controls.items()}
        names = list(self.controls)
        for name, values in self.controls.items():
            if not values:
                raise ValueError(f"control {name!r} has no values; list the values it can take")
            if any(SEPARATOR in v for v in values):
                raise ValueError(f"values of control {name!r} must not contain {SEPARATOR!r}")
        self.data: dict[str, dict[str, Series]] = {}
        for raw_key, curves in data.items():
            key = _key(raw_key, names)
            for name, value in zip(names, key.split(SEPARATOR), strict=True):
                if value not in self.controls[name]:
                    raise ValueError(
                        f"data key {raw_key!r}: {value!r} is not a value of control {name!r} "
                        f"(values: {', '.join(self.controls[name])})"
                    )
            self.data[key] = {str(label): _series(label, c) for label, c in curves.items()}
        self.reference = {str(k): _series(k, c) for k, c in (reference or {}).items()}
        if isinstance(default, Mapping):
            default = tuple(default[name] for name in names)
        self.default = _key(default, names) if default is not None else next(iter(self.data))
        if self.default not in self.data:
            raise ValueError(f"default {default!r} is not one of the combinations in data")
        if overlay == AUTO:
            most = max(len(curves) for curves in self.data.values())
            overlay = names[0] if most <= 2 and len(self.controls[names[0]]) > 1 else None
        if overlay is not None and overlay not in self.controls:
            raise ValueError(f"overlay {overlay!r} is not a control ({', '.join(names)})")
        self.overlay = overlay
        self.title, self.xlabel, self.ylabel, self.caption = title, xlabel, ylabel, caption
        self.logy, self.xlog = bool(logy), bool(xlog)
        if ylim is not None and logy and float(ylim[0]) <= 0:
            raise ValueError(f"ylim {ylim!r} must be positive with logy=True")
        self.ylim = ylim
        longest = max(
            (
                len(s.xs)
                for curves in (*self.data.values(), self.reference)
                for s in curves.values()
            ),
            default=0,
        )
        self.markers = longest <= 20 if markers is None else bool(markers)
        self.missing_text = str(missing_text)
        self.static = bool(static)

    @classmethod
    def single(cls, curves: Mapping[str, Curve], **kwargs: Any) -> Explorer:
        """One setting, no controls: ``curves`` as one Plotly figure (e.g. for a live widget).

        ``kwargs`` are those of the constructor (``title``, ``xlabel``, ``ylabel``, ...).
        """
        return cls({("",): curves}, {"": [""]}, overlay=None, **kwargs)

    # -- settings ---------------------------------------------------------------------------

    @property
    def dropdowns(self) -> list[str]:
        """The controls offered as drop-down lists: all but the overlaid and fixed ones."""
        return [n for n, v in self.controls.items() if n != self.overlay and len(v) > 1]

    def _setting(self, key: str) -> str:
        """The drop-down values of a combination, joined with '|' ('' without drop-downs)."""
        parts = dict(zip(self.controls, key.split(SEPARATOR), strict=True))
        return SEPARATOR.join(parts[name] for name in self.dropdowns)

    def settings(self) -> list[str]:
        """Every drop-down setting that has data, in the order of the controls."""
        found = {self._setting(key) for key in self.data}
        ordered = [
            SEPARATOR.join(combo)
            for combo in itertools.product(*(self.controls[name] for name in self.dropdowns))
        ]
        return [s for s in ordered if s in found]

    def _describe(self, setting: str) -> str:
        values = setting.split(SEPARATOR) if self.dropdowns else []
        return ", ".join(f"{name} {v}" for name, v in zip(self.dropdowns, values, strict=True))

    # -- the figure -------------------------------------------------------------------------

    def _traces(self) -> list[dict]:
        """Every curve of every combination as a Plotly trace; ``meta`` is its setting."""
        default = self._setting(self.default)
        overlay_at = list(self.controls).index(self.overlay) if self.overlay else None
        shared_label = len({label for c in self.data.values() for label in c}) == 1
        traces: list[dict] = []
        for key, curves in self.data.items():
            parts = key.split(SEPARATOR)
            setting = self._setting(key)
            for slot, (label, s) in enumerate(curves.items()):
                if overlay_at is not None:
                    value = parts[overlay_at]
                    color = PALETTE[self.controls[self.overlay].index(value) % len(PALETTE)]
                    dash = DASHES[slot % len(DASHES)]
                    if len(curves) > 1:
                        name = f"{label}, {self.overlay} {value}"
                    else:
                        name = f"{self.overlay} {value}" if shared_label else label
                else:
                    color, dash, name = PALETTE[slot % len(PALETTE)], "solid", label
                color, dash = s.color or color, s.dash or dash
                traces += self._curve_traces(name, s, color, dash, setting, setting == default)
        for label, s in self.reference.items():
            traces += self._curve_traces(label, s, REFERENCE_COLOR, "dash", None, True)
        return traces

    def _curve_traces(
        self, name: str, s: Series, color: str, dash: str, setting: str | None, visible: bool
    ) -> list[dict]:
        group = f"{setting}/{name}"
        hover = (
            f"<b>{html.escape(name)}</b><br>{html.escape(self.xlabel)}: %{{x:.4~g}}<br>"
            f"{html.escape(self.ylabel)}: %{{y:.4~g}}<extra></extra>"
        )
        line = {
            "type": "scatter",
            "name": name,
            "x": list(s.xs),
            "y": list(s.ys),
            "mode": "lines+markers" if self.markers and setting is not None else "lines",
            "line": {"color": color, "dash": dash, "width": 2.5},
            "marker": {"size": 6, "color": color},
            "legendgroup": group,
            "hovertemplate": hover,
            "visible": visible,
            "meta": setting,
        }
        if s.low is None or s.high is None:
            return [line]
        band = {
            "type": "scatter",
            "name": f"{name} (spread)",
            "x": list(s.xs) + list(reversed(s.xs)),
            "y": list(s.high) + list(reversed(s.low)),
            "fill": "toself",
            "fillcolor": _rgba(color, 0.18),
            "line": {"width": 0, "color": color},
            "mode": "lines",
            "hoverinfo": "skip",
            "showlegend": False,
            "legendgroup": group,
            "visible": visible,
            "meta": setting,
        }
        return [band, line]

    def _axis(self, label: str, log: bool) -> dict:
        return {
            "title": {"text": label, "font": {"size": FONT_SIZE}},
            "type": "log" if log else "linear",
            "autorange": True,
            "tickfont": {"size": LOG_TICK_SIZE if log else TICK_SIZE},
            "exponentformat": "power",
            "gridcolor": "rgba(127,127,127,0.25)",
            "zeroline": False,
            "automargin": True,
            "showline": True,
            "linecolor": "rgba(80,80,80,0.7)",
        }

    def _layout(self, with_title: bool) -> dict:
        yaxis = self._axis(self.ylabel, self.logy)
        if self.ylim is not None:
            lo, hi = (float(v) for v in self.ylim)
            yaxis["autorange"] = False
            yaxis["range"] = [math.log10(lo), math.log10(hi)] if self.logy else [lo, hi]
        missing = {
            "text": "",
            "visible": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "showarrow": False,
            "font": {"size": FONT_SIZE},
        }
        layout = {
            "xaxis": self._axis(self.xlabel, self.xlog),
            "yaxis": yaxis,
            "height": HEIGHT,
            "autosize": True,
            "margin": {"l": 8, "r": 8, "t": 12, "b": 8},
            "font": {"size": FONT_SIZE, "family": "system-ui, -apple-system, sans-serif"},
            # Below the plot, in the figure's bottom margin (which grows to fit it).
            "legend": {
                "orientation": "h",
                "x": 0,
                "xref": "container",
                "y": 0,
                "yref": "container",
                "yanchor": "bottom",
                "font": {"size": 13},
            },
            "hovermode": "closest",
            "hoverlabel": {"font": {"size": 13}},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "annotations": [missing],
        }
        if with_title:
            layout["title"] = {"text": html.escape(self.title), "x": 0, "xanchor": "left"}
            layout["margin"]["t"] = 56
        return layout

    def _visible(self, traces: list[dict], setting: str) -> list[bool]:
        return [t["meta"] is None or t["meta"] == setting for t in traces]

    def _menus(self, traces: list[dict]) -> list[dict]:
        """One Plotly drop-down over every setting (for frontends that show the mimetype)."""
        if not self.dropdowns:
            return []
        settings = self.settings()
        buttons = [
            {
                "label": self._describe(s),
                "method": "update",
                "args": [
                    {"visible": self._visible(traces, s)},
                    {"xaxis.autorange": True, "yaxis.autorange": self.ylim is None},
                ],
            }
            for s in settings
        ]
        return [
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": settings.index(self._setting(self.default)),
                "x": 0,
                "xanchor": "left",
                "y": 1.0,
                "yanchor": "bottom",
                "pad": {"t": 4, "b": 4},
                "font": {"size": 13},
            }
        ]

    def to_dict(self, menus: bool = True, title: bool = True) -> dict:
        """The Plotly figure as a dict (``data``, ``layout``, ``config``)."""
        traces = self._traces()
        layout = self._layout(with_title=title)
        if menus and self.dropdowns:
            layout["updatemenus"] = self._menus(traces)
            layout["margin"]["t"] += 40
        # No links to Plotly's cloud services (they need the network and an account).
        config = {
            "responsive": True,
            "displaylogo": False,
            "showLink": False,
            "showSendToCloud": False,
            "showEditInChartStudio": False,
            "modeBarButtonsToRemove": [
                "lasso2d",
                "select2d",
                "sendChartToCloud",
                "sendDataToCloud",
            ],
        }
        return {"data": traces, "layout": layout, "config": config}

    def figure(self) -> Any:
        """A :class:`plotly.graph_objects.Figure` (drop-downs as a Plotly menu)."""
        import plotly.graph_objects as go

        spec = self.to_dict()
        fig = go.Figure(data=spec["data"], layout=spec["layout"])
        fig._config = spec["config"]  # plotly keeps config apart; shown by fig.show()
        return fig

    # -- rendering --------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Deterministic DOM id: the same explorer renders to the same HTML in every run."""
        payload = json.dumps(
            [self.to_dict(), self.controls, self.title, self.caption, self.default],
            sort_keys=True,
        )
        return "rl-explorer-" + hashlib.sha1(payload.encode()).hexdigest()[:12]

    def _controls_html(self) -> str:
        chosen = dict(zip(self.controls, self.default.split(SEPARATOR), strict=True))
        parts = []
        for name in self.dropdowns:
            options = "".join(
                f'<option value="{html.escape(v)}"{" selected" if v == chosen[name] else ""}>'
                f"{html.escape(v)}</option>"
                for v in self.controls[name]
            )
            parts.append(
                f'<label>{html.escape(name)} <select data-control="{html.escape(name)}">'
                f"{options}</select></label>"
            )
        return "".join(parts)

    def to_html(self, plotlyjs: str | None = None) -> str:
        """The HTML fragment the book shows: controls, the figure, a static fallback.

        It draws with the page's ``window.Plotly``; ``plotlyjs`` is HTML put before it
        where the page has none (a ``<script>`` tag for Colab or a standalone page).
        """
        uid = self.id
        spec = self.to_dict(menus=False, title=False)
        spec["settings"] = self.settings()
        spec["describe"] = {s: self._describe(s) for s in spec["settings"]}
        spec["missing"] = self.missing_text
        spec["fixedy"] = self.ylim is not None
        payload = json.dumps(spec, separators=(",", ":"), allow_nan=False)
        payload = payload.replace("</", "<\\/")  # a string in the data must not close <script>
        caption = (
            f'<div class="rl-caption">{html.escape(self.caption)}</div>' if self.caption else ""
        )
        fallback = ""
        if self.static:
            fallback = (
                f'<img data-fallback="" alt="{html.escape(self.title)}: the default setting '
                f'(the interactive figure needs JavaScript)" src="data:image/png;base64,'
                f'{self._static_png()}">'
            )
        controls = self._controls_html()
        return (
            (plotlyjs or "") + f'<div class="rl-explorer" id="{uid}" data-explorer="{uid}">'
            f"<style>{CSS}</style>"
            f'<div class="rl-title">{html.escape(self.title)}</div>'
            + (f'<div class="rl-controls">{controls}</div>' if controls else "")
            + f'<div class="rl-plot" data-plot="">{fallback}</div>'
            f"{caption}"
            f'<script type="application/json" data-figure="">{payload}</script>'
            "</div>"
            f"<script>{SCRIPT.replace('__ID__', uid)}</script>"
        )

    def _repr_html_(self) -> str:
        return self.to_html(colab_plotlyjs())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """Plotly's mimetype for JupyterLab and VS Code, HTML for the book and Colab."""
        return {
            "application/vnd.plotly.v1+json": self.to_dict(),
            "text/html": self._repr_html_(),
            "text/plain": repr(self),
        }

    def __repr__(self) -> str:
        return (
            f"Explorer({self.title!r}, controls={list(self.controls)}, "
            f"{len(self.data)} combinations computed)"
        )

    def save_html(self, path: str | Path) -> Path:
        """Write a standalone HTML page with this explorer (opens in any browser, offline)."""
        from resnet_lab.io import atomic_write_text

        path = Path(path)
        atomic_write_text(path, standalone_page(self.title, self.to_html()))
        return path

    def _static_png(self) -> str:
        """The default setting drawn with matplotlib, base64 PNG (small: 72 dpi)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 3.8), dpi=72, layout="constrained")
        ax = fig.add_subplot()
        styles = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-.", "longdash": "--"}
        for t in self._traces():
            if not t["visible"] or t.get("fill"):
                continue
            xs = [math.nan if v is None else v for v in t["x"]]
            ys = [math.nan if v is None else v for v in t["y"]]
            style = styles.get(t["line"]["dash"], "-") + ("o" if "markers" in t["mode"] else "")
            ax.plot(xs, ys, style, color=t["line"]["color"], label=t["name"], ms=3)
        ax.set(xlabel=self.xlabel, ylabel=self.ylabel, title=self.title)
        ax.set_xscale("log" if self.xlog else "linear")
        ax.set_yscale("log" if self.logy else "linear")
        if self.ylim is not None:
            ax.set_ylim(*self.ylim)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return base64.b64encode(buffer.getvalue()).decode()


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
