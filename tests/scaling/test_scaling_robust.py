"""Binomial weights, log-space Huber fit, cluster bootstraps: recovery on binomial-noise data, wider intervals."""
import json

import numpy as np
import pytest

from leanvl.cli import main
from leanvl.errors import DataError
from leanvl.scaling.io import ScalingData, load_results_csv, reference_path
from leanvl.scaling.law import _percentile_ci, bootstrap, cluster_bootstrap, design, fit_law, fit_theta


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


@pytest.fixture(scope="module", name="reference_draws")
def reference_draws_fixture():
    """Bootstrap parameter draws on the paper's table, one fit shared by every method (cluster ones exact)."""
    data = load_results_csv(reference_path("reasoning"))["all"]
    ln_n, ln_t = design(data, "paper")
    theta, _ = fit_theta(ln_n, ln_t, data.y)
    draws = {m: bootstrap(ln_n, ln_t, data.y, theta, n, 0, groups=data.n, method=m)
             for m, n in (("residual", 300), ("cluster", 256), ("wild-cluster", 150))}
    draws["pairs-cluster"] = cluster_bootstrap(ln_n, ln_t, data.y, theta, data.n, 256, 0)
    return {m: d[0] for m, d in draws.items()}, {m: d[2] for m, d in draws.items()}


def _widths(thetas) -> dict:
    return {k: hi - lo for k, (lo, hi) in _percentile_ci(thetas).items()}


def test_cluster_bootstraps_are_wider_than_residual_on_the_reference(reference_draws):
    draws, exact = reference_draws
    assert exact == {"residual": False, "cluster": True, "wild-cluster": False, "pairs-cluster": True}
    assert len(draws["cluster"]) == 4 ** 4 and len(draws["pairs-cluster"]) == 4 ** 4 - 4   # 4 one-size draws left out
    w = {m: _widths(t) for m, t in draws.items()}
    for method in ("cluster", "wild-cluster"):   # the fixed-design cluster bootstraps: wider for all four
        assert all(w[method][k] > w["residual"][k] for k in ("A", "D")), (method, w)
        assert all(w[method][k] > 1.15 * w["residual"][k] for k in ("alpha", "beta")), (method, w)


def test_pairs_cluster_is_not_wider_for_alpha_because_real_curves_pin_the_floor(reference_draws):
    """What holds for resampling whole LLM sizes with their rows: wider for beta, NOT for alpha. alpha's interval
    is the alpha-D ridge; each LLM's own curve keeps D at 0 unless only the 4B and 7B LLMs are drawn."""
    draws, _ = reference_draws
    w = {m: _widths(t) for m, t in draws.items()}
    assert w["pairs-cluster"]["beta"] > 1.1 * w["residual"]["beta"]
    assert w["pairs-cluster"]["alpha"] < w["residual"]["alpha"] < w["cluster"]["alpha"]
    assert all(np.corrcoef(t[:, 1], t[:, 3])[0, 1] > 0.95 for t in draws.values())
    floor = {m: float((t[:, 3] > 1e-4).mean()) for m, t in draws.items()}
    assert floor["pairs-cluster"] == pytest.approx(14 / 252) and min(floor["residual"], floor["cluster"]) > 0.4


def test_cluster_bootstrap_refuses_sizes_with_different_token_counts():
    data = ScalingData(np.array([1.0, 1.0, 2.0, 2.0, 4.0]), np.array([1.0, 4.0, 1.0, 4.0, 1.0]),
                       np.array([0.5, 0.45, 0.4, 0.35, 0.3]), None, "all", "t.csv")
    with pytest.raises(DataError, match=r"\(size 4 differs\); use wild-cluster or pairs-cluster"):
        fit_law(data, n_boot=10, cv=False, resample="cluster")
    assert fit_law(data, n_boot=10, cv=False, resample="wild-cluster").bootstrap["n"] == 10


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
