"""A strict fake of Coder's AI configuration REST API for tests (see server.py)."""

from .model_config import MODEL_CONFIG_FAMILIES
from .providers import mask_secret
from .server import FakeCoder, RecordedRequest

__all__ = ["MODEL_CONFIG_FAMILIES", "FakeCoder", "RecordedRequest", "mask_secret"]
