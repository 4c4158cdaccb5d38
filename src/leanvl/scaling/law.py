"""Fit error = A * N^-alpha * T^-beta + D by bounded non-linear least squares, with bootstrap CIs and LOO-size CV.

Forms: `paper` uses T = V (visual tokens); `qv` uses T = Q + V (text plus visual tokens). N is in billions of
parameters; error = 1 - accuracy. Internally the parameters are theta = (log A, alpha, beta, D).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from leanvl.errors import DataError
from leanvl.scaling.io import ScalingData
from leanvl.scaling.robust import (HUBER_DELTA, LOSSES, RESAMPLING, WEIGHTS, binomial_weights, check_positive_error,
                                   huber_fit, huber_solve, pairs_rows, resampled_residuals, size_blocks)

FORMS = ("paper", "qv")
LOWER = np.array([-50.0, 0.0, 0.0, 0.0])   # log A, alpha, beta, D  (physical bounds: exponents and floor >= 0)
UPPER = np.array([50.0, 3.0, 3.0, 1.0])
_START_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 2.0, 40)])  # alpha, beta values scanned for seeds


@dataclass
class Law:
    """A fitted law; `error(n_b, v, q)` predicts 1 - accuracy for N in billions, V visual and Q text tokens."""

    A: float
    alpha: float
    beta: float
    D: float
    form: str = "paper"

    def tokens(self, v, q=0.0) -> np.ndarray:
        """The token count T the law's form uses: V (paper) or Q + V (qv)."""
        v = np.asarray(v, dtype=float)
        return v + np.asarray(q, dtype=float) if self.form == "qv" else v

    def error(self, n_b, v, q=0.0) -> np.ndarray:
        """Predicted error at LLM size n_b (billions), V visual tokens, Q text tokens."""
        n_b = np.asarray(n_b, dtype=float)
        return self.A * n_b ** -self.alpha * self.tokens(v, q) ** -self.beta + self.D

    def accuracy(self, n_b, v, q=0.0) -> np.ndarray:
        """Predicted accuracy = 1 - error."""
        return 1.0 - self.error(n_b, v, q)

    @classmethod
    def from_dict(cls, d: dict) -> "Law":
        """The law stored in a fit's JSON (keys A, alpha, beta, D, form)."""
        try:
            return cls(float(d["A"]), float(d["alpha"]), float(d["beta"]), float(d["D"]), str(d.get("form", "paper")))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"law JSON lacks a numeric {exc} entry (need A, alpha, beta, D)") from None


def design(data: ScalingData, form: str) -> tuple[np.ndarray, np.ndarray]:
    """(ln N, ln T) for a group under a form; `qv` needs text tokens."""
    if form not in FORMS:
        raise DataError(f"unknown form {form!r}; choose from {list(FORMS)}")
    if form == "qv":
        if data.q is None:
            raise DataError(f"{data.source}: --form qv needs text tokens: add a 'text_tokens' column or pass "
                            f"--text-tokens")
        return np.log(data.n), np.log(data.q + data.v)
    return np.log(data.n), np.log(data.v)


def _residual(theta, ln_n, ln_t, y):
    return np.exp(theta[0] - theta[1] * ln_n - theta[2] * ln_t) + theta[3] - y


def _jacobian(theta, ln_n, ln_t, y):
    t = np.exp(theta[0] - theta[1] * ln_n - theta[2] * ln_t)
    return np.column_stack([t, -t * ln_n, -t * ln_t, np.ones_like(t)])


