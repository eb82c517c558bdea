"""Trained weights, loaded like torchvision's: ``rl.build("resnet56", weights="zoo")``.

>>> import resnet_lab as rl
>>> model = rl.build("resnet20", weights="zoo")          # the end of the zoo run
>>> model = rl.build("resnet20", weights="zoo:step200")  # that run after 200 steps
>>> model = rl.build("resnet56", weights="akamaster")    # a reference, trained elsewhere
>>> w = rl.weights.get_weight("resnet20.zoo")
>>> w.metrics["test_error"], w.data, w.run, w.sha256      # what it scores, on which data, ...
>>> rl.weights.list_weights("resnet20")                   # every entry of one network

Names are ``<model>.<tag>``; ``build(model, weights=...)`` takes the tag alone, the full
name, or a :class:`Weights` entry. Tags:

``zoo``
    the end of the network's run in the zoo (``results/zoo/``: 30 epochs of the ``fast``
    recipe on ``cifar10-jpeg``, seed 0); ``zoo:final`` is the same entry.
``zoo:init``, ``zoo:step50``, ``zoo:step200``, ``zoo:epoch1``
    the same run at initialisation, after 50 and 200 optimizer steps and after one epoch
    (391 steps). ``zoo:init`` is not stored: it is rebuilt from the run's seed and checked
    against the stored digest.
``akamaster``
    ResNet-20/32/44/56 of akamaster/pytorch_resnet_cifar10, trained on the official
    CIFAR-10 files (:mod:`resnet_lab.weights.reference`).

Every entry carries its preprocessing (``mean``, ``std``; :meth:`Weights.normalize`), its
sha256 (every load checks it), the data variant its numbers were measured on, and those
numbers: test error and training error without augmentation, measured on the weights as
shipped, in fp32 with BatchNorm in eval mode. ``resnet-lab weights`` lists the entries and
``resnet-lab eval MODEL --weights TAG`` measures them again.

Modules: ``entry`` (:class:`Weights`), ``registry`` (names), ``reference`` (akamaster's
files), ``measure`` (test and training error of weights) and ``export`` (a finished zoo
run into shipped files and manifest entries).
"""

from resnet_lab.weights.entry import SHIPPED, Weights, WeightsError, file_sha256, state_digest
from resnet_lab.weights.registry import get_weight, list_weights, read_manifest, refresh, resolve

__all__ = [
    "SHIPPED",
    "Weights",
    "WeightsError",
    "file_sha256",
    "get_weight",
    "list_weights",
    "read_manifest",
    "refresh",
    "resolve",
    "state_digest",
]
