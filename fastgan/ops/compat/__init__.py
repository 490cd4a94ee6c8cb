"""fastgan.ops.compat: third-party call signatures on top of fastgan's ops.

* :mod:`fastgan.ops.compat.rosinality` -- rosinality/stylegan2-pytorch's ``op`` package
  (``upfirdn2d``, ``fused_leaky_relu``, ``FusedLeakyReLU``) and its ``make_kernel``.

NVlabs code (stylegan2-ada-pytorch, stylegan3) needs no shim: ``fastgan.ops`` already uses its
signatures (``bias_act``, ``upfirdn2d``, ``conv2d_resample``).
"""
from . import rosinality

__all__ = ["rosinality"]
