"""Kernel-free explorers: precomputed curves a reader can vary in the static HTML book.

Most readers never start a kernel, yet they should still be able to change the depth
of a network and watch its training curves change. An :class:`Explorer` holds every
precomputed combination of a few controls (say depth x plain/residual) and renders
itself as one self-contained HTML fragment: inline CSS, an SVG line chart, a little
JavaScript and the data as JSON. Nothing is loaded from a network or a CDN, so the
same output works in JupyterLab, Colab, VS Code and the HTML book opened from disk.

The chart for the default choice is drawn in Python too, so the figure is there even
where scripts do not run (an untrusted notebook, GitHub's notebook viewer).

Example::

    from resnet_lab.explorer import Explorer

    data = {
        (str(d), kind): {"test error": (epochs, errors[d, kind])}
        for d in (20, 56) for kind in ("plain", "residual")
    }
    Explorer(data, {"depth": ["20", "56"], "network": ["plain", "residual"]},
             title="CIFAR-10 test error", xlabel="epoch", ylabel="test error (%)")
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["Explorer"]

Curve = tuple[Sequence[float], Sequence[float]]

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
REFERENCE_COLOR = "#7F7F7F"

# SVG geometry in user units; the chart scales to the width of the page.
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 14, 50
SEPARATOR = "|"

_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def _round(value: float) -> float | None:
    """4 significant digits keep the page small; NaN and inf become gaps (JSON null)."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude * (1 + 1e-9):
            return m * magnitude
    return 10 * magnitude


