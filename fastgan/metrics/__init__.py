"""fastgan.metrics: image-quality metrics for picking checkpoints (download-free)."""
from __future__ import annotations

from .swd import SWDMetric, sliced_wasserstein_distance

__all__ = ["sliced_wasserstein_distance", "SWDMetric"]
