"""The product: the model a catalogue gets from ``poster-genres predict``, chosen on validation per input pattern.

A product is one or more trained heads (*members*) and, for each input pattern
(:mod:`pipeline.scoring.decisions`: ``poster_only``, ``with_plot``), a *plan*: which members' sigmoid
probabilities are averaged for a film of that pattern, and the decision (calibration and rule) applied to
the average. A plain head checkpoint (``models/model.pt``) is a product of one member whose plans are its
own decisions, so predict and evaluate treat both alike.

:func:`choose_product` makes the plans from validation alone (:func:`pipeline.models.train.build_product`
trains the candidates first): each candidate (the main pipeline's model and the ``product.candidates``
methods, trained once), and the probability average of the best
``product.average_top`` of them, is judged per pattern by the cross-fitted product rule's ``eval.rule_metric``
(calibration and rule fitted on one half of the validation films, judged on the other, both ways); the best
wins (ties: the earlier candidate, the main model first, an average last). ``poster_only`` is judged on every
validation film with its plot and metadata hidden, ``with_plot`` on the validation films that have a plot.
The chosen plan's decision is then fitted on the whole of its pattern's validation films. No test data is read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.checkpoint import HEAD_FORMAT, HeadCheckpoint
from pipeline.core.io import atomic_path
from pipeline.models.checkpoint import head_from_checkpoint, modalities
from pipeline.models.datasets import Dataset, TrainError, pattern_scores, predict_scores
from pipeline.scoring.decisions import (
    CALIBRATIONS,
    PATTERNS,
    POSTER_ONLY,
    Decided,
    Decision,
    checkpoint_decisions,
    choose_calibration,
    cross_fitted,
    decide,
    fit_decision,
    pattern_of,
)

PRODUCT_FORMAT = "poster-genres/product@1"
#: The main pipeline's model (``models/model.pt``) among the candidates.
MAIN = "main"
#: The product on films whose plot and metadata were withheld (every film through the poster-only plan).
WITHHELD = "withheld"


@dataclass
class Member:
    name: str
    head: torch.nn.Module
    checkpoint: HeadCheckpoint


@dataclass(frozen=True)
class Plan:
    """A pattern's members (their probabilities averaged) and its decision."""

    members: tuple[str, ...]
    decision: Decision

    @property
    def label(self) -> str:
        return average_name(self.members) if len(self.members) > 1 else self.members[0]


def average_name(members) -> str:
    return "mean(" + ", ".join(members) + ")"


@dataclass
class Product:
    genres: list[str]
    members: dict[str, Member]
    plans: dict[str, Plan]
    choice: dict | None = None  #: the validation figures behind the plans (None for a plain head)
    note: str | None = None  #: a plain head without decisions: the fallback rule used

    @property
    def reads(self) -> list[str]:
        """Every input any member reads (image and text always, then plot and metadata)."""
        reads = {m for member in self.members.values() for m in modalities(member.checkpoint)}
        return [m for m in ("image", "text", "plot", "metadata") if m in reads]

    @property
    def features(self) -> dict[str, dict]:
        """The feature identities the members were trained on (they share the feature store)."""
        out: dict[str, dict] = {}
        for member in self.members.values():
            for kind, identity in member.checkpoint.get("features", {}).items():
                out.setdefault(kind, identity)
        return out

    @property
    def metadata_spec(self) -> dict | None:
        return next((m.checkpoint["metadata_spec"] for m in self.members.values()
                     if m.checkpoint.get("metadata_spec")), None)

    @property
    def decisions(self) -> dict[str, Decision]:
        return {p: plan.decision for p, plan in self.plans.items()}

    def plan_for(self, pattern: str) -> Plan:
        return self.plans.get(pattern) or self.plans[POSTER_ONLY]

    def member_scores(self, data: Dataset) -> dict[str, np.ndarray]:
        """Sigmoid scores of every member on ``data`` (CPU, in order)."""
        cpu = torch.device("cpu")
        return {name: predict_scores(m.head, data, cpu) for name, m in self.members.items()}

    def decide(self, data: Dataset, member_scores: dict[str, np.ndarray] | None = None,
               override: Decision | None = None) -> Decided:
        """Each film's pattern (by its plot), its plan's averaged probabilities through the pattern's decision
        (``override``: one decision for every pattern instead, e.g. the paper's rule)."""
        scores = member_scores if member_scores is not None else self.member_scores(data)
        has_plot = data.tensors["has_plot"].numpy() if "has_plot" in data.tensors else None
        patterns = pattern_of(has_plot, len(data))
        averaged = {p: np.mean([scores[m] for m in self.plan_for(p).members], axis=0)
                    for p in dict.fromkeys(patterns.tolist())}
        decisions = self.decisions if override is None else {p: override for p in PATTERNS}
        return decide(decisions, averaged, patterns)


