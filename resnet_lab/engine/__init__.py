"""The training engine: SGD recipes, mixed precision, live history, checkpoints, resumable runs.

One function trains every network in the book::

    data = rl.data.load_data()                     # CIFAR-10 (or the offline copy)
    model = rl.build("resnet20")
    run = rl.engine.train(model, data, rl.engine.recipe("fast", epochs=5))
    run.history[-1]["test_error"]

Recipes (:func:`recipe`):

``paper``
    He et al. (2016, §4.2): SGD, momentum 0.9, weight decay 1e-4, batch 128,
    lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations in all. Nets of
    110 layers and deeper start at lr 0.01 "until the training error is below 80%
    (about 400 iterations)": implemented as the first 400 iterations at 0.01.
    ``epochs=`` turns the recipe into a shorter run whose milestones stay at the
    same fractions (1/2 and 3/4) of training; the 400-iteration warm-up is kept.
``fast``
    For short budgets (minutes on a GPU, one epoch on a CPU): a one-cycle
    schedule (Smith & Topin, 2019), linear rise to lr 0.2 over the first quarter of
    training then linear decay to zero, Nesterov momentum 0.9, weight decay 5e-4,
    label smoothing 0.1 (Szegedy et al., 2016), batch 128, 10 epochs.

``laptop``
    The laptop depth study (``results/README.md``): the paper's SGD (momentum 0.9, batch
    128, no label smoothing), weight decay 5e-4, a linear warm-up to lr 0.1 over the first
    5 % of steps (Goyal et al., 2017), then a linear decay to zero; 40 epochs.

Every field of :class:`TrainConfig` can be overridden: ``recipe("paper", lr=0.05)``.

The pieces :func:`train` is made of are public too: :func:`train_step` (autocast forward,
fp32 loss, backward, an SGD step through a :class:`torch.amp.GradScaler` from
:func:`make_scaler`; ``resnet-lab bench`` and the suite time this very step),
:class:`TrainState` (everything a run's progress is; its ``state_dict()`` is the
checkpoint) and :class:`Mean` (running means summed on the device)::

    state.model.train()
    for x, y in loader:
        out = rl.engine.train_step(state.model, state.optimizer, state.scaler, x, y)

Hardware choices (``amp="auto"``, ``channels_last=None``): bf16 autocast on GPUs
that have bf16 tensor cores (A100, H100), fp16 with gradient scaling on older GPUs (e.g.
the T4), bf16 on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX, see
:func:`cpu_has_native_bf16`), fp32 on other CPUs and on Apple MPS; channels-last memory
layout on CUDA and CPU. ``compile=True`` wraps the model in ``torch.compile``. Under
``torchrun`` the model is wrapped in DistributedDataParallel (see
:mod:`resnet_lab.distributed`). Every run records the precision it trained in
(``Run.precision``: 'fp32', 'bf16' or 'fp16').

Numerics under autocast (bf16 or fp16), chosen so that only the arithmetic of the
convolutions and the linear layer is lowered:

- the weights, their gradients, the momentum buffers and the SGD update stay fp32
  (autocast casts a copy of each weight for the convolution, never the parameter);
- BatchNorm reads the bf16 activations but keeps its affine parameters and running
  statistics in fp32 and accumulates its batch statistics in fp32, so the statistics
  that evaluation uses are fp32;
- the logits are cast to fp32 before the loss (cross-entropy and label smoothing in fp32),
  and the running sums of loss and errors are float64 (float32 on MPS);
- evaluation runs under the same autocast as training, so the test error is that of the
  network as it trains (logits cast to fp32 before the loss and the arg-max).
"""

from resnet_lab.engine.config import (
    AMP_MODES,
    RECIPES,
    SCHEDULES,
    TrainConfig,
    bookkeeping_fields,
    crop_padding,
    lr_at,
    recipe,
)
from resnet_lab.engine.errors import (
    ConfigError,
    Fix,
    OutOfMemory,
    StopTraining,
    TrainingDiverged,
    spell_argument,
)
from resnet_lab.engine.evaluate import evaluate
from resnet_lab.engine.loop import train
from resnet_lab.engine.meters import Clock, Mean
from resnet_lab.engine.precision import (
    amp_dtype,
    autocast,
    cpu_has_native_bf16,
    fused_sgd_supported,
    make_optimizer,
    make_scaler,
    precision_name,
    precision_of,
    sum_dtype,
)
from resnet_lab.engine.run import Run, history_curve, model_depth
from resnet_lab.engine.state import TrainState
from resnet_lab.engine.step import StepOutput, kernel_selection, train_step

__all__ = [
    "AMP_MODES",
    "RECIPES",
    "SCHEDULES",
    "Clock",
    "ConfigError",
    "Fix",
    "Mean",
    "OutOfMemory",
    "Run",
    "StepOutput",
    "StopTraining",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "amp_dtype",
    "autocast",
    "bookkeeping_fields",
    "evaluate",
    "kernel_selection",
    "make_scaler",
    "sum_dtype",
    "train_step",
    "fused_sgd_supported",
    "history_curve",
    "make_optimizer",
    "lr_at",
    "cpu_has_native_bf16",
    "crop_padding",
    "model_depth",
    "precision_name",
    "precision_of",
    "recipe",
    "spell_argument",
    "train",
]
