"""Shared helpers: synthetic scaling data from known parameters."""
from __future__ import annotations

import numpy as np
import pytest

from leanvl.scaling.io import ScalingData

TRUE = {"A": 0.5, "alpha": 0.3, "beta": 0.1, "D": 0.15}
SIZES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
TOKENS = (1, 4, 16, 64, 256, 576)


def synth(params: dict = TRUE, noise: float = 0.002, seed: int = 0, q: float | None = None,
          form: str = "paper") -> ScalingData:
    """Grid of SIZES x TOKENS with error from the law plus Gaussian noise; q varies per row when given."""
    rng = np.random.default_rng(seed)
    n, v = (a.ravel().astype(float) for a in np.meshgrid(SIZES, TOKENS, indexing="ij"))
    qq = None if q is None else rng.choice([0.0, q, 4 * q], size=n.size)
    t = v + qq if form == "qv" else v
    y = params["A"] * n ** -params["alpha"] * t ** -params["beta"] + params["D"] + rng.normal(0, noise, n.size)
    return ScalingData(n, v, y, qq, "synthetic", "synthetic.csv")


@pytest.fixture(name="synth")
def synth_fixture():
    """The synth(params, noise, seed, q, form) generator."""
    return synth


@pytest.fixture(name="true_params")
def true_params_fixture() -> dict:
    """Parameters synth() uses by default."""
    return dict(TRUE)


@pytest.fixture
def write_csv(tmp_path):
    """Write text to results.csv in a temp dir and return its path."""
    def _write(text: str, name: str = "results.csv"):
        p = tmp_path / name
        p.write_text(text)
        return p
    return _write
