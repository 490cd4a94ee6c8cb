"""fastgan.nn: drop-in layers built on fastgan.ops."""
from .activation import FusedLeakyReLU

__all__ = ["FusedLeakyReLU"]