def _linear_axis(lo: float, hi: float, fixed: bool) -> tuple[float, float, list[float], int]:
    """Range, ticks and decimals for a linear axis; widened to whole steps unless ``fixed``."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo)
    if not fixed:
        lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    exponent = math.floor(math.log10(step) + 1e-9)
    # A 2.5 step needs one more decimal than its exponent says (0.25, 2.5).
    decimals = max(0, -exponent + (1 if round(step / 10**exponent, 6) == 2.5 else 0))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return lo, hi, ticks, decimals


def _log_axis(lo: float, hi: float, fixed: bool) -> tuple[float, float, list[float]]:
    """Range and ticks for a log axis: whole decades, thinned when there are many."""
    if hi <= lo:
        lo, hi = lo / 10, hi * 10
    if not fixed:
        lo = 10 ** math.floor(math.log10(lo) + 1e-9)
        hi = 10 ** math.ceil(math.log10(hi) - 1e-9)
    first, last = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    decades = last - first
    if decades < 2:
        # About a decade in view: 1-2-5 ticks.
        ticks = [
            m * 10.0**e
            for e in range(first - 1, last + 1)
            for m in (1, 2, 5)
            if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
        ]
    else:
        every = max(1, math.ceil(decades / 7))
        ticks = [10.0**e for e in range(first, last + 1) if e % every == 0]
    return lo, hi, ticks


def _format_linear(value: float, decimals: int) -> str:
    if abs(value) >= 1e5:
        return f"{value:.3g}"
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def _format_log(value: float, powers: bool) -> str:
    """Decades as 10ⁿ when the axis spans small or large numbers, else as plain numbers."""
    exponent = math.log10(value)
    if powers and abs(exponent - round(exponent)) < 1e-9:
        return "10" + str(round(exponent)).translate(_SUPERSCRIPT)
    return f"{value:g}"


def _log_labels(ticks: list[float]) -> list[str]:
    powers = any(not 1e-2 <= t <= 1e3 for t in ticks)
    return [_format_log(t, powers) for t in ticks]


def _key(value: str | Sequence[object], names: Sequence[str]) -> str:
    """The canonical key of a combination: control values joined with '|'."""
    parts = value.split(SEPARATOR) if isinstance(value, str) else [str(v) for v in value]
    if len(parts) != len(names):
        raise ValueError(
            f"key {value!r} has {len(parts)} value(s) but there are {len(names)} controls "
            f"({', '.join(names)}); give one value per control, in that order"
        )
    return SEPARATOR.join(parts)


def _curve(label: str, xs: Iterable[float], ys: Iterable[float]) -> tuple[list, list]:
    xs, ys = [_round(x) for x in xs], [_round(y) for y in ys]
    if len(xs) != len(ys):
        raise ValueError(f"curve {label!r} has {len(xs)} x values but {len(ys)} y values")
    return xs, ys


class Explorer:
    """Precomputed curves behind a few controls, drawn without a kernel.

    Args:
        data: maps a combination of control values to the curves to show for it,
            ``{label: (xs, ys)}``. A combination is a tuple of values in the order of
            ``controls`` (or the values joined with ``'|'``). Combinations that are
            absent show ``missing_text`` followed by the chosen values.
        controls: ordered ``{name: [value, ...]}``; each control is a drop-down list.
        title: shown above the chart.
        xlabel: x-axis label, with units (``"epoch"``, ``"depth (layers)"``).
        ylabel: y-axis label, with units (``"test error (%)"``).
        logy: logarithmic y axis (gradient norms span many decades).
        xlog: logarithmic x axis.
        ylim: fixed ``(low, high)`` y range; by default one range fits every
            combination, so switching controls never rescales the axes.
        caption: a sentence under the chart.
        reference: curves drawn dashed in every combination, e.g. the paper's numbers.
        default: the combination shown first (tuple, ``'|'``-joined string or
            ``{name: value}``); by default the first entry of ``data``.
        markers: draw a dot at every point; by default only for curves of at most
            20 points.
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
        self.data: dict[str, dict[str, tuple[list, list]]] = {}
        for raw_key, curves in data.items():
            key = _key(raw_key, names)
            for name, value in zip(names, key.split(SEPARATOR), strict=True):
                if value not in self.controls[name]:
                    raise ValueError(
                        f"data key {raw_key!r}: {value!r} is not a value of control {name!r} "
                        f"(values: {', '.join(self.controls[name])})"
                    )
            self.data[key] = {str(label): _curve(label, *xy) for label, xy in curves.items()}
        self.reference = {str(k): _curve(k, *xy) for k, xy in (reference or {}).items()}
        if isinstance(default, Mapping):
            default = tuple(default[name] for name in names)
        self.default = _key(default, names) if default is not None else next(iter(self.data))
        if self.default not in self.data:
            raise ValueError(f"default {default!r} is not one of the combinations in data")
        self.title, self.xlabel, self.ylabel, self.caption = title, xlabel, ylabel, caption
        self.logy, self.xlog = bool(logy), bool(xlog)
        self.ylim = ylim
        longest = max(
            (
                len(xs)
                for curves in (*self.data.values(), self.reference)
                for xs, _ in curves.values()
            ),
            default=0,
        )
        self.markers = longest <= 20 if markers is None else bool(markers)
        self.missing_text = str(missing_text)
        self._layout()

    # -- layout -----------------------------------------------------------------------------

    def _layout(self) -> None:
        """One set of axes for every combination, so switching never rescales."""
        labels: list[str] = []
        xs_all: list[float] = []
        ys_all: list[float] = []
        for curves in self.data.values():
            for label, (xs, ys) in curves.items():
                if label not in labels:
                    labels.append(label)
                for x, y in zip(xs, ys, strict=True):
                    if x is None or y is None or (self.xlog and x <= 0) or (self.logy and y <= 0):
                        continue
                    xs_all.append(x)
                    ys_all.append(y)
        for xs, ys in self.reference.values():
            xs_all += [x for x in xs if x is not None and (x > 0 or not self.xlog)]
            ys_all += [y for y in ys if y is not None and (y > 0 or not self.logy)]
        self.colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        if not xs_all:
            xs_all, ys_all = [1.0], [1.0]
        if self.xlog:
            x0, x1, xticks = _log_axis(min(xs_all), max(xs_all), fixed=False)
            self._xtick_labels = _log_labels(xticks)
        else:
            # Data usually starts at a meaningful x (epoch 1, depth 20): keep the ends tight.
            lo, hi = min(xs_all), max(xs_all)
            _, _, xticks, dec = _linear_axis(lo, hi, fixed=True)
            x0, x1 = (lo, hi) if hi > lo else (lo - 1, hi + 1)
            xticks = [t for t in xticks if x0 - 1e-9 <= t <= x1 + 1e-9]
            self._xtick_labels = [_format_linear(t, dec) for t in xticks]
        fixed = self.ylim is not None
        lo, hi = (float(self.ylim[0]), float(self.ylim[1])) if fixed else (min(ys_all), max(ys_all))
        if self.logy:
            if lo <= 0:
                raise ValueError(f"ylim {self.ylim!r} must be positive with logy=True")
            y0, y1, yticks = _log_axis(lo, hi, fixed)
            self._ytick_labels = _log_labels(yticks)
        else:
            y0, y1, yticks, dec = _linear_axis(lo, hi, fixed)
            self._ytick_labels = [_format_linear(t, dec) for t in yticks]
        self._x, self._y = (x0, x1), (y0, y1)
        self._xticks, self._yticks = xticks, yticks

    def _sx(self, v: float) -> float:
        t = math.log10 if self.xlog else float
        x0, x1 = self._x
        return LEFT + (t(v) - t(x0)) / (t(x1) - t(x0)) * (WIDTH - LEFT - RIGHT)

    def _sy(self, v: float) -> float:
        t = math.log10 if self.logy else float
        y0, y1 = self._y
        return HEIGHT - BOTTOM - (t(v) - t(y0)) / (t(y1) - t(y0)) * (HEIGHT - TOP - BOTTOM)

    def _path(self, xs: list, ys: list) -> str:
        """Same algorithm as ``path`` in the JavaScript below: gaps break the line."""
        d, pen = [], False
        for x, y in zip(xs, ys, strict=True):
            if x is None or y is None or (self.xlog and x <= 0) or (self.logy and y <= 0):
                pen = False
                continue
            d.append(f"{'L' if pen else 'M'}{self._sx(x):.1f} {self._sy(y):.1f}")
            pen = True
        return "".join(d)

    # -- rendering --------------------------------------------------------------------------

    def _spec(self) -> dict:
        return {
            "x": list(self._x),
            "y": list(self._y),
            "xlog": self.xlog,
            "ylog": self.logy,
            "box": [LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, HEIGHT - BOTTOM],
            "markers": self.markers,
            "missing": self.missing_text,
            "data": {
                key: [[label, self.colors[label], xs, ys] for label, (xs, ys) in curves.items()]
                for key, curves in self.data.items()
            },
        }

    @property
    def id(self) -> str:
        """Deterministic DOM id: the same explorer renders to the same HTML in every run."""
        payload = json.dumps(
            [
                self._spec(),
                self.controls,
                self.title,
                self.xlabel,
                self.ylabel,
                self.caption,
                self.reference,
                self.default,
            ],
            sort_keys=True,
        )
        return "rl-explorer-" + hashlib.sha1(payload.encode()).hexdigest()[:12]

    def _curve_svg(self, label: str, color: str, xs: list, ys: list, uid: str, ref: bool) -> str:
        dash = ' stroke-dasharray="6 4"' if ref else ""
        marker = ""
        if self.markers and not ref:
            m = f"url(#{uid}-m{color[1:]})"
            marker = f' marker-start="{m}" marker-mid="{m}" marker-end="{m}"'
        attr = "data-reference" if ref else "data-label"
        return (
            f'<path {attr}="{html.escape(label)}" d="{self._path(xs, ys)}" fill="none" '
            f'stroke="{color}" stroke-width="2" stroke-linejoin="round"{dash}{marker}>'
            f"<title>{html.escape(label)}</title></path>"
        )

    def _svg(self, uid: str) -> str:
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        bottom = HEIGHT - BOTTOM
        parts = [
            f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(self.title)}" '
            f'data-state="{html.escape(self.default)}" xmlns="http://www.w3.org/2000/svg">',
            "<defs>",
            f'<clipPath id="{uid}-clip"><rect x="{LEFT}" y="{TOP}" width="{plot_w}" '
            f'height="{plot_h}"/></clipPath>',
        ]
        for color in sorted(set(self.colors.values())):
            parts.append(
                f'<marker id="{uid}-m{color[1:]}" viewBox="0 0 8 8" refX="4" refY="4" '
                f'markerWidth="5" markerHeight="5"><circle cx="4" cy="4" r="3.2" fill="{color}"/>'
                "</marker>"
            )
        parts.append("</defs>")
        # Grid and ticks.
        parts.append('<g class="rl-grid">')
        for t in self._yticks:
            y = f"{self._sy(t):.1f}"
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        for t in self._xticks:
            x = f"{self._sx(t):.1f}"
            parts.append(f'<line x1="{x}" x2="{x}" y1="{TOP}" y2="{bottom}"/>')
        parts.append("</g>")
        parts.append('<g class="rl-axis">')
        parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none"/>')
        for t, text in zip(self._yticks, self._ytick_labels, strict=True):
            y = self._sy(t)
            parts.append(
                f'<line x1="{LEFT - 5}" x2="{LEFT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
            )
        for t, text in zip(self._xticks, self._xtick_labels, strict=True):
            x = self._sx(t)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}"/>'
                f'<text x="{x:.1f}" y="{bottom + 19}" text-anchor="middle">{text}</text>'
            )
        parts.append(
            f'<text class="rl-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{html.escape(self.xlabel)}</text>'
            f'<text class="rl-label" transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle">{html.escape(self.ylabel)}</text>'
        )
        parts.append("</g>")
        parts.append(f'<g clip-path="url(#{uid}-clip)" data-layer="reference">')
        for label, (xs, ys) in self.reference.items():
            parts.append(self._curve_svg(label, REFERENCE_COLOR, xs, ys, uid, ref=True))
        parts.append(f'</g><g clip-path="url(#{uid}-clip)" data-layer="curves">')
        for label, (xs, ys) in self.data[self.default].items():
            parts.append(self._curve_svg(label, self.colors[label], xs, ys, uid, ref=False))
        parts.append(
            f'</g><text data-layer="message" x="{LEFT + plot_w / 2:.1f}" '
            f'y="{TOP + plot_h / 2:.1f}" text-anchor="middle" display="none">'
            f"{html.escape(self.missing_text)} this combination</text>"
        )
        parts.append("</svg>")
        return "".join(parts)

    def _legend(self) -> str:
        items = [
            f'<span class="rl-key" data-key="{html.escape(label)}">'
            f'<i style="border-top-color:{self.colors[label]}"></i>{html.escape(label)}</span>'
            for label in self.data[self.default]
        ]
        items += [
            f'<span class="rl-key rl-ref"><i style="border-top-color:{REFERENCE_COLOR}"></i>'
            f"{html.escape(label)}</span>"
            for label in self.reference
        ]
        return "".join(items)

    def _controls_html(self) -> str:
        chosen = self.default.split(SEPARATOR)
        parts = []
        for (name, values), pick in zip(self.controls.items(), chosen, strict=True):
            options = "".join(
                f'<option value="{html.escape(v)}"{" selected" if v == pick else ""}>'
                f"{html.escape(v)}</option>"
                for v in values
            )
            parts.append(
                f'<label>{html.escape(name)} <select data-control="{html.escape(name)}">'
                f"{options}</select></label>"
            )
        return "".join(parts)

    def to_html(self) -> str:
        """The self-contained HTML fragment (what notebooks and the book display)."""
        uid = self.id
        spec = json.dumps(self._spec(), separators=(",", ":"), allow_nan=False)
        spec = spec.replace("</", "<\\/")  # a string in the data must not close the <script>
        caption = (
            f'<div class="rl-caption">{html.escape(self.caption)}</div>' if self.caption else ""
        )
        return (
            f'<div class="rl-explorer" id="{uid}" data-explorer="{uid}">'
            f"<style>{_CSS}</style>"
            f'<div class="rl-title">{html.escape(self.title)}</div>'
            f'<div class="rl-controls">{self._controls_html()}</div>'
            f"{self._svg(uid)}"
            f'<div class="rl-legend" data-legend="">{self._legend()}</div>'
            f"{caption}"
            f'<script type="application/json" data-spec="">{spec}</script>'
            "</div>"
            f"<script>{_JS.replace('__ID__', uid)}</script>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return (
            f"Explorer({self.title!r}, controls={list(self.controls)}, "
            f"{len(self.data)} combinations computed)"
        )

    def save_html(self, path: str | Path) -> Path:
        """Write a standalone HTML page with this explorer (opens in any browser, offline)."""
        from resnet_lab.io import atomic_write_text

        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title></head>"
            '<body style="font-family:system-ui,sans-serif;max-width:720px;margin:2em auto">'
            f"{self.to_html()}</body></html>\n"
        )
        path = Path(path)
        atomic_write_text(path, page)
        return path


