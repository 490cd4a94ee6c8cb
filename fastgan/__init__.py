"""fastgan: fused GPU kernels for GANs (Triton + CUDA), with PyTorch reference implementations."""
from . import nn, ops
from .ops import available_impls

__version__ = "0.1.0"
__all__ = ["ops", "nn", "available_impls", "__version__"]
