"""Built-in synthetic scenes: seeded procedural images of coloured shapes (and sometimes a word) with natural captions.

Sample `i` of split `s` is a pure function of (seed, s, i, size, word_fraction): `scene_for_index` derives its own
`random.Random` from those, so any sample can be regenerated anywhere (training on the fly, probes, VQA) without
state. The splits use disjoint seed streams. Attributes follow the schema in docs/CONTRACTS.md.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from leanvl.errors import LeanvlError

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross", "diamond", "ring")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "orange": (255, 140, 0), "yellow": (250, 220, 30), "green": (30, 160, 50),
    "cyan": (0, 200, 220), "blue": (30, 70, 230), "purple": (130, 40, 180), "pink": (250, 110, 190),
    "brown": (135, 80, 30), "white": (250, 250, 250), "black": (10, 10, 10),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "gray": (128, 128, 128), "white": (255, 255, 255), "beige": (235, 225, 200),
}
SIZES: dict[str, float] = {"small": 0.09, "medium": 0.13, "large": 0.18}  # object radius / image side
SPLITS = ("train", "val", "test")
DEFAULT_SIZE = 64
MIN_SIZE, MAX_SIZE = 32, 336
DEFAULT_WORD_FRACTION = 0.3
_MIN_CONTRAST = 120.0  # RGB distance below which a colour is not drawn on a background
_SUPERSAMPLE = 2  # draw at 2x and box-downsample: cheap anti-aliasing


@dataclass
class _Word:
    text: str
    font_size: int  # at final scale
    x0: float  # left/top of the text's ink box, final pixels
    y0: float
    width: float
    height: float
    where: str  # "top" | "bottom"


@lru_cache(maxsize=1)
def words() -> tuple[str, ...]:
    """The built-in list of common short English words rendered into scenes."""
    text = resources.files("leanvl.data").joinpath("assets/words.txt").read_text(encoding="utf-8")
    return tuple(dict.fromkeys(w.strip() for w in text.splitlines() if w.strip()))


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _contrasting(bg: tuple[int, int, int]) -> list[str]:
    return [c for c, rgb in COLORS.items() if math.dist(rgb, bg) >= _MIN_CONTRAST]


def _rng(seed: int, split: str, index: int) -> random.Random:
    # str seeds are hashed with SHA-512 by `random`: stable across processes and platforms.
    return random.Random(f"leanvl-synthetic/{seed}/{split}/{index}")


def check_params(size: int, split: str, word_fraction: float) -> None:
    """Raise LeanvlError for an image size, split or word fraction that scenes cannot use."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise LeanvlError(f"synthetic image size must be in [{MIN_SIZE}, {MAX_SIZE}], got {size}")
    if split not in SPLITS:
        raise LeanvlError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not 0.0 <= word_fraction <= 1.0:
        raise LeanvlError(f"word fraction must be in [0, 1], got {word_fraction}")


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices of a shape of radius r centred at (cx, cy); circles/rings give their bounding square."""
    def polar(n: int, radii: list[float], start_deg: float) -> list[tuple[float, float]]:
        return [(cx + radii[k % len(radii)] * math.cos(math.radians(start_deg + 360 * k / n)),
                 cy + radii[k % len(radii)] * math.sin(math.radians(start_deg + 360 * k / n))) for k in range(n)]

    if shape in ("circle", "ring"):
        return [(cx - r, cy - r), (cx + r, cy + r)]
    if shape == "square":
        h = 0.82 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return polar(4, [r], -90)
    if shape == "triangle":
        return polar(3, [r], -90)
    if shape == "hexagon":
        return polar(6, [r], 0)
    if shape == "star":
        return polar(10, [r, 0.45 * r], -90)
    if shape == "cross":
        a = 0.33 * r
        pts = [(a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a), (-r, a), (-r, -a), (-a, -a), (-a, -r)]
        return [(cx + x, cy + y) for x, y in pts]
    raise ValueError(f"unknown shape {shape!r}")


def _place_word(rng: random.Random, size: int, bg: str) -> _Word:
    text = rng.choice(words())
    margin = max(1, size // 32)
    fs = max(6, round(size * 0.2))
    while True:
        x0, y0, x1, y1 = _font(fs * _SUPERSAMPLE).getbbox(text)
        w, h = (x1 - x0) / _SUPERSAMPLE, (y1 - y0) / _SUPERSAMPLE
        if w <= size - 2 * margin or fs <= 6:
            break
        fs -= 1
    where = rng.choice(("top", "bottom"))
    y = margin + rng.uniform(0, 0.05 * size) if where == "top" else size - margin - h - rng.uniform(0, 0.05 * size)
    x = rng.uniform(margin, max(margin, size - margin - w))
    return _Word(text, fs, x, y, w, h, where)


def _fits(cx: float, cy: float, r: float, placed: list[dict[str, Any]], word: _Word | None, gap: float) -> bool:
    for o in placed:
        if math.hypot(cx - o["_cx"], cy - o["_cy"]) < r + o["_r"] + gap:
            return False
    if word is not None:
        nx = min(max(cx, word.x0), word.x0 + word.width)
        ny = min(max(cy, word.y0), word.y0 + word.height)
        if math.hypot(cx - nx, cy - ny) < r + gap:
            return False
    return True


def _place_objects(rng: random.Random, size: int, bg: str, word: _Word | None) -> list[dict[str, Any]]:
    colors = _contrasting(BACKGROUNDS[bg])
    gap = max(1.0, size / 32)
    placed: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        shape, color = rng.choice(SHAPES), rng.choice(colors)
        if any(o["shape"] == shape and o["color"] == color for o in placed):
            continue  # keep (shape, colour) pairs unique within a scene so captions stay unambiguous
        size_name = rng.choice(tuple(SIZES))
        r = SIZES[size_name] * size
        for _attempt in range(30):
            cx, cy = rng.uniform(r + gap, size - r - gap), rng.uniform(r + gap, size - r - gap)
            if _fits(cx, cy, r, placed, word, gap):
                pts = _shape_points(shape, cx, cy, r)
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                bbox = [max(0, math.floor(min(xs))), max(0, math.floor(min(ys))),
                        min(size, math.ceil(max(xs))), min(size, math.ceil(max(ys)))]
                placed.append({"shape": shape, "color": color, "size": size_name, "x": round(cx / size, 4),
                               "y": round(cy / size, 4), "bbox": bbox, "_cx": cx, "_cy": cy, "_r": r})
                break
    return placed


def _render(size: int, bg: str, objects: list[dict[str, Any]], word: _Word | None) -> Image.Image:
    s = _SUPERSAMPLE
    img = Image.new("RGB", (size * s, size * s), BACKGROUNDS[bg])
    draw = ImageDraw.Draw(img)
    for o in objects:
        fill = COLORS[o["color"]]
        pts = [(x * s, y * s) for x, y in _shape_points(o["shape"], o["_cx"], o["_cy"], o["_r"])]
        if o["shape"] == "circle":
            draw.ellipse(pts, fill=fill)
        elif o["shape"] == "ring":
            draw.ellipse(pts, outline=fill, width=max(2, round(0.4 * o["_r"] * s)))
        else:
            draw.polygon(pts, fill=fill)
    if word is not None:
        font = _font(word.font_size * s)
        left, top, _, _ = font.getbbox(word.text)
        ink = (0, 0, 0) if sum(BACKGROUNDS[bg]) > 384 else (255, 255, 255)
        draw.text((word.x0 * s - left, word.y0 * s - top), word.text, font=font, fill=ink)
    return img.reduce(s) if s > 1 else img


_NUMBERS = {2: "two", 3: "three", 4: "four"}


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun(o: dict[str, Any], rng: random.Random) -> str:
    """'red star' or 'large red star': colour and shape always, size half of the time."""
    core = f"{o['color']} {o['shape']}"
    return f"{o['size']} {core}" if rng.random() < 0.5 else core


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _region(o: dict[str, Any]) -> str:
    v = "top" if o["y"] < 0.36 else "bottom" if o["y"] > 0.64 else ""
    h = "left" if o["x"] < 0.36 else "right" if o["x"] > 0.64 else ""
    return f"the {v} {h}".replace("  ", " ").strip() if (v or h) else "the center"


def _relation(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Where a is relative to b, along the axis with the larger offset."""
    dx, dy = b["x"] - a["x"], b["y"] - a["y"]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    return "above" if dy > 0 else "below"