# Styles are scoped to .rl-explorer and follow the page's text colour (light and dark themes).
_CSS = (
    ".rl-explorer{margin:1em 0;max-width:680px;color:inherit;font-size:14px}"
    ".rl-explorer .rl-title{font-weight:600;margin-bottom:.3em}"
    ".rl-explorer .rl-controls{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin-bottom:.3em}"
    ".rl-explorer select{font:inherit;color:inherit;background:transparent;padding:1px 4px;"
    "border-radius:4px;border:1px solid rgba(127,127,127,.6)}"
    # The drop-down list is drawn by the browser: dark on light reads well on any page.
    ".rl-explorer option{color:#222;background:#fff}"
    ".rl-explorer svg{width:100%;height:auto;display:block;overflow:visible}"
    ".rl-explorer svg text{fill:currentColor;font-size:12px;font-family:inherit}"
    ".rl-explorer svg .rl-label{font-size:13px}"
    ".rl-explorer .rl-grid line{stroke:currentColor;stroke-opacity:.12}"
    ".rl-explorer .rl-axis line,.rl-explorer .rl-axis rect{stroke:currentColor;stroke-opacity:.6}"
    ".rl-explorer .rl-legend{display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:13px}"
    ".rl-explorer .rl-key i{display:inline-block;width:22px;border-top:3px solid;"
    "vertical-align:middle;margin-right:.4em}"
    ".rl-explorer .rl-ref i{border-top-style:dashed}"
    ".rl-explorer .rl-caption{font-size:13px;opacity:.85;margin-top:.3em}"
)

