"""Paired tests of macro F1 between methods trained over several seeds: arrays in, numbers out.

The paper reports single runs without a significance test; here every number is a mean over
seeds, and each difference in macro F1 comes with a 95% bootstrap interval and a p-value that
cover *both* noises a reader must discount: the test sample (which films were drawn
for test) and training (which seeds were drawn). The bootstrap is two-level
(:class:`Resampler`): every draw resamples the test films with replacement (one draw shared by
every method, so comparisons are paired) and, independently for each method, its seeds with
replacement (runs of two methods with the same seed number share nothing); a method's statistic
on a draw is the mean over its drawn seeds of their macro F1 on the drawn films. A difference that
batch order alone can produce then has an interval that covers zero. The film-only interval (seeds
fixed) is kept beside it, labelled, to show how much of the width
is training noise. With k seeds, seed resampling sees only k runs per method, so intervals are as
honest as k allows: five seeds by default.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np


def genre_f1_weighted(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 of each genre (n_draws, M) per row of ``w`` (n_draws, n_posters): poster i counted ``w[:, i]`` times.

    The same counts as :func:`pipeline.scoring.metrics.f1` on the resampled rows (integer
    weights, float64: exact), for every draw at once."""
    y = y.astype(bool)
    p = pred.astype(bool)
    tp = w @ (y & p).astype(np.float64)
    fp = w @ (~y & p).astype(np.float64)
    fn = w @ (y & ~p).astype(np.float64)
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)


