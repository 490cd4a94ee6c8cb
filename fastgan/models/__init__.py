"""fastgan.models: GAN models built on fastgan.nn.

``fastgan.models.stylegan2``: ``Generator``, ``Discriminator`` (config F);
:func:`load_rosinality` converts rosinality/stylegan2-pytorch checkpoints onto them.
"""
from . import stylegan2
from .convert import load_rosinality

__all__ = ["stylegan2", "load_rosinality"]
