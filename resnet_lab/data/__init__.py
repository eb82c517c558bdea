"""Datasets as tensors: CIFAR-10/100, image folders, synthetic images, and a device-resident loader.

Every dataset becomes an :class:`ImageData`: the whole train and test splits as
``uint8`` tensors of shape ``(N, 3, H, W)`` plus ``int64`` labels. CIFAR is small
(50,000 images are 150 MB as bytes), so the training engine keeps it on the
training device and augments whole batches there (:class:`GpuLoader`) instead of
transforming one PIL image at a time in worker processes.

Where data comes from (:func:`load_data`):

``"cifar10"`` / ``"cifar100"``
    The official archives of Krizhevsky (2009), downloaded once into the cache
    folder (``RESNET_LAB_DATA`` if it is a folder, else ``~/.cache/resnet_lab``),
    checked against their published MD5 and extracted. A corrupt or partial
    archive is reported, deleted and downloaded again, never used.
a path
    An image folder, as a directory or a ``.zip`` holding ``train/<class>/*`` and
    ``test/<class>/*`` (classes in sorted order, as torchvision's ``ImageFolder``).
    Its results carry the folder's name as data variant, e.g. ``cifar10-jpeg``.
``"synthetic"``
    Small coloured-pattern images generated on the fly: everything runs with no
    data and no network, and every result made from them says ``synthetic``.
``"auto"``
    ``RESNET_LAB_DATA`` (an image folder) -> official CIFAR-10 in the cache ->
    download -> synthetic (with a warning).
"""

from resnet_lab.data.cifar import CIFAR_ARCHIVES, archive_name, load_cifar
from resnet_lab.data.dataset import DataError, ImageData, balanced_indices, subset, synthetic
from resnet_lab.data.folders import load_image_folder
from resnet_lab.data.loader import GpuLoader, augment_batch, default_channels_last
from resnet_lab.data.sources import load_data, resize

__all__ = [
    "CIFAR_ARCHIVES",
    "DataError",
    "GpuLoader",
    "ImageData",
    "archive_name",
    "augment_batch",
    "balanced_indices",
    "default_channels_last",
    "load_cifar",
    "load_data",
    "load_image_folder",
    "resize",
    "subset",
    "synthetic",
]
