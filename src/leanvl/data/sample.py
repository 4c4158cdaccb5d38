"""The unit of data flowing out of every source: a decoded image with its caption, and the reasons a raw item is skipped."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

# Every reason a raw item can be dropped; DataStats and the metrics report counts under these names.
SKIP_REASONS = (
    "undecodable_image",  # image bytes/file that Pillow cannot decode
    "empty_caption",      # caption present but blank after stripping
    "missing_image",      # no image member (shards) or no such file (CSV)
    "missing_caption",    # no caption member (shards) or empty caption cell missing (CSV)
    "no_label_ids",       # caption encodes to no label id (nothing for a classification objective to learn)
    "no_turns",           # LLaVA entry whose conversation has no non-empty answer turn
    "truncated_tar",      # a tar ends mid-member: the unreadable rest counts as one item
    "unreadable_shard",   # a remote shard that failed every retry (an unreachable one counts as one item)
)


@dataclass
class Sample:
    """One decoded sample: `attrs` holds the structured scene attributes ({} for non-synthetic data)."""

    key: str
    image: Image.Image
    caption: str
    attrs: dict[str, Any] = field(default_factory=dict)


class SkipSample(Exception):
    """Raised by `Source.decode` for a raw item that must be dropped; `reason` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
