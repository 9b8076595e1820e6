"""Model architectures behind one registry."""

from eoengine.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
