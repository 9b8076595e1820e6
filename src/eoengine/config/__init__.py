"""Project configuration: schema, loading and validation."""

from eoengine.config.load import load_config
from eoengine.config.schema import ProjectConfig

__all__ = ["ProjectConfig", "load_config"]
