"""``python -m tsc_toolkit.sagemaker.train``: the CNN-KMeans training container's entry point.

This name is what training jobs run (and what earlier jobs' entry scripts import), so it
stays here; the code, which runs inside the container, is
:mod:`tsc_toolkit.sagemaker.container.train`.
"""

import sys

from .container.train import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
