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


def _solve(x0, ln_n, ln_t, y):
    """One bounded least-squares run from x0; returns (theta, sse)."""
    r = least_squares(_residual, np.clip(x0, LOWER, UPPER), jac=_jacobian, bounds=(LOWER, UPPER),
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


def fit_theta(ln_n, ln_t, y, starts: int = 4) -> tuple[np.ndarray, float]:
    """Best (theta, sse) over least-squares runs from up to `starts` seeds (the best grid basins)."""
    best = (None, np.inf)
    for x0 in seed_starts(ln_n, ln_t, y, starts):
        theta, sse = _solve(x0, ln_n, ln_t, y)
        if sse < best[1]:
            best = (theta, sse)
    return best


def bootstrap(ln_n, ln_t, y, theta, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, float]:
    """Residual bootstrap (fixed design): refit on fitted + resampled residuals, warm-started at theta.

    Returns (thetas [n_boot, 4], wall seconds). Residuals are inflated by sqrt(n / (n - 4)) for the fitted dof.
    """
    rng = np.random.default_rng(seed)
    fitted = y + _residual(theta, ln_n, ln_t, y)
    resid = (y - fitted) * np.sqrt(len(y) / max(len(y) - 4, 1))
    t0 = time.perf_counter()
    out = np.empty((n_boot, 4))
    for i in range(n_boot):
        y_star = fitted + resid[rng.integers(0, len(y), len(y))]
        out[i] = _solve(theta, ln_n, ln_t, y_star)[0]
    return out, time.perf_counter() - t0


def cross_validate(data: ScalingData, form: str, starts: int = 4) -> dict:
    """Leave-one-LLM-size-out: fit without each size, predict it; absolute errors in accuracy points."""
    sizes = data.llm_sizes
    if len(sizes) < 3:
        return {"skipped": "leave-one-size-out needs at least 3 LLM sizes"}
    ln_n, ln_t = design(data, form)
    per_size, errs = {}, []
    for s in sizes:
        hold = data.n == s
        theta, _ = fit_theta(ln_n[~hold], ln_t[~hold], data.y[~hold], starts)
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
                "text_tokens": self.text_tokens, "form_comparison": self.form_comparison}

    def to_json(self, indent: int = 2) -> str:
        """The fit as a JSON string (see to_dict)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        """Rebuild from to_dict's output (e.g. a `leanvl scaling fit --json` file)."""
        return cls(Law.from_dict(d), float(d.get("sse", np.nan)), float(d.get("r2", np.nan)),
                   int(d.get("n_points", 0)), d.get("task", "all"), d.get("source", "<json>"), d.get("ci", {}),
                   d.get("cv", {}), d.get("bootstrap", {}), list(d.get("llm_sizes_b", [])),
                   list(d.get("token_counts", [])), d.get("text_tokens"), d.get("form_comparison"))


def _percentile_ci(thetas: np.ndarray, level: float = 0.95) -> dict:
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    cols = {"A": np.exp(thetas[:, 0]), "alpha": thetas[:, 1], "beta": thetas[:, 2], "D": thetas[:, 3]}
    return {k: [float(np.percentile(v, lo)), float(np.percentile(v, hi))] for k, v in cols.items()}


def fit_law(data: ScalingData, form: str = "paper", *, n_boot: int = 1000, seed: int = 0, cv: bool = True,
            starts: int = 4) -> FitResult:
    """Fit one task group: multi-start bounded least squares, residual bootstrap CIs (n_boot, seeded), LOO-size CV."""
    ln_n, ln_t = design(data, form)
    theta, sse = fit_theta(ln_n, ln_t, data.y, starts)
    sst = float(((data.y - data.y.mean()) ** 2).sum())
    result = FitResult(Law(float(np.exp(theta[0])), float(theta[1]), float(theta[2]), float(theta[3]), form),
                       sse, 1.0 - sse / sst if sst > 0 else float("nan"), len(data), data.task, data.source,
                       llm_sizes_b=data.llm_sizes, token_counts=data.token_counts,
                       text_tokens=None if data.q is None else float(np.median(data.q)))
    if n_boot > 0:
        thetas, wall = bootstrap(ln_n, ln_t, data.y, theta, n_boot, seed)
        result.ci = _percentile_ci(thetas)
        result.bootstrap = {"method": "residual", "n": n_boot, "seed": seed, "level": 0.95, "wall_s": round(wall, 3)}
    if cv:
        result.cv = cross_validate(data, form, starts)
    return result


def compare_forms(data: ScalingData, starts: int = 4) -> dict | None:
    """Leave-one-size-out mean error of both forms and which is lower; None without text tokens or < 3 sizes."""
    if data.q is None or len(data.llm_sizes) < 3:
        return None
    scores = {f: cross_validate(data, f, starts)["mean_abs_pts"] for f in FORMS}
    return {"cv_mean_abs_pts": scores, "better": min(scores, key=scores.get)}
