"""resnet_lab: the Residual Networks of He et al. (2016), ready to run, measure and teach.

Quick tour::

    import resnet_lab as rl
    env = rl.setup()                      # notebooks: device, size tier, seed
    model = rl.build("resnet56")          # any model of the papers, by name
    rl.list_models()                      # every registered name
    print(rl.summary(model))              # per-stage shapes, parameters, multiply-adds

Submodules: ``models`` (architectures), ``summary``, ``data``, ``engine`` (training),
``results`` (the results store), ``diagnostics``, ``plots``, ``widgets`` (live
ipywidgets controls), ``explorer`` (kernel-free explorers for the HTML book), ``cli``.
"""

from importlib import import_module

from resnet_lab._version import __version__
from resnet_lab.models import build, list_models
from resnet_lab.notebook import glue, show_source
from resnet_lab.runtime import Setup, pick_device, pick_tier, setup
from resnet_lab.summary import count_macs, count_parameters, summary

# Submodules load on first use (rl.data, rl.engine, ...), so `import resnet_lab` stays light.
_SUBMODULES = {
    "bench",
    "checkpoint",
    "cli",
    "data",
    "diagnostics",
    "distributed",
    "engine",
    "experiments",
    "explorer",
    "io",
    "landscape",
    "laptop",
    "lesion",
    "models",
    "notebook",
    "plots",
    "results",
    "runtime",
    "studies",
    "summary",
    "widgets",
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