def product_from_head(checkpoint: HeadCheckpoint, fallback_threshold: float = 0.5) -> Product:
    """A head checkpoint as a product of one member: its own decisions per pattern."""
    decisions, note = checkpoint_decisions(checkpoint, fallback_threshold)
    member = Member(MAIN, head_from_checkpoint(checkpoint, "cpu"), checkpoint)
    return Product(list(checkpoint["genres"]), {MAIN: member},
                   {p: Plan((MAIN,), d) for p, d in decisions.items()}, None, note)


def load_product(path: str | Path, fallback_threshold: float = 0.5) -> Product:
    """A product file (``models/product.pt``) or a head checkpoint (``models/model.pt``), ready to score."""
    path = Path(path)
    if not path.exists():
        raise TrainError(f"{path}: no trained model; run the pipeline first (dvc repro)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise TrainError(f"{path}: not a poster-genres checkpoint ({type(err).__name__})") from None
    fmt = saved.get("format") if isinstance(saved, dict) else None
    if fmt == HEAD_FORMAT:
        return product_from_head(saved, fallback_threshold)
    if fmt != PRODUCT_FORMAT:
        raise TrainError(f"{path}: not a poster-genres checkpoint")
    members = {name: Member(name, head_from_checkpoint(ckpt, "cpu"), ckpt)
               for name, ckpt in saved["members"].items()}
    plans = {p: Plan(tuple(plan["members"]), Decision.from_dict(plan["decision"]))
             for p, plan in saved["plans"].items()}
    return Product(list(saved["genres"]), members, plans, saved.get("choice"))


def save_product(product: Product, path: str | Path) -> None:
    """torch.save into a buffer, written atomically: the same product gives the same bytes."""
    used = dict.fromkeys(m for plan in product.plans.values() for m in plan.members)
    saved = {"format": PRODUCT_FORMAT, "genres": list(product.genres),
             "members": {name: product.members[name].checkpoint for name in used},
             "plans": {p: {"members": list(plan.members), "decision": plan.decision.to_dict()}
                       for p, plan in product.plans.items()},
             "choice": product.choice}
    buf = io.BytesIO()
    torch.save(saved, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def choose_product(members: dict[str, Member], val: Dataset, genres: list[str], metric: str = "f1_samples",
                   threshold: float = 0.5, calibration: str = "auto", average_top: int = 2) -> Product:
    """The product's plans, chosen on the validation split only (see the module). ``members``: the candidates,
    the main model first; ``val``: the validation split (the only data read)."""
    spec = next((m.checkpoint["metadata_spec"] for m in members.values() if m.checkpoint.get("metadata_spec")), None)
    methods = CALIBRATIONS if calibration == "auto" else (calibration,)
    plans: dict[str, Plan] = {}
    choice: dict[str, Any] = {"metric": metric, "calibration": calibration, "average_top": average_top, "patterns": {}}
    for pattern, (y, scores, films) in pattern_scores({n: m.head for n, m in members.items()}, val, spec).items():
        candidates: dict[str, tuple[tuple[str, ...], np.ndarray]] = {n: ((n,), s) for n, s in scores.items()}
        # every calibration's cross-fitted figures per candidate, computed once: the chosen one's decision reuses them
        fitted = {n: cross_fitted(y, s, genres, films, metric, threshold, methods) for n, (_, s) in candidates.items()}
        figures = {n: _best(f, metric) for n, f in fitted.items()}
        if average_top > 1 and len(scores) > 1:
            top = sorted(scores, key=lambda n: -figures[n][metric])[:average_top]  # stable: earlier first on ties
            top = tuple(n for n in scores if n in top)  # in candidate order
            s = np.mean([scores[n] for n in top], axis=0)
            candidates[average_name(top)] = (top, s)
            fitted[average_name(top)] = cross_fitted(y, s, genres, films, metric, threshold, methods)
            figures[average_name(top)] = _best(fitted[average_name(top)], metric)
        order = list(candidates)
        best = max(range(len(order)), key=lambda i: (figures[order[i]][metric], -i))
        chosen_members, s = candidates[order[best]]
        decision = fit_decision(pattern, y, s, genres, films, metric, threshold, calibration,
                                figures=fitted[order[best]] if len(y) > 1 else None)
        plans[pattern] = Plan(chosen_members, decision)
        choice["patterns"][pattern] = {"posters": int(len(y)), "chosen": order[best], "candidates": figures}
    return Product(list(genres), members, plans, choice)


def _best(figures: dict[str, dict[str, Any]], metric: str) -> dict[str, Any]:
    """A candidate's cross-fitted figures under the calibration ``auto`` would choose for it."""
    chosen = choose_calibration(figures, metric)
    return {"calibration": chosen, **figures[chosen]}

