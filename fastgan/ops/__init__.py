"""fastgan.ops: fused GAN ops with 'ref' (PyTorch), 'triton' and 'cuda' backends."""
from ._backend import BackendUnavailableError, ImplStatus, available_impls
from .bias_act import ACTIVATIONS, bias_act, fused_leaky_relu

__all__ = ["available_impls", "ImplStatus", "BackendUnavailableError", "bias_act",
           "fused_leaky_relu", "ACTIVATIONS"]