def _solve(x0, ln_n, ln_t, y, w=None):
    """One bounded least-squares run from x0 (residuals weighted by w when given); returns (theta, weighted sse)."""
    fun, jac = _residual, _jacobian
    if w is not None:
        sw = np.sqrt(w)
        fun = lambda th, *a: _residual(th, *a) * sw  # noqa: E731
        jac = lambda th, *a: _jacobian(th, *a) * sw[:, None]  # noqa: E731
    r = least_squares(fun, np.clip(x0, LOWER, UPPER), jac=jac, bounds=(LOWER, UPPER),
                      args=(ln_n, ln_t, y), method="dogbox", x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return r.x, float(2.0 * r.cost)


def seed_starts(ln_n, ln_t, y, k: int = 4) -> np.ndarray:
    """Multi-start seeds: scan (alpha, beta), solve (A, D) in closed form per pair (A, D >= 0); return the k best
    local minima of that profiled SSE surface (one start per basin), topped up to 2 distinct seeds."""
    a, b = np.meshgrid(_START_GRID, _START_GRID, indexing="ij")
    a, b = a.ravel(), b.ravel()
    g = _START_GRID[:, None]
    t = (np.exp(-g * ln_n)[:, None, :] * np.exp(-g * ln_t)[None, :, :]).reshape(-1, ln_n.size)  # [pairs, points]
    tm, ym = t.mean(1, keepdims=True), y.mean()
    var = ((t - tm) ** 2).sum(1)
    amp = np.where(var > 1e-15, ((t - tm) * (y - ym)).sum(1) / np.maximum(var, 1e-15), 0.0)
    amp = np.maximum(amp, 1e-8)
    floor = ym - amp * tm[:, 0]
    neg = floor < 0                                   # D at its bound 0: refit A alone
    amp[neg] = np.maximum((t[neg] * y).sum(1) / (t[neg] ** 2).sum(1), 1e-8)
    floor = np.clip(floor, 0.0, 1.0)
    sse = ((amp[:, None] * t + floor[:, None] - y) ** 2).sum(1)
    best = _spread(_local_minima(sse.reshape(_START_GRID.size, _START_GRID.size)), np.argsort(sse), k)
    return np.column_stack([np.log(amp[best]), a[best], b[best], floor[best]])


def _local_minima(grid: np.ndarray) -> np.ndarray:
    """Flat indices of the grid's local minima (<= all 8 neighbours), best first: one start per basin."""
    pad = np.pad(grid, 1, constant_values=np.inf)
    h, w = grid.shape
    is_min = np.ones_like(grid, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= grid <= pad[1 + di:1 + di + h, 1 + dj:1 + dj + w]
    idx = np.flatnonzero(is_min)
    return idx[np.argsort(grid.ravel()[idx])]


def _spread(minima: np.ndarray, order: np.ndarray, k: int, min_starts: int = 2, gap: int = 3) -> np.ndarray:
    """Up to k basin seeds; if fewer than min_starts, add the best grid points >= gap cells from every chosen one."""
    chosen = list(minima[:k])
    size = _START_GRID.size
    for i in order:
        if len(chosen) >= min(min_starts, k):
            break
        if all(max(abs(i // size - j // size), abs(i % size - j % size)) >= gap for j in chosen):
            chosen.append(i)
    return np.array(chosen, dtype=int)


def _refit(x0, ln_n, ln_t, y, w=None, loss: str = "squares") -> np.ndarray:
    """One warm-started refit under the fit's loss and weights."""
    return huber_solve(x0, ln_n, ln_t, y)[0] if loss == "huber" else _solve(x0, ln_n, ln_t, y, w)[0]


def fit_theta(ln_n, ln_t, y, starts: int = 4, w=None, loss: str = "squares") -> tuple[np.ndarray, float]:
    """Best (theta, sse) over runs from up to `starts` seeds (the best grid basins): least squares (weighted by w
    when given; sse is then weighted) or the log-space Huber fit (sse unweighted)."""
    if loss == "huber":
        theta = huber_fit(seed_starts(ln_n, ln_t, y, starts), ln_n, ln_t, y)
        return theta, float((_residual(theta, ln_n, ln_t, y) ** 2).sum())
    best = (None, np.inf)
    for x0 in seed_starts(ln_n, ln_t, y, starts):
        theta, sse = _solve(x0, ln_n, ln_t, y, w)
        if sse < best[1]:
            best = (theta, sse)
    return best


def bootstrap(ln_n, ln_t, y, theta, n_boot: int = 1000, seed: int = 0, w=None, loss: str = "squares",
              groups=None, method: str = "residual", where: str = "<data>") -> tuple[np.ndarray, float, bool]:
    """Fixed-design bootstrap: refit on fitted + resampled residuals, warm-started at theta. `method` residual
    (i.i.d.), cluster or wild-cluster (whole LLM sizes, `groups` = each row's size; see leanvl.scaling.robust).

    Returns (thetas [B, 4], wall seconds, exact: all cluster draws taken). Residuals are inflated by
    sqrt(n / (n - 4)) for the fitted dof; with weights the standardised residuals sqrt(w)·r are resampled, with the
    Huber loss the log residuals.
    """
    rng = np.random.default_rng(seed)
    fitted = y + _residual(theta, ln_n, ln_t, y)
    if loss == "huber":
        resid, rebuild = np.log(y) - np.log(fitted), lambda r: fitted * np.exp(r)  # noqa: E731
    elif w is not None:
        resid, rebuild = np.sqrt(w) * (y - fitted), lambda r: fitted + r / np.sqrt(w)  # noqa: E731
    else:
        resid, rebuild = y - fitted, lambda r: fitted + r  # noqa: E731
    resid = resid * np.sqrt(len(y) / max(len(y) - 4, 1))
    if groups is None and method != "residual":
        groups = np.zeros(len(y))
    draws, exact = resampled_residuals(method, resid, groups, ln_t, n_boot, rng, where)
    t0 = time.perf_counter()
    out = np.array([_refit(theta, ln_n, ln_t, rebuild(r), w, loss) for r in draws])
    return out, time.perf_counter() - t0, exact


def cluster_bootstrap(ln_n, ln_t, y, theta, groups, n_boot: int = 1000, seed: int = 0, w=None,
                      loss: str = "squares") -> tuple[np.ndarray, float, bool, int]:
    """Pairs cluster bootstrap: refit on whole LLM sizes drawn with replacement (`groups` = each row's size),
    warm-started at theta. Returns (thetas [B, 4], wall seconds, exact, draws left out for < 2 distinct sizes)."""
    rows, exact, left_out = pairs_rows(groups, n_boot, np.random.default_rng(seed))
    t0 = time.perf_counter()
    out = np.array([_refit(theta, ln_n[r], ln_t[r], y[r], None if w is None else w[r], loss) for r in rows])
    return out, time.perf_counter() - t0, exact, left_out


def _weights(data: ScalingData, weights: str):
    if weights not in WEIGHTS:
        raise DataError(f"unknown weights {weights!r}; choose from {list(WEIGHTS)}")
    return binomial_weights(data.y, data.count, data.source) if weights == "binomial" else None


def cross_validate(data: ScalingData, form: str, starts: int = 4, loss: str = "squares",
                   weights: str = "none") -> dict:
    """Leave-one-LLM-size-out: fit without each size, predict it; absolute errors in accuracy points."""
    sizes = data.llm_sizes
    if len(sizes) < 3:
        return {"skipped": "leave-one-size-out needs at least 3 LLM sizes"}
    ln_n, ln_t = design(data, form)
    w = _weights(data, weights)
    per_size, errs = {}, []
    for s in sizes:
        hold = data.n == s
        theta, _ = fit_theta(ln_n[~hold], ln_t[~hold], data.y[~hold], starts, None if w is None else w[~hold], loss)
        err = 100.0 * np.abs(_residual(theta, ln_n[hold], ln_t[hold], data.y[hold]))
        per_size[f"{s:g}"] = {"mean_abs_pts": float(err.mean()), "max_abs_pts": float(err.max())}
        errs.append(err)
    allerr = np.concatenate(errs)
    return {"mean_abs_pts": float(allerr.mean()), "max_abs_pts": float(allerr.max()), "per_size": per_size}


@dataclass
class FitResult:
    """A fitted law with its goodness of fit, bootstrap 95% intervals and leave-one-LLM-size-out CV."""

    law: Law
    sse: float
    r2: float
    n_points: int
    task: str = "all"
    source: str = "<memory>"
    ci: dict = field(default_factory=dict)
    cv: dict = field(default_factory=dict)
    bootstrap: dict = field(default_factory=dict)
    llm_sizes_b: list = field(default_factory=list)
    token_counts: list = field(default_factory=list)
    text_tokens: float | None = None
    form_comparison: dict | None = None
    options: dict = field(default_factory=lambda: {"loss": "squares", "weights": "none"})

    alpha = property(lambda self: self.law.alpha)
    beta = property(lambda self: self.law.beta)
    A = property(lambda self: self.law.A)
    D = property(lambda self: self.law.D)

    def to_dict(self) -> dict:
        """JSON-ready dict: alpha, beta, A, D, sse, r2, ci, cv, bootstrap, data summary."""
        law = self.law
        return {"form": law.form, "task": self.task, "source": self.source,
                "law": "error = A * N^-alpha * " + ("(Q+V)" if law.form == "qv" else "V") + "^-beta + D",
                "units": "N in billions of LLM parameters; error = 1 - accuracy",
                "A": law.A, "alpha": law.alpha, "beta": law.beta, "D": law.D,
                "sse": self.sse, "r2": self.r2, "n_points": self.n_points, "ci": self.ci, "cv": self.cv,
                "bootstrap": self.bootstrap, "llm_sizes_b": self.llm_sizes_b, "token_counts": self.token_counts,
                "text_tokens": self.text_tokens, "form_comparison": self.form_comparison, "fit_options": self.options}

    def to_json(self, indent: int = 2) -> str:
        """The fit as a JSON string (see to_dict)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        """Rebuild from to_dict's output (e.g. a `leanvl scaling fit --json` file)."""
        return cls(Law.from_dict(d), float(d.get("sse", np.nan)), float(d.get("r2", np.nan)),
                   int(d.get("n_points", 0)), d.get("task", "all"), d.get("source", "<json>"), d.get("ci", {}),
                   d.get("cv", {}), d.get("bootstrap", {}), list(d.get("llm_sizes_b", [])),
                   list(d.get("token_counts", [])), d.get("text_tokens"), d.get("form_comparison"),
                   d.get("fit_options") or {"loss": "squares", "weights": "none"})


def _percentile_ci(thetas: np.ndarray, level: float = 0.95) -> dict:
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    cols = {"A": np.exp(thetas[:, 0]), "alpha": thetas[:, 1], "beta": thetas[:, 2], "D": thetas[:, 3]}
    return {k: [float(np.percentile(v, lo)), float(np.percentile(v, hi))] for k, v in cols.items()}


def fit_law(data: ScalingData, form: str = "paper", *, n_boot: int = 1000, seed: int = 0, cv: bool = True,
            starts: int = 4, loss: str = "squares", weights: str = "none", resample: str = "residual") -> FitResult:
    """Fit one task group: multi-start bounded least squares (or `loss="huber"` in log space; `weights="binomial"`
    residual weights from the rows' question counts), bootstrap CIs (n_boot, seeded; `resample` = residual,
    cluster, wild-cluster or pairs-cluster over LLM sizes, see leanvl.scaling.robust), LOO-size CV. The defaults are the unweighted least-squares fit with residual bootstrap."""
    _check_options(data, loss, weights, resample)
    ln_n, ln_t = design(data, form)
    if resample == "cluster" and n_boot > 0:
        size_blocks(data.n, ln_t, data.source)          # refuse an unbalanced table before fitting
    w = _weights(data, weights)
    theta, _ = fit_theta(ln_n, ln_t, data.y, starts, w, loss)
    sse = float((_residual(theta, ln_n, ln_t, data.y) ** 2).sum())
    sst = float(((data.y - data.y.mean()) ** 2).sum())
    result = FitResult(Law(float(np.exp(theta[0])), float(theta[1]), float(theta[2]), float(theta[3]), form),
                       sse, 1.0 - sse / sst if sst > 0 else float("nan"), len(data), data.task, data.source,
                       llm_sizes_b=data.llm_sizes, token_counts=data.token_counts,
                       text_tokens=None if data.q is None else float(np.median(data.q)),
                       options={"loss": loss, "weights": weights, **({"huber_delta": HUBER_DELTA} if loss == "huber"
                                                                     else {})})
    if n_boot > 0:
        if resample == "pairs-cluster":
            thetas, wall, exact, left_out = cluster_bootstrap(ln_n, ln_t, data.y, theta, data.n, n_boot, seed, w,
                                                              loss)
        else:
            thetas, wall, exact = bootstrap(ln_n, ln_t, data.y, theta, n_boot, seed, w, loss, data.n, resample,
                                            data.source)
        result.bootstrap = {"method": resample, "n": len(thetas), "seed": seed, "level": 0.95, "exact": exact}
        if resample == "pairs-cluster":
            result.bootstrap["left_out"] = left_out
        result.ci = _percentile_ci(thetas)
        result.bootstrap["wall_s"] = round(wall, 3)
    if cv:
        result.cv = cross_validate(data, form, starts, loss, weights)
    return result


def _check_options(data: ScalingData, loss: str, weights: str, resample: str) -> None:
    for name, value, allowed in (("loss", loss, LOSSES), ("weights", weights, WEIGHTS),
                                 ("bootstrap", resample, RESAMPLING)):
        if value not in allowed:
            raise DataError(f"unknown {name} {value!r}; choose from {list(allowed)}")
    if loss == "huber" and weights != "none":
        raise DataError("--weights binomial applies to the least-squares fit; --loss huber is unweighted")
    if loss == "huber":
        check_positive_error(data.y, data.source)


def compare_forms(data: ScalingData, starts: int = 4, loss: str = "squares", weights: str = "none") -> dict | None:
    """Leave-one-size-out mean error of both forms and which is lower; None without text tokens or < 3 sizes."""
    if data.q is None or len(data.llm_sizes) < 3:
        return None
    scores = {f: cross_validate(data, f, starts, loss, weights)["mean_abs_pts"] for f in FORMS}
    return {"cv_mean_abs_pts": scores, "better": min(scores, key=scores.get)}
