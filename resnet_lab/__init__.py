"""resnet_lab: the Residual Networks of He et al. (2016), ready to run, measure and teach.

Quick tour::

    import resnet_lab as rl
    model = rl.build("resnet56")          # any model of the papers, by name
    rl.list_models()                      # every registered name
    rl.setup()                            # notebooks: device, size tier, seed
"""

from resnet_lab.runtime import Setup, pick_device, pick_tier, setup

__version__ = "0.1.0"

__all__ = ["Setup", "__version__", "pick_device", "pick_tier", "setup"]
