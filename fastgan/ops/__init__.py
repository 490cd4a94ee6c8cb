"""fastgan.ops: fused GAN ops with 'ref' (PyTorch), 'triton' and 'cuda' backends."""
from ._backend import BackendUnavailableError, ImplStatus, available_impls
from .bias_act import ACTIVATIONS, bias_act, fused_leaky_relu
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from .conv2d_resample import conv2d_resample
from .conv2d import conv2d, conv_transpose2d, no_weight_gradients
from .penalties import (PathLengthPenalty, path_length_penalty, r1_penalty, r2_penalty,
                        wgan_gp_penalty)
from .modulated_conv2d import modulated_conv2d
from .adain import adain

__all__ = ["available_impls", "ImplStatus", "BackendUnavailableError", "bias_act",
           "fused_leaky_relu", "ACTIVATIONS", "upfirdn2d", "setup_filter", "upsample2d",
           "downsample2d", "filter2d", "conv2d_resample", "conv2d", "conv_transpose2d",
           "no_weight_gradients", "r1_penalty", "r2_penalty", "wgan_gp_penalty",
           "path_length_penalty", "PathLengthPenalty", "modulated_conv2d", "adain"]
