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
is training noise.

Resampling k seeds from k runs says too little about training noise when there are few seeds: it keeps (k - 1)/k
of the seed variance and has normal tails, and in a null simulation (the same method twice, whole runs shifting
between seeds) it called 8-15% of differences significant at a nominal 5% where seeds dominate. Every test's
interval and p are therefore seed-level corrected (:func:`seed_level_test`, Welch-Satterthwaite): the variance of
a difference is its film part (the film-only draws) plus each method's seed part (the unbiased variance of its
runs' figures on the whole test set over k), referred to Student's t with the Satterthwaite degrees of freedom,
so few seeds widen an interval only as far as training noise is a share of it
(``tests/test_statistics.py`` holds the rate in a null simulation). The percentile interval of the two-level
draws stays in each test as ``two_level``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as scipy_stats


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


class Estimate(NamedTuple):
    """One method's statistic for a test: per draw with its seeds resampled too (``two_level``), per draw over all
    its seeds (``film_only``), and each of its seeds' value on the whole test set (``seeds``, one row per seed)."""

    two_level: np.ndarray
    film_only: np.ndarray
    seeds: np.ndarray


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

    def stats(self, key: str, per_seed: np.ndarray, whole: np.ndarray) -> Estimate:
        """From ``per_seed`` (k, n_boot, ...), a statistic of each run on each film draw, and ``whole`` (k, ...),
        each run's statistic on the whole test set: the method's :class:`Estimate`."""
        idx = self.seeds(key, per_seed.shape[0])  # (n_boot, k)
        two_level = per_seed[idx, np.arange(self.n_boot)[:, None]].mean(axis=1)
        return Estimate(two_level, per_seed.mean(axis=0), np.asarray(whole, dtype=np.float64))

    def macro_f1(self, key: str, y: np.ndarray, preds: list[np.ndarray]) -> Estimate:
        """Seed-averaged macro F1 of one method: its :class:`Estimate`."""
        ones = np.ones((1, len(y)))
        return self.stats(key, np.stack([macro_f1_weighted(self.w, y, p) for p in preds]),
                          np.array([macro_f1_weighted(ones, y, p)[0] for p in preds]))


def difference(terms: list[tuple[float, Estimate]], n_films: int) -> dict[str, Any]:
    """The test of a linear combination of methods' statistics, sum of ``coefficient * estimate`` (a - b: ``[(1, a),
    (-1, b)]``; a change of gains: four terms), seed-level corrected (:func:`seed_level_test`), with the film-only
    and the two-level percentile tests beside it. Terms that are the very same runs (one method in both of two
    comparisons, trained on the same inputs) are merged first: their training noise cancels."""
    merged: list[list] = []
    for c, e in terms:
        same = next((m for m in merged if np.array_equal(m[1].seeds, e.seeds)
                     and np.array_equal(m[1].film_only, e.film_only)), None)
        if same is None:
            merged.append([c, e])
        else:
            same[0] += c
    observed = float(sum(c * e.seeds.mean(axis=0) for c, e in merged))
    film_only = sum(c * e.film_only for c, e in merged)
    two_level = sum(c * e.two_level for c, e in merged)
    # each method's seed part: c^2 s^2 / k, with k - 1 degrees of freedom (none with one seed)
    parts = [(c * c * np.var(e.seeds, axis=0, ddof=1) / len(e.seeds), len(e.seeds) - 1)
             for c, e in merged if c != 0 and len(e.seeds) > 1]
    film = paired_test(observed, film_only)
    return {**seed_level_test(observed, film_only, parts, n_films),
            "film_only": {"ci_low": film["ci_low"], "ci_high": film["ci_high"], "p_value": film["p_value"]},
            "two_level": {k: v for k, v in paired_test(observed, two_level).items() if k != "diff"}}


def seed_level_test(observed: float, film_only: np.ndarray, seed_parts: list[tuple[float, int]],
                    n_films: int, level: float = 0.95) -> dict[str, float]:
    """Welch-Satterthwaite t test of a difference: variance = the film-only draws' variance (``n_films`` - 1
    degrees of freedom) + each seed part (variance, degrees of freedom); p from Student's t with the
    Satterthwaite degrees of freedom (``df``). ``p_mc_error``: how far p moves when the film variance, estimated
    from ``len(film_only)`` draws, moves by its standard error (another bootstrap seed moves p about that much)."""
    v_film = float(np.var(film_only, ddof=1))
    v_seed = float(sum(v for v, _ in seed_parts))

    def p_and_df(vf: float) -> tuple[float, float, float]:
        v = vf + v_seed
        if v <= 0:
            return (1.0 if observed == 0 else 0.0), float("inf"), 0.0
        denominator = vf * vf / max(n_films - 1, 1) + sum(v_s * v_s / d for v_s, d in seed_parts)
        df = v * v / denominator if denominator > 0 else float("inf")
        return float(2 * scipy_stats.t.sf(abs(observed) / np.sqrt(v), df)), df, float(np.sqrt(v))

    p, df, se = p_and_df(v_film)
    moved = v_film * np.sqrt(2 / max(len(film_only) - 1, 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * se if se > 0 else 0.0
    return {"diff": float(observed), "ci_low": float(observed - half), "ci_high": float(observed + half),
            "p_value": min(1.0, p), "p_mc_error": abs(p_and_df(v_film + moved)[0] - p_and_df(v_film - moved)[0]) / 2,
            "df": float(df)}


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
    """Paired test of the difference in seed-averaged macro F1, a - b, over test films and each method's seeds
    (:func:`difference`)."""
    draws = Resampler(groups, n_boot, seed)
    return difference([(1, draws.macro_f1("a", y, preds_a)), (-1, draws.macro_f1("b", y, preds_b))],
                      len(np.unique(groups)))


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
