"""Binomial weights, log-space Huber fit, cluster bootstraps: recovery on binomial-noise data, wider intervals."""
import json

import numpy as np
import pytest

from leanvl.cli import main
from leanvl.errors import DataError
from leanvl.scaling.io import ScalingData, load_results_csv, reference_path
from leanvl.scaling.law import fit_law


TRUE = {"A": 0.5, "alpha": 0.3, "beta": 0.1, "D": 0.15}


@pytest.fixture(autouse=True)
def _same_truth_as_conftest(true_params):
    assert true_params == TRUE


@pytest.fixture(name="grid")
def grid_fixture(synth) -> ScalingData:
    """The conftest grid with the law's exact error (no noise)."""
    return synth(noise=0.0)


def binomial_data(grid: ScalingData, seed: int, counts=(50, 500, 20000), outlier: bool = False) -> ScalingData:
    """Each grid row's accuracy = hits / n with hits ~ Binomial(n, 1 - law error), n drawn from `counts`."""
    rng = np.random.default_rng(seed)
    count = rng.choice(counts, len(grid)).astype(float)
    y = rng.binomial(count.astype(int), grid.y) / count
    if outlier:
        y[0] = 0.95
    return ScalingData(grid.n, grid.v, y, None, "binomial", "binomial.csv", None, count)


def miss(fit) -> float:
    """Largest parameter miss, beta counted double (it is three times smaller than alpha)."""
    return max(abs(fit.alpha - TRUE["alpha"]), 2 * abs(fit.beta - TRUE["beta"]), abs(fit.D - TRUE["D"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binomial_weights_recover_parameters_better_than_unweighted(grid, seed):
    data = binomial_data(grid, seed)
    plain = fit_law(data, n_boot=0, cv=False)
    weighted = fit_law(data, n_boot=0, cv=False, weights="binomial")
    assert miss(weighted) < 0.035 and miss(weighted) < miss(plain)
    assert weighted.options == {"loss": "squares", "weights": "binomial"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huber_recovers_parameters_and_resists_an_outlier(grid, seed):
    assert miss(fit_law(binomial_data(grid, seed, (20000,)), n_boot=0, cv=False, loss="huber")) < 0.03
    bad = binomial_data(grid, seed, (20000,), outlier=True)
    assert miss(fit_law(bad, n_boot=0, cv=False)) > 0.15                 # least squares is dragged by one row
    huber = fit_law(bad, n_boot=0, cv=False, loss="huber")
    assert miss(huber) < 0.04 and huber.options["huber_delta"] == 1e-3


def test_cluster_bootstraps_are_wider_than_residual_on_the_reference():
    data = load_results_csv(reference_path("reasoning"))["all"]
    width = {}
    for method in ("residual", "cluster", "wild-cluster"):
        fit = fit_law(data, n_boot=120, cv=False, resample=method)
        assert fit.bootstrap["method"] == method
        width[method] = {k: hi - lo for k, (lo, hi) in fit.ci.items()}
    assert width["cluster"]["beta"] > 1.3 * width["residual"]["beta"]
    assert all(width["wild-cluster"][k] > 1.2 * width["residual"][k] for k in ("A", "alpha", "beta", "D"))


def test_csv_n_questions_feeds_binomial_weights_via_cli(grid, write_csv, tmp_path, capsys):
    data = binomial_data(grid, 0)
    rows = "\n".join(f"{n},{v},{1 - y:.6f},{int(c)}" for n, v, y, c in zip(data.n, data.v, data.y, data.count))
    path = write_csv("llm_params_b,visual_tokens,accuracy,n_questions\n" + rows + "\n")
    assert load_results_csv(path)["all"].count.tolist() == data.count.tolist()
    out = tmp_path / "fit.json"
    assert main(["scaling", "fit", str(path), "--weights", "binomial", "--bootstrap", "cluster:20",
                 "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["fit_options"] == {"loss": "squares", "weights": "binomial"} and d["bootstrap"]["method"] == "cluster"
    assert abs(d["alpha"] - TRUE["alpha"]) < 0.035 and "weights binomial" in capsys.readouterr().out


@pytest.mark.parametrize("text,argv,message", [
    ("llm_params_b,visual_tokens,accuracy\n1,1,0.5\n2,1,0.6\n1,4,0.55\n2,4,0.7\n", ["--weights", "binomial"],
     "--weights binomial needs an 'n_questions' column"),
    ("llm_params_b,visual_tokens,accuracy,n_questions\n1,1,0.5,10\n2,1,0.6,0\n1,4,0.5,9\n2,4,0.7,9\n", [],
     "row 3, column 'n_questions': value 0 must be an integer >= 1"),
    ("llm_params_b,visual_tokens,accuracy\n1,1,0.5\n2,1,1.0\n1,4,0.55\n2,4,0.7\n", ["--loss", "huber"],
     "1 row(s) have error 0"),
    ("llm_params_b,visual_tokens,accuracy,n_questions\n1,1,0.5,9\n2,1,0.6,9\n1,4,0.5,9\n2,4,0.7,9\n",
     ["--loss", "huber", "--weights", "binomial"], "--loss huber is unweighted"),
    ("llm_params_b,visual_tokens,accuracy\n1,1,0.5\n2,1,0.6\n1,4,0.55\n2,4,0.7\n", ["--bootstrap", "pairs"],
     "--bootstrap 'pairs': expected N or METHOD[:N]"),
])
def test_fit_option_errors_are_one_line(write_csv, capsys, text, argv, message):
    assert main(["scaling", "fit", str(write_csv(text)), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_unknown_option_values_raise_data_error(grid):
    data = binomial_data(grid, 0)
    with pytest.raises(DataError, match="unknown loss"):
        fit_law(data, n_boot=0, loss="cauchy")
