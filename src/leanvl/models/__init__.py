"""Image encoders (registry + uniform feature API) and their export/import."""
from leanvl.models.encoders import ENCODERS, Encoder, create_encoder, register_encoder

__all__ = ["ENCODERS", "Encoder", "create_encoder", "register_encoder"]
