"""``python -m resnet_lab.cli`` (and ``torchrun ... -m resnet_lab.cli``): the ``resnet-lab`` command."""

import sys

from resnet_lab.cli import main

sys.exit(main())
