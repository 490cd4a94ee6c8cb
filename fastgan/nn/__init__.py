"""fastgan.nn: drop-in layers built on fastgan.ops."""
from .adain import AdaIN
from .activation import FusedLeakyReLU
from .resample import Blur, Downsample, Upsample

__all__ = ["FusedLeakyReLU", "Blur", "Upsample", "Downsample", "AdaIN"]
