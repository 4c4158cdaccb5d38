"""Fitting: parameter recovery, bootstrap coverage, cross-validation, forms, JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from leanvl.errors import LeanvlError
from leanvl.scaling.law import FitResult, Law, compare_forms, fit_law


def test_recovers_known_parameters(synth, true_params):
    fit = fit_law(synth(noise=0.001, seed=1), n_boot=0, cv=False)
    for name, true in true_params.items():
        assert getattr(fit, name) == pytest.approx(true, rel=0.1), name
    assert fit.r2 > 0.99


def test_noiseless_fit_is_exact_from_any_start(synth, true_params):
    fit = fit_law(synth(noise=0.0), n_boot=0, cv=False, starts=1)
    assert fit.sse < 1e-12
    assert fit.alpha == pytest.approx(true_params["alpha"], rel=1e-4)


def test_bootstrap_intervals_contain_truth_seeded(synth, true_params):
    fit = fit_law(synth(noise=0.003, seed=3), n_boot=1000, seed=0, cv=False)
    assert fit.bootstrap["n"] == 1000 and fit.bootstrap["wall_s"] > 0
    for name, true in true_params.items():
        lo, hi = fit.ci[name]
        assert lo <= true <= hi, (name, lo, hi)
        assert lo <= getattr(fit, name) <= hi
    again = fit_law(synth(noise=0.003, seed=3), n_boot=1000, seed=0, cv=False)
    assert again.ci == fit.ci  # seeded: reproducible


def test_physical_bounds_hold(synth):
    data = synth(noise=0.02, seed=5)   # noisy enough that an unbounded fit could wander
    fit = fit_law(data, n_boot=50, cv=False)
    assert fit.D >= 0 and fit.alpha >= 0 and fit.beta >= 0 and fit.A > 0
    assert all(v[0] >= 0 for k, v in fit.ci.items() if k != "A")


def test_leave_one_size_out_cv(synth):
    fit = fit_law(synth(noise=0.002, seed=2), n_boot=0)
    cv = fit.cv
    assert set(cv["per_size"]) == {"0.5", "1", "2", "4", "8", "16"}
    assert 0 < cv["mean_abs_pts"] <= cv["max_abs_pts"] < 3.0  # noise is 0.2 points


def test_cv_skipped_with_two_sizes(synth):
    data = synth()
    two = data.subset(np.isin(data.n, [1.0, 4.0]))
    assert "skipped" in fit_law(two, n_boot=0).cv


def test_qv_form_wins_on_qv_data(synth):
    truth = {"A": 0.6, "alpha": 0.2, "beta": 0.15, "D": 0.1}
    data = synth(truth, noise=0.001, seed=4, q=30.0, form="qv")
    fit = fit_law(data, "qv", n_boot=0, cv=False)
    assert fit.beta == pytest.approx(0.15, rel=0.1)
    assert compare_forms(data)["better"] == "qv"


def test_qv_form_needs_text_tokens(synth):
    with pytest.raises(LeanvlError, match="text tokens"):
        fit_law(synth(), "qv", n_boot=0)


def test_json_round_trip_and_keys(synth):
    fit = fit_law(synth(seed=6), n_boot=100)
    d = json.loads(fit.to_json())
    assert {"alpha", "beta", "A", "D", "sse", "ci", "cv"} <= set(d)
    back = FitResult.from_dict(d)
    assert back.law == fit.law and back.ci == fit.ci
    assert np.allclose(back.law.error([1.0, 2.0], [4, 16]), fit.law.error([1.0, 2.0], [4, 16]))


def test_law_from_dict_rejects_missing_keys():
    with pytest.raises(LeanvlError, match="alpha"):
        Law.from_dict({"A": 1, "beta": 0.1, "D": 0})
