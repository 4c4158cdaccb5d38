"""Synthetic scenes: determinism, disjoint splits, attribute schema, captions that name the attributes."""
from __future__ import annotations

import numpy as np
import pytest

from leanvl.data.synthetic import (BACKGROUNDS, COLORS, SHAPES, SIZES, SPLITS, scene_for_index, synthetic_key,
                                   words)
from leanvl.errors import LeanvlError


def test_same_seed_same_pixels_caption_attrs():
    for i in (0, 7, 123):
        a, b = scene_for_index(3, "train", i), scene_for_index(3, "train", i)
        assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
        assert a[1:] == b[1:]
    assert not np.array_equal(np.asarray(scene_for_index(3, "train", 0)[0]),
                              np.asarray(scene_for_index(4, "train", 0)[0]))


def test_splits_are_disjoint_streams():
    pixels = {split: {np.asarray(scene_for_index(0, split, i)[0]).tobytes() for i in range(60)} for split in SPLITS}
    assert all(len(p) == 60 for p in pixels.values())  # no duplicates within a split either
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not pixels[a] & pixels[b]
    assert synthetic_key(0, "train", 5) != synthetic_key(0, "val", 5)
    assert "." not in synthetic_key(0, "train", 5)


@pytest.mark.parametrize("size", [32, 64, 224, 336])
def test_sizes_and_attribute_schema(size):
    for i in range(20):
        image, caption, attrs = scene_for_index(1, "val", i, size=size)
        assert image.size == (size, size) and image.mode == "RGB"
        assert set(attrs) == {"objects", "word", "background"} and attrs["background"] in BACKGROUNDS
        assert 1 <= len(attrs["objects"]) <= 4
        for o in attrs["objects"]:
            assert set(o) == {"shape", "color", "size", "x", "y", "bbox"}
            assert o["shape"] in SHAPES and o["color"] in COLORS and o["size"] in SIZES
            x0, y0, x1, y1 = o["bbox"]
            assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
            assert x0 <= o["x"] * size <= x1 and y0 <= o["y"] * size <= y1
            # the object's colour is actually drawn at its centre (shapes are solid there, except rings)
            if o["shape"] != "ring":
                px = image.getpixel((int(o["x"] * size), int(o["y"] * size)))
                assert max(abs(p - q) for p, q in zip(px, COLORS[o["color"]])) < 40


def test_captions_name_every_object_and_the_word():
    seen_shapes, seen_colors, templates = set(), set(), set()
    for i in range(300):
        _, caption, attrs = scene_for_index(0, "train", i)
        for o in attrs["objects"]:
            assert o["color"] in caption and o["shape"] in caption, (caption, attrs)
            seen_shapes.add(o["shape"])
            seen_colors.add(o["color"])
        if attrs["word"]:
            assert f'"{attrs["word"]}"' in caption
        templates.add(" ".join(w for w in caption.split() if w not in COLORS and w not in SHAPES)[:12])
    assert seen_shapes == set(SHAPES) and len(SHAPES) >= 6
    assert seen_colors == set(COLORS) and len(COLORS) >= 8
    assert len(templates) >= 8  # varied phrasing


def test_word_fraction_and_word_list():
    assert len(words()) >= 200 and len(set(words())) == len(words())
    with_words = sum(scene_for_index(0, "train", i)[2]["word"] is not None for i in range(400))
    assert 0.2 * 400 < with_words < 0.4 * 400
    assert all(scene_for_index(0, "train", i, word_fraction=0.0)[2]["word"] is None for i in range(50))
    for fraction in (0.0, 1.0):
        for i in range(20):
            image, _, attrs = scene_for_index(0, "train", i, word_fraction=fraction)
            assert (attrs["word"] in words()) if fraction else attrs["word"] is None
            # outside the objects' bboxes only background and (when present) the word's ink is drawn
            inked = _off_bbox_ink(image, attrs)
            assert inked >= 10 if fraction else inked == 0


def _off_bbox_ink(image, attrs) -> int:
    """Pixels outside every object bbox that are nearer the text ink colour than the background colour."""
    arr = np.asarray(image).astype(int)
    mask = np.ones(arr.shape[:2], bool)
    for o in attrs["objects"]:
        x0, y0, x1, y1 = o["bbox"]
        mask[y0:y1, x0:x1] = False
    bg = np.array(BACKGROUNDS[attrs["background"]])
    ink = np.zeros(3) if bg.sum() > 384 else np.full(3, 255)
    px = arr[mask]
    return int((np.abs(px - ink).sum(1) < np.abs(px - bg).sum(1)).sum())


@pytest.mark.parametrize("kwargs", [{"size": 8}, {"size": 1000}, {"word_fraction": 1.5}])
def test_bad_parameters_raise_leanvl_error(kwargs):
    with pytest.raises(LeanvlError):
        scene_for_index(0, "train", 0, **kwargs)
    with pytest.raises(LeanvlError):
        scene_for_index(0, "holdout", 0)
