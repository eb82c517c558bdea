/* The depth playground: trains a plain and a residual network side by side in the page.
 *
 * Fills every <div class="rl-playground"></div> with its controls and views. TensorFlow.js
 * (vendor/, next to this file) is loaded only when the playground scrolls into view or Start
 * is pressed; the network, data and trainer are in net.js. Training yields to the browser
 * after each frame's steps (tf.nextFrame), so the page never freezes. Each root element gets
 * a `playground` property (start, pause, reset, summary) that tests/test_playground.py uses.
 */
(function () {
  'use strict';

  const BASE = (document.currentScript && document.currentScript.src.replace(/[^/]*$/, '')) || '';
  const TFJS = 'vendor/tf.es2017.min.js';
  const KINDS = ['plain', 'residual'];
  const COLOURS = { plain: '#d95f02', residual: '#1f78b4' };
  const CLASS_RGB = [[118, 42, 131], [27, 120, 55]]; // purple, green (PRGn)
  const LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
  const POINTS = 512;
  const BATCH = 128;
  const MAX_STEPS = 2000;
  const TAIL = 50; // the summary averages the last TAIL steps
  const FRAME_MS = 15; // train this long, then draw and give the browser the frame
  const GRID = 30;
  const EXTENT = 1.25; // the surface shows [-EXTENT, EXTENT]^2

  let tfLoading = null;

  function loadTf() {
    if (!tfLoading) {
      tfLoading = new Promise((resolve, reject) => {
        if (window.tf) return resolve();
        const tag = document.createElement('script');
        tag.src = BASE + TFJS;
        tag.onload = resolve;
        tag.onerror = () => reject(new Error(`could not load ${tag.src}`));
        document.head.appendChild(tag);
      }).then(() => tf.setBackend('cpu'));
      tfLoading.catch(() => {
        tfLoading = null; // let a later press of Start try again
      });
    }
    return tfLoading;
  }

  const TEMPLATE = `
<div class="rl-pg-controls">
  <label>Depth <span class="rl-pg-depth"><input type="range" min="3" max="64" step="1"
    value="32" data-setting="depth"><output data-show="depth">32</output></span></label>
  <label>Skip connections <select data-setting="nets">
    <option value="both">off and on, side by side</option>
    <option value="plain">off (plain)</option>
    <option value="residual">on (residual)</option></select></label>
  <label>BatchNorm <select data-setting="norm">
    <option value="batchnorm">on</option><option value="none">off</option></select></label>
  <label>Initialisation <select data-setting="init">
    <option value="he">He</option><option value="naive">naive, N(0, 0.01\u00b2)</option></select></label>
  <label>Learning rate <select data-setting="lr">${LEARNING_RATES.map(
    (lr) => `<option value="${lr}"${lr === 0.01 ? ' selected' : ''}>${lr}</option>`
  ).join('')}</select></label>
  <label>Seed <input type="number" min="0" max="99999" step="1" value="1" inputmode="numeric"
    data-setting="seed"></label>
  <span class="rl-pg-buttons"><button type="button" data-action="start">Start</button>
    <button type="button" data-action="reset">Reset</button></span>
</div>
<p class="rl-pg-status" role="status" aria-live="polite"></p>
<p class="rl-pg-legend"><span data-kind="plain">plain (no skips)</span>
  <span data-kind="residual">residual (skips)</span></p>
<div class="rl-pg-views">
  <figure><canvas data-view="loss"></canvas><figcaption>Training loss of each batch, by step
    (0.69 is guessing)</figcaption></figure>
  <figure><canvas data-view="accuracy"></canvas><figcaption>Training accuracy, mean of the
    last 20 batches</figcaption></figure>
  <figure><canvas data-view="norms"></canvas><figcaption>Gradient norm of each weight layer,
    input (left) to output (right), log scale</figcaption></figure>
  <figure class="rl-pg-surfaces"><div><canvas data-view="surface-plain"></canvas>
    <canvas data-view="surface-residual"></canvas></div><figcaption>Each network's prediction
    over the plane (left plain, right residual) and the training points</figcaption></figure>
</div>`;

  class Playground {
    constructor(root) {
      this.root = root;
      root.innerHTML = TEMPLATE;
      this.controls = {};
      root.querySelectorAll('[data-setting]').forEach((el) => {
        this.controls[el.dataset.setting] = el;
        el.addEventListener(el.type === 'range' ? 'input' : 'change', () => this.reset());
      });
      this.startButton = root.querySelector('[data-action="start"]');
      this.startButton.addEventListener('click', () => (this.running ? this.pause() : this.start()));
      root.querySelector('[data-action="reset"]').addEventListener('click', () => this.reset());
      this.status = root.querySelector('.rl-pg-status');
      this.canvases = {};
      root.querySelectorAll('canvas[data-view]').forEach((c) => (this.canvases[c.dataset.view] = c));
      this.running = false;
      this.runs = null;
      this.reset();
      window.addEventListener('resize', () => this.draw());
      if ('IntersectionObserver' in window) {
        const seen = new IntersectionObserver((entries) => {
          if (entries.some((e) => e.isIntersecting)) {
            seen.disconnect();
            loadTf().catch((e) => this.say(String(e.message)));
          }
        }, { rootMargin: '200px' });
        seen.observe(root);
      }
    }

    settings() {
      const c = this.controls;
      const seed = Math.max(0, Math.min(99999, Math.floor(Number(c.seed.value) || 0)));
      return {
        depth: Number(c.depth.value), nets: c.nets.value, norm: c.norm.value,
        init: c.init.value, lr: Number(c.lr.value), seed,
      };
    }

    say(text) {
      this.status.textContent = text;
    }

    /* Stop, forget the networks; the next Start builds them from the current settings. */
    reset() {
      this.pause();
      if (this.runs) this.runs.forEach((run) => run.net.dispose());
      this.runs = null;
      this.step = 0;
      const s = this.settings();
      this.root.querySelector('[data-show="depth"]').textContent = s.depth;
      this.kinds = s.nets === 'both' ? KINDS : [s.nets];
      this.root.querySelectorAll('[data-kind]').forEach((el) => {
        el.hidden = !this.kinds.includes(el.dataset.kind);
      });
      this.history = {};
      this.kinds.forEach((kind) => {
        this.history[kind] = { loss: [], accuracy: [], norms: null, diverged: null, surface: null };
      });
      this.data = null;
      this.say(`Depth ${s.depth}: press Start to train ${this.kinds.join(' and ')} on two spirals.`);
      this.draw();
    }

    build() {
      const P = window.ResnetPlaygroundNet;
      const s = this.settings();
      this.data = P.twoSpirals(POINTS, s.seed);
      this.batches = new P.Batches(this.data, BATCH, s.seed);
      // Both networks start from the same weights and see the same batches: only skips differ.
      this.runs = this.kinds.map((kind) => ({
        kind, net: new P.Net({ ...s, skip: kind === 'residual' }), history: this.history[kind],
      }));
    }

    /* Train until `until` steps (or MAX_STEPS) or a pause; resolves when training stops. */
    async start(until = MAX_STEPS) {
      if (this.running) return this.finished;
      this.running = true;
      this.until = Math.min(until, MAX_STEPS);
      this.startButton.textContent = 'Pause';
      this.finished = (async () => {
        try {
          if (!window.tf) this.say('Loading TensorFlow.js\u2026');
          await loadTf();
          if (!this.runs) this.build();
          await this.loop();
        } catch (error) {
          this.say(`Stopped: ${error.message}`);
        } finally {
          this.running = false;
          this.startButton.textContent = this.step > 0 ? 'Continue' : 'Start';
        }
      })();
      return this.finished;
    }

    pause() {
      this.running = false;
    }

    async loop() {
      let lastSurface = -Infinity;
      let surfaceCost = 0;
      while (this.running && this.live().length > 0 && this.step < this.until) {
        const frame = performance.now();
        let first = true;
        do {
          const batch = this.batches.next();
          this.live().forEach((run) => this.train(run, batch, first));
          tf.dispose([batch.x, batch.y]);
          this.step += 1;
          first = false;
        } while (performance.now() - frame < FRAME_MS && this.step < this.until && this.live().length);
        // The surfaces cost a forward pass over the grid: redrawn at most a tenth of the time.
        if (performance.now() - lastSurface > Math.max(500, 10 * surfaceCost)) {
          const begin = performance.now();
          this.runs.forEach((run) => this.surface(run));
          lastSurface = performance.now();
          surfaceCost = lastSurface - begin;
        }
        this.report();
        this.draw();
        await tf.nextFrame();
      }
      this.runs.forEach((run) => this.surface(run));
      this.report();
      this.draw();
    }

    live() {
      return this.runs.filter((run) => run.history.diverged === null);
    }

    train(run, batch, withNorms) {
      const h = run.history;
      const out = run.net.step(batch, withNorms);
      if (out.diverged) {
        h.diverged = this.step;
        return;
      }
      h.loss.push(out.loss);
      h.accuracy.push(out.accuracy);
      if (out.gradNorms) h.norms = out.gradNorms;
    }

    surface(run) {
      if (run.history.diverged !== null) return;
      const xy = new Float32Array(2 * GRID * GRID);
      for (let r = 0; r < GRID; r++) {
        for (let c = 0; c < GRID; c++) {
          xy[2 * (r * GRID + c)] = -EXTENT + (2 * EXTENT * (c + 0.5)) / GRID;
          xy[2 * (r * GRID + c) + 1] = EXTENT - (2 * EXTENT * (r + 0.5)) / GRID;
        }
      }
      run.history.surface = run.net.predict(xy);
    }

    /* Per network: steps trained, mean loss and accuracy over the last TAIL steps, and the
     * step at which it diverged (null if it did not). */
    summary() {
      const mean = (a) => a.slice(-TAIL).reduce((x, y) => x + y, 0) / Math.max(1, a.slice(-TAIL).length);
      const out = { step: this.step, settings: this.settings(), runs: {} };
      this.kinds.forEach((kind) => {
        const h = this.history[kind];
        out.runs[kind] = {
          steps: h.loss.length, loss: mean(h.loss), accuracy: mean(h.accuracy), diverged: h.diverged,
        };
      });
      return out;
    }

    report() {
      const s = this.summary();
      const parts = this.kinds.map((kind) => {
        const r = s.runs[kind];
        if (r.diverged !== null) return `${kind}: diverged at step ${r.diverged}, stopped`;
        return `${kind}: loss ${r.loss.toFixed(3)}, accuracy ${Math.round(100 * r.accuracy)}%`;
      });
      const state = this.live().length === 0 ? 'stopped' : this.step >= this.until ? 'done' : '';
      this.say(`Step ${s.step}${state ? ` (${state})` : ''}: ${parts.join('; ')} (means of the last ${TAIL} steps).`);
    }

    draw() {
      const ink = getComputedStyle(this.root).color;
      const shown = this.kinds.map((kind) => ({ kind, h: this.history[kind] }));
      const steps = Math.max(100, ...shown.map(({ h }) => h.loss.length));
      const lossTop = Math.max(1, ...shown.map(({ h }) => Math.min(3, Math.max(0, ...h.loss.slice(0, 20)))));
      lineChart(this.canvases.loss, ink, shown.map(({ kind, h }) => ({
        kind, values: h.loss, diverged: h.diverged,
      })), { xmax: steps, ymin: 0, ymax: lossTop, guide: Math.LN2 });
      lineChart(this.canvases.accuracy, ink, shown.map(({ kind, h }) => ({
        kind, values: movingMean(h.accuracy, 20), diverged: h.diverged,
      })), { xmax: steps, ymin: 0.4, ymax: 1, guide: 0.5 });
      normChart(this.canvases.norms, ink, shown);
      KINDS.forEach((kind) => {
        const canvas = this.canvases[`surface-${kind}`];
        canvas.hidden = !this.kinds.includes(kind);
        if (!canvas.hidden) surfaceChart(canvas, ink, this.history[kind], this.data, kind);
      });
    }
  }

  function movingMean(values, k) {
    const out = [];
    let sum = 0;
    values.forEach((v, i) => {
      sum += v - (i >= k ? values[i - k] : 0);
      out.push(sum / Math.min(i + 1, k));
    });
    return out;
  }

  /* A 2-D context the size the canvas is shown at, in CSS pixels, cleared. */
  function context(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300;
    const h = canvas.clientHeight || 150;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px sans-serif';
    return { ctx, w, h };
  }

  const PAD = { left: 40, right: 10, top: 10, bottom: 22 };

  function axes(ctx, ink, w, h, yticks, xlabel) {
    ctx.strokeStyle = ink;
    ctx.fillStyle = ink;
    ctx.globalAlpha = 0.35;
    ctx.strokeRect(PAD.left, PAD.top, w - PAD.left - PAD.right, h - PAD.top - PAD.bottom);
    ctx.globalAlpha = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    yticks.forEach(([y, label]) => ctx.fillText(label, PAD.left - 4, y));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText(xlabel, (w + PAD.left) / 2, h - PAD.bottom + 5);
  }

  function lineChart(canvas, ink, series, { xmax, ymin, ymax, guide }) {
    const { ctx, w, h } = context(canvas);
    const x = (i) => PAD.left + ((w - PAD.left - PAD.right) * i) / xmax;
    const y = (v) => PAD.top + (h - PAD.top - PAD.bottom) * (1 - (Math.min(Math.max(v, ymin), ymax) - ymin) / (ymax - ymin));
    const ticks = [ymin, (ymin + ymax) / 2, ymax].map((v) => [y(v), String(+v.toFixed(2))]);
    axes(ctx, ink, w, h, ticks, `step (0 to ${xmax})`);
    ctx.setLineDash([3, 3]);
    ctx.globalAlpha = 0.5;
    ctx.beginPath();
    ctx.moveTo(x(0), y(guide));
    ctx.lineTo(x(xmax), y(guide));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    series.forEach(({ kind, values, diverged }) => {
      ctx.strokeStyle = COLOURS[kind];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      const stride = Math.max(1, Math.floor(values.length / (w - PAD.left)));
      for (let i = 0; i < values.length; i += stride) {
        if (i === 0) ctx.moveTo(x(i), y(values[i]));
        else ctx.lineTo(x(i), y(values[i]));
      }
      ctx.stroke();
      if (diverged !== null) {
        ctx.fillStyle = COLOURS[kind];
        ctx.textAlign = 'left';
        ctx.textBaseline = 'top';
        const at = Math.min(x(diverged), w - 120);
        ctx.fillText(`${kind}: diverged (step ${diverged})`, at, PAD.top + 4 + 14 * KINDS.indexOf(kind));
      }
    });
  }

  function normChart(canvas, ink, shown) {
    const { ctx, w, h } = context(canvas);
    const all = shown.flatMap(({ h: hist }) => hist.norms || []).filter((v) => v > 0 && isFinite(v));
    const depth = Math.max(1, ...shown.map(({ h: hist }) => (hist.norms || []).length));
    if (all.length === 0) {
      axes(ctx, ink, w, h, [], 'layer');
      return;
    }
    const lo = Math.floor(Math.log10(Math.min(...all)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
    const x = (i) => PAD.left + ((w - PAD.left - PAD.right) * (i + 0.5)) / depth;
    const y = (v) => PAD.top + (h - PAD.top - PAD.bottom) * (1 - (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo));
    const every = Math.max(1, Math.ceil((hi - lo) / 4));
    const ticks = [];
    for (let e = lo; e <= hi; e += every) ticks.push([y(10 ** e), `1e${e}`]);
    axes(ctx, ink, w, h, ticks, `layer (1 to ${depth})`);
    shown.forEach(({ kind, h: hist }) => {
      if (!hist.norms) return;
      ctx.strokeStyle = ctx.fillStyle = COLOURS[kind];
      ctx.beginPath();
      hist.norms.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
      ctx.stroke();
      hist.norms.forEach((v, i) => ctx.fillRect(x(i) - 1.5, y(v) - 1.5, 3, 3));
    });
  }

  function surfaceChart(canvas, ink, hist, data, kind) {
    const { ctx, w, h } = context(canvas);
    if (hist.surface) {
      const image = new ImageData(GRID, GRID);
      hist.surface.forEach((p, i) => {
        const k = p > 0.5 ? 1 : 0;
        const strength = 0.15 + 0.55 * Math.abs(2 * p - 1);
        for (let c = 0; c < 3; c++) image.data[4 * i + c] = 255 - strength * (255 - CLASS_RGB[k][c]);
        image.data[4 * i + 3] = 255;
      });
      const small = document.createElement('canvas');
      small.width = small.height = GRID;
      small.getContext('2d').putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(small, 0, 0, w, h);
    }
    if (data) {
      for (let i = 0; i < data.n; i++) {
        const px = ((data.x[2 * i] + EXTENT) / (2 * EXTENT)) * w;
        const py = ((EXTENT - data.x[2 * i + 1]) / (2 * EXTENT)) * h;
        ctx.fillStyle = `rgb(${CLASS_RGB[data.y[i]].join(',')})`;
        ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
      }
    }
    ctx.fillStyle = COLOURS[kind];
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText(hist.diverged !== null ? `${kind}: diverged` : kind, 4, 4);
    ctx.strokeStyle = ink;
    ctx.globalAlpha = 0.35;
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    ctx.globalAlpha = 1;
  }

  function init() {
    document.querySelectorAll('.rl-playground').forEach((root) => {
      if (!root.playground) root.playground = new Playground(root);
    });
  }

  window.ResnetPlayground = { loadTf, init };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