# Redraws the curves from the embedded data when a control changes. Every explorer on a
# page carries this script; it initialises the containers with its id that are not yet
# ready, so it works whether the host runs scripts in place (Jupyter Book, JupyterLab,
# Colab) or elsewhere (the classic notebook evaluates them in <head>).
_JS = """(function(){
var NS="http://www.w3.org/2000/svg";
var roots=document.querySelectorAll('[data-explorer="__ID__"]:not([data-ready])');
Array.prototype.forEach.call(roots,function(root){
root.setAttribute("data-ready","1");
var spec=JSON.parse(root.querySelector("script[data-spec]").textContent);
var svg=root.querySelector("svg"),layer=svg.querySelector('[data-layer="curves"]');
var msg=svg.querySelector('[data-layer="message"]'),legend=root.querySelector("[data-legend]");
var selects=root.querySelectorAll("select[data-control]"),b=spec.box;
function t(v,log){return log?Math.log(v)/Math.LN10:v;}
function sx(v){return b[0]+(t(v,spec.xlog)-t(spec.x[0],spec.xlog))/(t(spec.x[1],spec.xlog)-t(spec.x[0],spec.xlog))*b[2];}
function sy(v){return b[4]-(t(v,spec.ylog)-t(spec.y[0],spec.ylog))/(t(spec.y[1],spec.ylog)-t(spec.y[0],spec.ylog))*b[3];}
function path(xs,ys){var d="",pen=false;for(var i=0;i<xs.length;i++){var x=xs[i],y=ys[i];
if(x===null||y===null||(spec.xlog&&x<=0)||(spec.ylog&&y<=0)){pen=false;continue;}
d+=(pen?"L":"M")+sx(x).toFixed(1)+" "+sy(y).toFixed(1);pen=true;}return d;}
function draw(){
var key=Array.prototype.map.call(selects,function(s){return s.value;}).join("|");
svg.setAttribute("data-state",key);
while(layer.firstChild){layer.removeChild(layer.firstChild);}
var keys=legend.querySelectorAll("[data-key]");
for(var k=0;k<keys.length;k++){legend.removeChild(keys[k]);}
var curves=spec.data[key]||[];
msg.setAttribute("display",spec.data[key]?"none":"inline");
msg.textContent=spec.missing+" "+Array.prototype.map.call(selects,function(s){return s.getAttribute("data-control")+" "+s.value;}).join(", ");
curves.forEach(function(c,i){
var p=document.createElementNS(NS,"path");
p.setAttribute("data-label",c[0]);p.setAttribute("d",path(c[2],c[3]));
p.setAttribute("fill","none");p.setAttribute("stroke",c[1]);p.setAttribute("stroke-width","2");
p.setAttribute("stroke-linejoin","round");
if(spec.markers){var m="url(#__ID__-m"+c[1].slice(1)+")";
p.setAttribute("marker-start",m);p.setAttribute("marker-mid",m);p.setAttribute("marker-end",m);}
var title=document.createElementNS(NS,"title");title.textContent=c[0];p.appendChild(title);
layer.appendChild(p);
var item=document.createElement("span");item.className="rl-key";item.setAttribute("data-key",c[0]);
var sw=document.createElement("i");sw.style.borderTopColor=c[1];item.appendChild(sw);
item.appendChild(document.createTextNode(c[0]));
legend.insertBefore(item,legend.children[i]||null);
});
}
Array.prototype.forEach.call(selects,function(s){s.addEventListener("change",draw);});
draw();
});
})();"""
