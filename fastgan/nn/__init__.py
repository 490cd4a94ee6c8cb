"""fastgan.nn: drop-in layers built on fastgan.ops."""
from .adain import AdaIN
from .activation import FusedLeakyReLU
from .resample import Blur, Downsample, Upsample
from .equalized import EqualConv2d, EqualLinear
from .modulated import ConstantInput, ModulatedConv2d, NoiseInjection, ToRGB
from .mapping import MappingNetwork
from .minibatch_std import MinibatchStdDev

__all__ = ["FusedLeakyReLU", "Blur", "Upsample", "Downsample", "AdaIN", "EqualLinear",
           "EqualConv2d", "ModulatedConv2d", "ToRGB", "NoiseInjection", "ConstantInput",
           "MappingNetwork", "MinibatchStdDev"]
