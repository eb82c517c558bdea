"""What an :class:`~resnet_lab.book.explorer.Explorer` puts in a web page besides its data.

Its styles (:data:`CSS`) and the script that draws it with the page's plotly.js and
switches its drop-downs (:data:`SCRIPT`); plotly.js where the page has none: Colab
(:func:`colab_plotlyjs`) and a standalone file (:func:`standalone_page`). The book ships
plotly.js once per site (``tools/plotly_static.py``). plotly is imported on first use only.
"""

from __future__ import annotations

import html
import sys

__all__ = ["CSS", "SCRIPT", "colab_plotlyjs", "standalone_page"]


def colab_plotlyjs() -> str | None:
    """Colab draws each output in its own frame with no plotly.js: load it there."""
    if "google.colab" not in sys.modules:
        return None
    from plotly.offline import get_plotlyjs_version

    return (
        f'<script src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" '
        'charset="utf-8"></script>'
    )


def standalone_page(title: str, fragment: str) -> str:
    """A whole HTML page around an explorer's ``fragment``, plotly.js inlined (works offline)."""
    from plotly.offline import get_plotlyjs

    plotlyjs = f'<script charset="utf-8">{get_plotlyjs()}</script>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{plotlyjs}</head>"
        '<body style="font-family:system-ui,sans-serif;max-width:760px;margin:1em auto">'
        f"{fragment}</body></html>\n"
    )


# Styles are scoped to .rl-explorer; drop-downs are at least 36 px tall (touch targets)
# and 16 px text (phones do not zoom into them).
CSS = (
    ".rl-explorer{margin:1em 0;max-width:760px;color:inherit;font-size:15px}"
    ".rl-explorer .rl-title{font-weight:600;margin-bottom:.3em}"
    ".rl-explorer .rl-controls{display:flex;flex-wrap:wrap;gap:.4em 1em;margin-bottom:.4em}"
    ".rl-explorer label{display:inline-flex;align-items:center;gap:.4em}"
    ".rl-explorer select{font:inherit;font-size:16px;min-height:36px;padding:2px 6px;"
    "color:#222;background:#fff;border-radius:6px;border:1px solid rgba(127,127,127,.7)}"
    ".rl-explorer .rl-plot{width:100%;min-height:120px}"
    ".rl-explorer .rl-plot img{max-width:100%;height:auto}"
    ".rl-explorer .rl-caption{font-size:14px;opacity:.85;margin-top:.3em}"
)

# Draws the figure with the page's plotly.js and shows the traces of the chosen setting.
# Where plotly.js is not loaded yet, the drawing waits in window.rlPlotly: the book loads
# plotly.js when a figure nears the screen (tools/plotly_loader.js) and then draws it.
# Without plotly.js (scripts blocked, or a viewer without it) the static picture stays.
SCRIPT = """(function(){
function draw(){
var root=document.getElementById("__ID__");
if(!root||root.getAttribute("data-ready")){return;}
root.setAttribute("data-ready","1");
var spec=JSON.parse(root.querySelector("script[data-figure]").textContent);
var plot=root.querySelector("[data-plot]"),selects=root.querySelectorAll("select[data-control]");
var fallback=plot.querySelector("[data-fallback]");if(fallback){plot.removeChild(fallback);}
function setting(){return Array.prototype.map.call(selects,function(s){return s.value;}).join("|");}
var wide=spec.layout.height;
function fit(){
// A narrow screen wraps the legend below the plot into many rows: grow the figure by
// what the plot area lost, so the curves keep __PLOT__ px of height.
var size=plot._fullLayout&&plot._fullLayout._size;
if(!size||size.h>=__PLOT__-2){return;}
return Plotly.relayout(plot,{height:plot._fullLayout.height+__PLOT__-size.h});
}
function show(){
var s=setting(),found=spec.settings.indexOf(s)>=0;
var visible=spec.data.map(function(t){return t.meta===null||t.meta===s;});
var names=Array.prototype.map.call(selects,function(e){return e.getAttribute("data-control")+" "+e.value;});
root.setAttribute("data-state",s);
return Plotly.update(plot,{visible:visible},{"xaxis.autorange":true,"yaxis.autorange":!spec.fixedy,
"height":wide,"annotations[0].visible":!found,
"annotations[0].text":spec.missing+" "+names.join(", ")}).then(fit);
}
Plotly.newPlot(plot,spec.data,spec.layout,spec.config).then(show);
var timer=null;
window.addEventListener("resize",function(){clearTimeout(timer);timer=setTimeout(function(){
Plotly.relayout(plot,{height:wide}).then(fit);},150);});
Array.prototype.forEach.call(selects,function(e){e.addEventListener("change",show);});
}
if(window.Plotly){draw();}else{(window.rlPlotly=window.rlPlotly||[]).push(draw);}
})();""".replace("__PLOT__", "300")
