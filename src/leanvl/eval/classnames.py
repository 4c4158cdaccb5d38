"""Class names and prompt templates for zero-shot classification.

Built-in tasks on synthetic scenes: `shape` and `color` of single-object scenes (their captions name both). The
templates follow the captions' own phrasing; colour prompts are an ensemble over every shape ("a red circle",
"a red square", ...), shape prompts over phrasings and sizes. ImageFolder roots use their class-folder names
(underscores read as spaces) or a `--classnames` file, with generic photo/drawing templates.
"""
from __future__ import annotations

import os

from leanvl.errors import LeanvlError

GENERIC_TEMPLATES = (
    "a photo of a {}.", "a picture of a {}.", "a drawing of a {}.", "an image of a {}.", "a photo of the {}.",
    "a close-up photo of a {}.", "a low resolution photo of a {}.", "a simple drawing of a {}.", "{}",
)


def _shape_templates() -> tuple[str, ...]:
    sizes = ("small", "medium", "large")
    return ("a {}", "a picture of a {}", "a simple drawing of a {}", "an image of a {}",
            *(f"a {s} {{}}" for s in sizes), *(f"a picture of a {s} {{}}" for s in sizes))


def _color_templates() -> tuple[str, ...]:
    from leanvl.data.synthetic import SHAPES

    return tuple(f"a {{}} {shape}" for shape in SHAPES) + tuple(f"a picture of a {{}} {shape}" for shape in SHAPES)


def synthetic_tasks() -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """Built-in zero-shot tasks: name -> (class names, templates with one `{}` for the class name)."""
    from leanvl.data.synthetic import COLORS, SHAPES

    return {"shape": (list(SHAPES), _shape_templates()), "color": (list(COLORS), _color_templates())}


def read_classnames(path: str) -> list[str]:
    """One class name per non-empty line of `path`."""
    if not os.path.isfile(path):
        raise LeanvlError(f"--classnames {path}: no such file")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise LeanvlError(f"--classnames {path}: no class names in the file")
    return names


def folder_classnames(folders: list[str], classnames_file: str = "") -> list[str]:
    """Readable class names for ImageFolder class folders (or the lines of `classnames_file`, one per folder)."""
    if not folders:
        raise LeanvlError("no class names: the ImageFolder root has no class folders (or pass --classnames FILE)")
    if not classnames_file:
        return [f.replace("_", " ") for f in folders]
    names = read_classnames(classnames_file)
    if len(names) != len(folders):
        raise LeanvlError(f"--classnames {classnames_file}: {len(names)} names for {len(folders)} class folders")
    return names
