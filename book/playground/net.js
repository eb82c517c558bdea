/* The playground's network, data and trainer, on TensorFlow.js (tfjs-core and its CPU backend).
 *
 * The network is the package's resnet_lab.models.toy.DeepMLP as built by
 * build("spiral_mlp", depth=..., skip=..., norm=..., init=...): `depth` weight layers of
 * WIDTH units on 2-D inputs, each hidden layer h -> act(norm(W h + b)), wrapped by an identity
 * skip h + act(norm(W h + b)) when skips are on (the input layer changes the width, so it has
 * none), then a linear output layer of 2 logits. tests/test_playground.py loads the package's
 * PyTorch weights into it and checks its outputs and gradients against PyTorch's.
 *
 * Loaded before tfjs (it only uses the global `tf` when called). Exposes
 * window.ResnetPlaygroundNet = {Net, twoSpirals, Batches, WIDTH, ...}.
 */
(function (global) {
  'use strict';

  const WIDTH = 16;
  const CLASSES = 2;
  const NAIVE_STD = 0.01; // resnet_lab.models.toy.NAIVE_STD
  const BN_EPS = 1e-5; // torch.nn.BatchNorm1d's defaults
  const BN_MOMENTUM = 0.1;
  const SGD_MOMENTUM = 0.9;
  const DIVERGED_LOSS = 1e3; // a loss above this (or not a number) ends the run

  // mulberry32, a small seeded generator (Tommy Ettinger, public domain): the data and the
  // batches depend on the seed only.
  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function gaussian(rand) {
    // Box-Muller: two uniforms give one standard normal number.
    return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }

  /* Two interleaved spirals in [-1, 1]^2: point i has class i % 2; each arm turns `turns`
   * times from radius 0.1 to 1, the second arm is the first rotated by half a turn. */
  function twoSpirals(n, seed, noise = 0.03, turns = 1.75) {
    const rand = mulberry32(seed);
    const x = new Float32Array(2 * n);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const t = rand();
      const radius = 0.1 + 0.9 * t;
      const angle = 2 * Math.PI * turns * t + Math.PI * (i % 2);
      x[2 * i] = radius * Math.cos(angle) + noise * gaussian(rand);
      x[2 * i + 1] = radius * Math.sin(angle) + noise * gaussian(rand);
      y[i] = i % 2;
    }
    return { x, y, n };
  }

  /* Random mini-batches, drawn with replacement: the same seed gives the same sequence. */
  class Batches {
    constructor(data, size, seed) {
      this.data = data;
      this.size = size;
      this.rand = mulberry32(seed ^ 0x5bd1e995);
    }

    next() {
      const { data, size } = this;
      const x = new Float32Array(2 * size);
      const onehot = new Float32Array(CLASSES * size);
      const labels = new Int32Array(size);
      for (let i = 0; i < size; i++) {
        const j = Math.floor(this.rand() * data.n);
        x[2 * i] = data.x[2 * j];
        x[2 * i + 1] = data.x[2 * j + 1];
        labels[i] = data.y[j];
        onehot[CLASSES * i + data.y[j]] = 1;
      }
      return { x: tf.tensor2d(x, [size, 2]), y: tf.tensor2d(onehot, [size, CLASSES]), labels };
    }
  }

  class Net {
    /* config: {depth, skip, norm ('batchnorm' | 'none'), init ('he' | 'naive'), seed, lr}.
     *
     * Two choices keep a step fast on tfjs's CPU backend, where small tensors cost per
     * operation and broadcasting along the batch axis, or summing over it, goes element by
     * element: the hidden layers' parameters are stacked (one variable each for all weights
     * [L, W, W], biases, BatchNorm scales and shifts: one unstack, one optimiser update), and
     * per-feature rows [1, W] meet the batch only through matrix products with a column of
     * ones (broadcast) or a row of 1/n (mean), whose gradients are matrix products too. */
    constructor(config) {
      const { depth, skip, norm, init, seed } = config;
      if (!(depth >= 3)) throw new Error(`depth counts weight layers, at least 3 (got ${depth})`);
      this.depth = depth;
      this.skip = Boolean(skip);
      this.norm = norm === 'batchnorm';
      const hidden = depth - 2;
      // He et al. 2015: N(0, 2 / fan_in); naive: N(0, 0.01^2). Biases start at zero.
      const std = (fanIn) => (init === 'naive' ? NAIVE_STD : Math.sqrt(2 / fanIn));
      const normal = (shape, fanIn, k) => tf.randomNormal(shape, 0, std(fanIn), 'float32', seed * 1000 + k);
      // x W + b: each weight is the transpose of torch's layers[i].weight, each bias a row.
      this.w = {
        input: tf.variable(normal([2, WIDTH], 2, 0)),
        hidden: tf.variable(normal([hidden, WIDTH, WIDTH], WIDTH, 1)),
        output: tf.variable(normal([WIDTH, CLASSES], WIDTH, 2)),
      };
      this.b = {
        input: tf.variable(tf.zeros([1, WIDTH])),
        hidden: tf.variable(tf.zeros([hidden, 1, WIDTH])),
        output: tf.variable(tf.zeros([1, CLASSES])),
      };
      this.trainable = Object.values(this.w).concat(Object.values(this.b));
      if (this.norm) {
        // One BatchNorm after each layer but the output layer (torch's norms[0..depth-2]).
        const rows = [depth - 1, 1, WIDTH];
        this.gamma = tf.variable(tf.ones(rows));
        this.beta = tf.variable(tf.zeros(rows));
        this.runningMean = tf.variable(tf.zeros(rows), false);
        this.runningVar = tf.variable(tf.ones(rows), false);
        this.trainable.push(this.gamma, this.beta);
      }
      this.optimizer = tf.train.momentum(config.lr === undefined ? 0.01 : config.lr, SGD_MOMENTUM);
    }

    /* Logits for x [n, 2]. In training mode BatchNorm normalises with the batch's mean and
     * (biased) variance and returns them in `stats` ([depth - 1, 1, W] each); otherwise it
     * uses its running averages (torch's eval()). */
    forward(x, training, stats) {
      const n = x.shape[0];
      const ones = tf.ones([n, 1]);
      const meanRow = tf.fill([1, n], 1 / n);
      const rows = (v) => tf.matMul(ones, v); // [1, W] -> [n, W]
      const weights = [this.w.input].concat(unstack(this.w.hidden));
      const biases = [this.b.input].concat(unstack(this.b.hidden));
      let gammas, betas, means, variances;
      if (this.norm) {
        gammas = unstack(this.gamma);
        betas = unstack(this.beta);
        means = training ? [] : unstack(this.runningMean);
        variances = training ? [] : unstack(this.runningVar);
      }
      let h = x;
      for (let i = 0; i < this.depth - 1; i++) {
        let z = tf.add(tf.matMul(h, weights[i]), rows(biases[i]));
        if (this.norm) {
          // BatchNorm (Ioffe & Szegedy 2015, Algorithm 1): (z - mean) / sqrt(var + eps) * gamma + beta
          if (training) means.push(tf.matMul(meanRow, z));
          const centred = tf.sub(z, rows(means[i]));
          if (training) variances.push(tf.matMul(meanRow, tf.square(centred)));
          const scale = tf.mul(gammas[i], tf.rsqrt(tf.add(variances[i], BN_EPS)));
          z = tf.add(tf.mul(centred, rows(scale)), rows(betas[i]));
        }
        const out = tf.relu(z);
        h = this.skip && i > 0 ? tf.add(h, out) : out;
      }
      if (this.norm && training && stats) {
        stats.mean = tf.keep(tf.stack(means));
        stats.variance = tf.keep(tf.stack(variances));
      }
      return tf.add(tf.matMul(h, this.w.output), rows(this.b.output));
    }

    /* Loss, logits and the gradient of every trainable variable (by variable name). */
    lossAndGrads(x, y, stats) {
      let logits;
      const { value, grads } = tf.variableGrads(() => {
        logits = tf.keep(this.forward(x, true, stats));
        return tf.losses.softmaxCrossEntropy(y, logits);
      }, this.trainable);
      return { loss: value, logits, grads };
    }

    /* One SGD-with-momentum step on a batch. Returns {loss, accuracy, diverged, gradNorms};
     * gradNorms (the norm of each weight layer's gradient, input to output) only when asked. */
    step(batch, withNorms) {
      const stats = {};
      const { loss, logits, grads } = this.lossAndGrads(batch.x, batch.y, stats);
      const lossValue = loss.dataSync()[0];
      const out = { loss: lossValue, diverged: !(lossValue < DIVERGED_LOSS) };
      if (!out.diverged) {
        out.accuracy = accuracy(logits.dataSync(), batch.labels);
        if (withNorms) out.gradNorms = this.gradNorms(grads);
        this.optimizer.applyGradients(grads);
        if (this.norm) this.updateRunningStats(stats, batch.labels.length);
      }
      tf.dispose([loss, logits, grads, stats.mean, stats.variance]);
      return out;
    }

    gradNorms(grads) {
      const { input, hidden, output } = this.w;
      return readAndDispose(tf.tidy(() => tf.concat([
        tf.reshape(tf.norm(grads[input.name]), [1]),
        tf.sqrt(tf.sum(tf.square(grads[hidden.name]), [1, 2])),
        tf.reshape(tf.norm(grads[output.name]), [1]),
      ])));
    }

    /* torch's BatchNorm: running = (1 - m) running + m batch, with the unbiased variance. */
    updateRunningStats(stats, n) {
      const m = BN_MOMENTUM;
      tf.tidy(() => {
        this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(stats.mean, m)));
        const unbiased = tf.mul(stats.variance, n / (n - 1));
        this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
      });
    }

    /* Probability of class 1 at each of the points xy (Float32Array of n pairs), eval mode. */
    predict(xy) {
      return readAndDispose(tf.tidy(() => {
        const logits = this.forward(tf.tensor2d(xy, [xy.length / 2, 2]), false);
        return tf.softmax(logits).slice([0, 1], [-1, 1]);
      }));
    }

    /* torch's parameter names: [name, variable, index into a stacked variable or -1,
     * whether torch stores it transposed]. */
    namedParameters() {
      const last = this.depth - 1;
      const named = [
        ['layers.0.weight', this.w.input, -1, true],
        ['layers.0.bias', this.b.input, -1, false],
      ];
      for (let i = 1; i < last; i++) {
        named.push([`layers.${i}.weight`, this.w.hidden, i - 1, true]);
        named.push([`layers.${i}.bias`, this.b.hidden, i - 1, false]);
      }
      named.push([`layers.${last}.weight`, this.w.output, -1, true]);
      named.push([`layers.${last}.bias`, this.b.output, -1, false]);
      if (this.norm) {
        for (let i = 0; i < last; i++) {
          named.push([`norms.${i}.weight`, this.gamma, i, false]);
          named.push([`norms.${i}.bias`, this.beta, i, false]);
        }
      }
      return named;
    }

    /* Copy a torch state_dict (nested arrays by parameter name) into the network. */
    load(state) {
      const parts = new Map(this.trainable.map((v) => [v, []]));
      for (const [name, variable, index, transposed] of this.namedParameters()) {
        if (!(name in state)) throw new Error(`state has no ${name}`);
        const shape = index < 0 ? variable.shape : variable.shape.slice(1);
        parts.get(variable)[Math.max(index, 0)] = tf.tidy(() => {
          const value = tf.tensor(state[name]);
          const part = transposed ? tf.transpose(value) : value;
          if (part.size !== shape.reduce((a, b) => a * b, 1)) {
            throw new Error(`${name} has shape ${value.shape}, the page's network ${shape}`);
          }
          return tf.reshape(part, shape);
        });
      }
      for (const variable of this.trainable) {
        const list = parts.get(variable);
        variable.assign(tf.tidy(() => (list.length === 1 && list[0].rank === variable.rank ? list[0] : tf.stack(list))));
        tf.dispose(list);
      }
    }

    /* Logits, loss and gradients (torch's names and layouts) for x [n][2], labels [n]. */
    gradients(x, labels) {
      const onehot = labels.map((c) => Array.from({ length: CLASSES }, (_, k) => (k === c ? 1 : 0)));
      const xs = tf.tensor2d(x);
      const ys = tf.tensor2d(onehot);
      const { loss, logits, grads } = this.lossAndGrads(xs, ys);
      const result = { loss: loss.dataSync()[0], logits: logits.arraySync(), grads: {} };
      for (const [name, variable, index, transposed] of this.namedParameters()) {
        result.grads[name] = tf.tidy(() => {
          let grad = grads[variable.name];
          if (index >= 0) grad = tf.gather(grad, index);
          return (transposed ? tf.transpose(grad) : tf.reshape(grad, [-1])).arraySync();
        });
      }
      tf.dispose([xs, ys, loss, logits, grads]);
      return result;
    }

    dispose() {
      tf.dispose(this.trainable.concat(this.norm ? [this.runningMean, this.runningVar] : []));
      this.optimizer.dispose();
    }
  }

  /* The layers of a stacked variable. (tfjs's gradient of unstack fails when the stack holds
   * one layer, as at depth 3: that case is a reshape.) */
  function unstack(stacked) {
    return stacked.shape[0] === 1 ? [tf.reshape(stacked, stacked.shape.slice(1))] : tf.unstack(stacked);
  }

  function readAndDispose(tensor) {
    const values = Array.from(tensor.dataSync());
    tensor.dispose();
    return values;
  }

  function accuracy(logits, labels) {
    let right = 0;
    for (let i = 0; i < labels.length; i++) {
      const predicted = logits[CLASSES * i + 1] > logits[CLASSES * i] ? 1 : 0;
      right += predicted === labels[i] ? 1 : 0;
    }
    return right / labels.length;
  }

  global.ResnetPlaygroundNet = { Net, Batches, twoSpirals, mulberry32, WIDTH, CLASSES };
})(window);
