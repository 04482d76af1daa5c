"""Generator architectures and their configs."""

from .base import Generator
from .config import DEEP_CONFIGS, BigGANConfig, BigGANDeepConfig

__all__ = ["Generator", "BigGANDeepConfig", "BigGANConfig", "DEEP_CONFIGS"]
