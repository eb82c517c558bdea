/* Load plotly.js only when a figure is about to scroll into view, then draw the figures.
 *
 * Added by tools/plotly_static.py (deferred) to the book's pages with explorers; the text
 * paints first, and a reader who never reaches a figure never downloads plotly.js. Each
 * explorer's own script (resnet_lab/book/explorer_html.py) queues its drawing function in
 * window.rlPlotly when plotly.js is not there yet; until it is drawn, its static picture
 * shows. data-plotly names the bundle, beside this file in _static/.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  var src = new URL(me.getAttribute("data-plotly"), me.src).href;
  var waiting = window.rlPlotly || [];
  var requested = false;

  function drawAll() {
    // From now on an explorer that queues itself is drawn at once.
    window.rlPlotly = { push: function (draw) { draw(); } };
    waiting.splice(0).forEach(function (draw) { draw(); });
  }

  function load() {
    if (requested) { return; }
    requested = true;
    var script = document.createElement("script");
    script.src = src;
    script.onload = drawAll;
    document.head.appendChild(script);
  }

  window.rlPlotly = { push: function (draw) { waiting.push(draw); load(); } };
  var figures = document.querySelectorAll("[data-explorer]");
  if (!figures.length) { return; }
  if (!("IntersectionObserver" in window)) { load(); return; }
  // Start one screen ahead of the figure, so it is drawn by the time it is read.
  var observer = new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; })) {
      observer.disconnect();
      load();
    }
  }, { rootMargin: "100% 0px" });
  figures.forEach(function (figure) { observer.observe(figure); });
})();
