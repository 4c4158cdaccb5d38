"""The one trainer shared by every objective, with checkpointing, resume and distributed helpers."""
