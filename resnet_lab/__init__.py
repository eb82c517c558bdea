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

from resnet_lab.notebook import glue, show_source
from resnet_lab.runtime import Setup, pick_device, pick_tier, setup

__version__ = "0.1.0"

# Heavier names load on first use, so `import resnet_lab` stays quick (the CLI's --help too).
_LAZY = {
    "build": "resnet_lab.models",
    "list_models": "resnet_lab.models",
    "summary": "resnet_lab.summary",
    "count_parameters": "resnet_lab.summary",
    "count_macs": "resnet_lab.summary",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
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
]
__all__ += ["setup", "show_source", "summary"]
