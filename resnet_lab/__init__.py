"""resnet_lab: the Residual Networks of He et al. (2016), ready to run, measure and teach.

Quick tour::

    import resnet_lab as rl
    env = rl.setup()                      # notebooks: device, size tier, seed
    model = rl.build("resnet56")          # any model of the papers, by name
    model = rl.build("resnet56", weights="zoo")   # ... trained (rl.weights lists them)
    rl.list_models()                      # every registered name
    print(rl.summary(model))              # per-stage shapes, parameters, multiply-adds

The package, by job (each subpackage's docstring says what it holds)::

    models/     every ResNet of the papers, built by name (rl.build)
    weights/    trained weights: the zoo's (shipped) and reference ones (rl.build(..., weights=))
    data/       datasets as tensors (CIFAR, image folders, synthetic), a device-resident loader
    engine/     training: recipes, mixed precision, checkpoints, resumable runs
    results/    the results store (one JSON record per run) and the studies read from it
    analysis/   measurements of networks: gradients, lesions, loss landscapes, experiments
    book/       what only the chapters use: explorers, widgets, figures, tables, notebook glue

and the modules beside them: ``cli``, ``suite`` and ``bench`` (the ``resnet-lab`` command),
``summary`` (shapes, parameters, multiply-adds), ``runtime`` (device, size tier, caches),
``io``, ``checkpoint``, ``distributed`` and ``provenance``, which the engine builds on.
"""

from importlib import import_module

from resnet_lab._version import __version__
from resnet_lab.book.notebook import glue, show_source
from resnet_lab.models import build, list_models
from resnet_lab.runtime import Setup, pick_device, pick_tier, setup
from resnet_lab.summary import count_macs, count_parameters, summary

# Submodules load on first use (rl.data, rl.engine, ...), so `import resnet_lab` stays light.
_SUBMODULES = {
    "analysis",
    "bench",
    "book",
    "checkpoint",
    "cli",
    "data",
    "distributed",
    "engine",
    "io",
    "models",
    "results",
    "runtime",
    "summary",
    "weights",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"resnet_lab.{name}")
    raise AttributeError(f"module 'resnet_lab' has no attribute {name!r}")


__all__ = [
    "Setup",
    "__version__",
    "build",
    "count_macs",
    "count_parameters",
    "glue",
    "list_models",
    "pick_device",
    "pick_tier",
    "setup",
    "show_source",
    "summary",
]
