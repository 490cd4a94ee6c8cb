"""fastgan.train: the StyleGAN2 training system.

``Trainer(TrainConfig(...)).run()`` (or ``fastgan train ...``): losses, lazy R1 / path-length
regularisation, EMA, mixed precision, differentiable augmentation (DiffAugment / ADA),
multi-process data parallelism, atomic checkpoints with exact resume, and run logging.
"""
from .augment import AdaptiveAugment, DiffAugment, diff_augment, make_augment
from .checkpoint import CheckpointManager, atomic_save, load_checkpoint, resolve_resume
from .config import TrainConfig, load_config_file
from .trainer import Trainer, TrainingDiverged, build_models, model_kwargs, train

__all__ = ["TrainConfig", "load_config_file", "Trainer", "TrainingDiverged", "train",
           "build_models", "model_kwargs", "AdaptiveAugment", "DiffAugment", "diff_augment",
           "make_augment", "CheckpointManager", "atomic_save", "load_checkpoint",
           "resolve_resume"]