def _describe_objects(objects: list[dict[str, Any]], bg: str, rng: random.Random) -> str:
    nouns = [_a(_noun(o, rng)) for o in objects]
    if len(objects) == 1:
        o, n = objects[0], nouns[0]
        return rng.choice([
            f"{n} on a {bg} background", f"a picture of {n}", f"{n} in {_region(o)} of the image",
            f"there is {n} in {_region(o)}", f"a simple drawing of {n}", f"{n} against a {bg} background",
        ])
    count = _NUMBERS[len(objects)]
    options = [_join(nouns), f"{count} shapes: {_join(nouns)}", f"{_join(nouns)} on a {bg} background",
               f"a {bg} image with {count} shapes, {_join(nouns)}"]
    rel = f"{nouns[0]} {_relation(objects[0], objects[1])} {nouns[1]}"
    rest = f", and {_join(nouns[2:])}" if len(nouns) > 2 else ""
    options += [rel + rest, f"{rel}{rest} on a {bg} background"]
    return rng.choice(options)


def describe(attrs: dict[str, Any], rng: random.Random, word_where: str | None = None) -> str:
    """A natural caption naming every object's colour and shape, one relation or region, and the word if any."""
    scene = _describe_objects(attrs["objects"], attrs["background"], rng)
    word = attrs.get("word")
    if not word:
        return scene
    at = f" at the {word_where}" if word_where else ""
    return rng.choice([
        f'{scene}, with the word "{word}" written{at}', f'the word "{word}" is written{at} above {scene}'
        if word_where == "top" else f'the word "{word}" is written{at} below {scene}',
        f'a sign that says "{word}" and {scene}', f'{scene}; the text reads "{word}"',
        f'"{word}" written{at}, next to {scene}',
    ])