def macro_f1_weighted(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro F1 per row of ``w`` (see :func:`genre_f1_weighted`)."""
    return genre_f1_weighted(w, y, pred).mean(axis=1)


def film_draws(groups: np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_boot, n_posters) weights of a bootstrap over films: how often each poster's film was drawn.

    Films are drawn with replacement (all posters of a drawn film come along); every
    method is scored on the same draws, which makes the comparison paired."""
    films, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    w = np.empty((n_boot, len(groups)))
    for b in range(n_boot):
        counts = np.bincount(rng.integers(0, len(films), len(films)), minlength=len(films))
        w[b] = counts[inverse]
    return w


def seed_averaged_f1(y: np.ndarray, preds: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """Seed-averaged macro F1 of one method on each draw of ``w``."""
    return np.mean([macro_f1_weighted(w, y, p) for p in preds], axis=0)


class Resampler:
    """The draws of a two-level bootstrap shared by every test of one report: ``w`` (n_boot, n_posters)
    resamples test films (the same for every method: paired); each method (``key``) gets its own seed
    draws, (n_boot, k) indices into its k runs, the same whenever the same key is asked for."""

    def __init__(self, groups: np.ndarray, n_boot: int = 2000, seed: int = 0):
        self.w = film_draws(groups, n_boot, seed)
        self.n_boot, self.seed = n_boot, seed

    def seeds(self, key: str, k: int) -> np.ndarray:


        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8")), k])
        return rng.integers(0, k, size=(self.n_boot, k))

    def stats(self, key: str, per_seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """From ``per_seed`` (k, n_boot, ...): a statistic of each run on each film draw, the method's
        statistic per draw two-level (its seeds resampled too) and film-only (all its seeds, every draw)."""
        idx = self.seeds(key, per_seed.shape[0])  # (n_boot, k)
        two_level = per_seed[idx, np.arange(self.n_boot)[:, None]].mean(axis=1)
        return two_level, per_seed.mean(axis=0)

    def macro_f1(self, key: str, y: np.ndarray, preds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Seed-averaged macro F1 of one method per draw: (two-level, film-only)."""
        return self.stats(key, np.stack([macro_f1_weighted(self.w, y, p) for p in preds]))


def both_tests(observed: float, two_level: np.ndarray, film_only: np.ndarray) -> dict[str, Any]:
    """The test of a difference: its two-level interval and p (the ones a claim rests on), and the film-only
    interval and p beside them (``film_only``), labelled as such."""
    film = paired_test(observed, film_only)
    return {**paired_test(observed, two_level),
            "film_only": {"ci_low": film["ci_low"], "ci_high": film["ci_high"], "p_value": film["p_value"]}}


def paired_test(observed: float, stats: np.ndarray) -> dict[str, float]:
    """Difference a - b, its 95% percentile interval and the two-sided bootstrap p-value
    p = 2 min(P(d* <= 0), P(d* >= 0)) with the +1 correction, capped at 1, with its Monte Carlo error
    (``p_mc_error``: the standard error of that estimate from ``len(stats)`` draws, 2 sqrt(q (1 - q) / n) for the
    smaller tail q): another bootstrap seed moves p by about that much."""
    n = len(stats)
    below = (np.sum(stats <= 0) + 1) / (n + 1)
    above = (np.sum(stats >= 0) + 1) / (n + 1)
    tail = min(below, above, 0.5)
    return {
        "diff": float(observed),
        "ci_low": float(np.percentile(stats, 2.5)),
        "ci_high": float(np.percentile(stats, 97.5)),
        "p_value": float(min(1.0, 2 * min(below, above))),
        "p_mc_error": float(2 * np.sqrt(tail * (1 - tail) / n)),
    }


def paired_bootstrap(
    y: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray], groups: np.ndarray,
    n_boot: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Two-level paired bootstrap (films, and each method's seeds) of the difference in seed-averaged macro
    F1, a - b; the film-only interval beside it (``film_only``)."""
    ones = np.ones((1, len(y)))
    draws = Resampler(groups, n_boot, seed)
    observed = seed_averaged_f1(y, preds_a, ones)[0] - seed_averaged_f1(y, preds_b, ones)[0]
    (two_a, film_a), (two_b, film_b) = draws.macro_f1("a", y, preds_a), draws.macro_f1("b", y, preds_b)
    return both_tests(observed, two_a - two_b, film_a - film_b)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, kept monotone, capped at 1), in input order.

    A difference is called significant when its adjusted p is below 0.05: the
    chance of any false call among all the comparisons made stays under 5%."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


#: A call within this many Monte Carlo errors of the threshold is re-drawn before it is stated ...
BORDERLINE_ERRORS = 2.0
#: ... with this many times the draws, from the next bootstrap seed.
RECHECK_DRAWS = 5


def holm_factors(p_values: list[float]) -> list[int]:
    """The factor Holm multiplies each p by (m for the smallest, down to 1 for the largest), in input order."""
    m = len(p_values)
    factors = [0] * m
    for rank, i in enumerate(np.argsort(np.asarray(p_values, dtype=np.float64), kind="stable")):
        factors[i] = m - rank
    return factors


def settle_borderline(tests: list[dict[str, Any]],
                      retest: Callable[[dict[str, Any], int, int], dict[str, Any] | None],
                      n_boot: int, seed: int, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Holm-adjust a family of tests (``p_holm``), first re-drawing every test whose call could flip by chance:
    one whose adjusted p lies within :data:`BORDERLINE_ERRORS` Monte Carlo errors (its Holm factor times its
    ``p_mc_error``) of ``alpha``. ``retest(test, draws, seed)`` gives that test again from :data:`RECHECK_DRAWS`
    times the family's ``n_boot`` draws and the next bootstrap seed; its result replaces the first, marked
    ``rechecked`` with the draws and seed it used, and the family is adjusted again (``retest`` may give None
    for a test it cannot re-draw, which then stays as drawn). A call is stated from the draws that settled it."""
    p = [t["p_value"] for t in tests]
    adjusted, factors = holm(p), holm_factors(p)
    for i, t in enumerate(tests):
        if abs(adjusted[i] - alpha) <= BORDERLINE_ERRORS * factors[i] * t.get("p_mc_error", 0.0):
            again = retest(t, n_boot * RECHECK_DRAWS, seed + 1)
            if again is not None:
                tests[i] = {**t, **again, "rechecked": True, "n_boot": n_boot * RECHECK_DRAWS,
                            "bootstrap_seed": seed + 1}
    for t, value in zip(tests, holm([t["p_value"] for t in tests])):
        t["p_holm"] = value
    return tests


def seed_std(values: list[float]) -> float:
    """Sample standard deviation over seeds (ddof=1); 0 for a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