def scene_for_index(seed: int, split: str, index: int, *, size: int = DEFAULT_SIZE,
                    word_fraction: float = DEFAULT_WORD_FRACTION) -> tuple[Image.Image, str, dict[str, Any]]:
    """Sample `index` of `split`: (RGB image size x size, caption, attrs); a pure function of its arguments."""
    check_params(size, split, word_fraction)
    rng = _rng(seed, split, index)
    bg = rng.choice(tuple(BACKGROUNDS))
    word = _place_word(rng, size, bg) if rng.random() < word_fraction else None
    objects = _place_objects(rng, size, bg, word)
    image = _render(size, bg, objects, word)
    attrs = {"objects": [{k: v for k, v in o.items() if not k.startswith("_")} for o in objects],
             "word": word.text if word else None, "background": bg}
    caption = describe(attrs, rng, word_where=word.where if word else None)
    return image, caption, attrs


def synthetic_key(seed: int, split: str, index: int) -> str:
    """The sample key of a synthetic scene (no dots, so it is a valid webdataset key)."""
    return f"synth-s{seed}-{split}-{index:09d}"


# ----- letter grids (the `synthetic+ocr` question set) ---------------------------------------------------------------
OCR_ALPHABET = "ABCDEHKMOSTX"  # 12 capitals that stay distinct at ~12 px
OCR_GRID = 2  # letters per row and per column (one per corner)
OCR_GRID_FRACTION = 0.5  # share of `synthetic+ocr` scenes that are letter grids (the rest: the ordinary scene)


def _ocr_rng(seed: int, split: str, index: int) -> random.Random:
    return random.Random(f"leanvl-synthetic-ocr/{seed}/{split}/{index}")


def is_ocr_grid(seed: int, split: str, index: int, fraction: float = OCR_GRID_FRACTION) -> bool:
    """Whether sample `index` of `split` is a letter grid in `synthetic+ocr` (a pure function of its arguments)."""
    return _ocr_rng(seed, split, index).random() < fraction


def ocr_grid_for_index(seed: int, split: str, index: int, *, size: int = DEFAULT_SIZE,
                       grid: int = OCR_GRID) -> tuple[Image.Image, str, dict[str, Any]]:
    """A `grid` x `grid` table of capitals from OCR_ALPHABET, one letter centred (with a small jitter) in each cell:
    (RGB image, caption, attrs with `grid` = the rows as strings, top row first); a pure function of its arguments."""
    check_params(size, split, 0.0)
    rng = _ocr_rng(seed, split, index)
    rng.random()  # the is_ocr_grid draw
    bg = rng.choice(tuple(BACKGROUNDS))
    rows = ["".join(rng.choice(OCR_ALPHABET) for _ in range(grid)) for _ in range(grid)]
    s, cell = _SUPERSAMPLE, size / grid
    font = _font(max(6, round(cell * 0.8)) * s)
    ink = (0, 0, 0) if sum(BACKGROUNDS[bg]) > 384 else (255, 255, 255)
    img = Image.new("RGB", (size * s, size * s), BACKGROUNDS[bg])
    draw = ImageDraw.Draw(img)
    jitter = max(0.5, cell * 0.08)
    for r, row in enumerate(rows):
        for c, letter in enumerate(row):
            cx, cy = (c + 0.5) * cell + rng.uniform(-jitter, jitter), (r + 0.5) * cell + rng.uniform(-jitter, jitter)
            draw.text((cx * s, cy * s), letter, font=font, fill=ink, anchor="mm")
    caption = f"a {grid} by {grid} grid of letters on a {bg} background: " + ", ".join(" ".join(row) for row in rows)
    attrs = {"objects": [], "word": None, "background": bg, "grid": rows}
    return img.reduce(s) if s > 1 else img, caption, attrs
