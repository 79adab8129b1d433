"""Genres of new posters: OCR + frozen encoders + the trained head.

Prediction goes through the same functions and caches as the pipeline
(:func:`run_ocr`, :func:`embed_images`, :func:`embed_texts`), so a poster
already seen costs nothing and a new one is seen exactly as in training. The
encoders are built from the params and must have the identity the model was
trained on (compute precision aside); otherwise prediction refuses to run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from pipeline.core.errors import PipelineError
from pipeline.core.params import EncoderParams, OcrParams, RayParams
from pipeline.data.films import SCHEMA as FILMS_SCHEMA
from pipeline.data.films import read_films
from pipeline.data.images import PosterError, expand_paths, read_poster
from pipeline.features.encoders import create_image_encoder, create_text_encoder, same_encoder
from pipeline.features.metadata import NO_METADATA
from pipeline.features.ocr import ocr_texts, run_ocr
from pipeline.features.ocr.text import ocr_records
from pipeline.features.store import FeatureSet, embed_images, embed_plots, embed_texts, plot_encoder_params
from pipeline.models.datasets import Dataset, FilmInputs, feature_tensors, film_tensors
from pipeline.models.explain import attention_maps, attention_note
from pipeline.models.product import Product, load_product
from pipeline.scoring.decisions import POSTER_ONLY, Decided, Decision, decisions_line
from pipeline.scoring.thresholds import DecisionRule, rule_line

#: An IMDb title id in a poster's file name (``tt0084058.jpg``), how ``--films`` rows find their poster.
FILE_IMDB_ID = re.compile(r"(tt\d{5,10})")


class PredictError(PipelineError):
    pass


@dataclass
class Prediction:
    path: str
    genres: list[str]
    probabilities: dict[str, float]
    rule: str = ""  #: name of the decision rule that chose ``genres``
    pattern: str = ""  #: the input pattern whose rule it is: poster_only, or with_plot (empty for --threshold)


@dataclass
class Seen:
    """What predict read and decided for its posters, row-aligned: what the review page
    (:func:`pipeline.evaluation.review.write_predicted`) shows. Empty rows when no poster could be scored."""

    genres: list[str]
    rule: str  #: the line naming what decided (the paper's rule, or each input pattern's)
    keys: list[str] = field(default_factory=list)  #: each poster's sha256
    paths: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    probabilities: np.ndarray | None = None  #: (n, M), what the decision read
    chosen: np.ndarray | None = None  #: (n, M) bool
    rules: list[str] = field(default_factory=list)  #: each poster's pattern and rule
    thresholds: list[dict[str, float]] | None = None  #: each poster's per-genre thresholds (None: the paper's rule)
    ocr: dict[str, tuple] = field(default_factory=dict)  #: sha256 -> OCR record (lines, boxes, confidences)
    texts: dict[str, str] = field(default_factory=dict)  #: sha256 -> the text the encoder received
    attention: list[dict[str, Any]] | None = None  #: :func:`attention_maps` of the first member
    attention_note: str | None = None
    token_words: Callable | None = None  #: the text encoder's token-to-word map
    image_fit: str = "squash"


def check_identity(kind: str, built: dict, trained: dict) -> None:
    if not same_encoder(built, trained):
        diff = sorted(k for k in set(built) | set(trained)
                      if k != "precision" and built.get(k) != trained.get(k))
        raise PredictError(
            f"the {kind} encoder from params differs from the one the model was trained with "
            f"(in {', '.join(diff)}); use the params.yaml of that run"
        )


def predict(
    paths: list[str | Path], model_path: str | Path, ocr: OcrParams, encoder: EncoderParams,
    threshold: float | None = None, fallback_threshold: float = 0.5, notes: list[str] | None = None,
    ray: RayParams | None = None, plot: str | None = None, films: str | Path | None = None,
    seen: list[Seen] | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Predictions for every readable poster under ``paths``, and one error line per unreadable one.

    Genres are chosen by the checkpoint's decision rule (chosen on validation when it was
    trained); ``threshold`` instead gives the paper's rule (that threshold for every genre,
    no cap). A checkpoint without a rule falls back to ``fallback_threshold`` (eval.threshold).
    ``ray`` (its ``address`` set) runs the OCR and the embedding on Ray, as the stages do.
    ``notes``, when given, receives the line naming the rule used (and the fallback note).

    A model that reads films (its checkpoint's ``modalities``) takes ``plot`` (one poster's film synopsis)
    or ``films`` (a films CSV, its rows joined to posters by the IMDb id in the file name, or by a
    ``poster`` column naming the file); a poster without one is predicted as a film without a plot or
    metadata, as the model was trained to. Giving either to a poster-only model is an error.

    ``seen``, when given, receives a :class:`Seen`: what the review page of these posters shows (OCR boxes, the
    text read, probabilities, genres and their rule, what MCAM attended to)."""
    errors: list[str] = []
    rows = []
    files = expand_paths(paths)
    for p in files:
        if not p.exists():
            errors.append(f"{p}: no such file or folder")
            continue
        try:
            _, info = read_poster(p)
        except PosterError as err:
            errors.append(str(err))
            continue
        rows.append({"path": str(p), "sha256": info.sha256, "size": (info.width, info.height)})
    if not rows:
        if seen is not None:
            seen.append(Seen([], "no rule: no poster could be read"))
        return [], errors

    product = load_product(model_path, fallback_threshold)
    genres = product.genres
    reads = product.reads
    trained = product.features
    if (plot is not None or films is not None) and not ({"plot", "metadata"} & set(reads)):
        raise PredictError(f"{model_path}: this model reads {' and '.join(reads)} only; --plot and --films need "
                           f"a model trained with data.films (its checkpoint records the modalities it reads)")
    if plot is not None and len(rows) != 1:
        raise PredictError(f"--plot is one film's synopsis: give one poster (got {len(rows)}), or use --films")
    image_encoder = create_image_encoder(encoder)
    check_identity("image", image_encoder.identity, trained["image"])
    text_encoder = create_text_encoder(encoder)
    check_identity("text", text_encoder.identity, trained["text"])

    posters = pl.DataFrame([{"path": r["path"], "sha256": r["sha256"]} for r in rows],
                           schema={"path": pl.String, "sha256": pl.String})
    ocr_table, ocr_report = run_ocr(posters, ocr, ray=ray)
    errors += [f["detail"] for f in ocr_report["failed"]]
    texts = ocr_texts(ocr_table, ocr)
    tkeys, tarrays, _ = embed_texts(texts, text_encoder, encoder.batch_size, ray=ray)
    ikeys, iarrays, irep = embed_images(posters, image_encoder, encoder.batch_size, ray=ray)
    errors += [f["detail"] for f in irep["failed"]]

    have = set(ikeys) & set(tkeys)
    usable = [r for r in rows if r["sha256"] in have]
    if not usable:
        if seen is not None:
            seen.append(Seen(genres, "no rule: no poster could be read"))
        return [], errors
    image = FeatureSet(ikeys, iarrays, image_encoder.identity, None)
    text = FeatureSet(tkeys, tarrays, text_encoder.identity, None)
    batch = feature_tensors(image, text, [r["sha256"] for r in usable])
    if {"plot", "metadata"} & set(reads):
        batch |= _film_batch(usable, product, encoder, plot, films, errors, ray)
    data = Dataset([r["sha256"] for r in usable], [r["path"] for r in usable], batch,
                   torch.zeros((len(usable), len(genres)), dtype=torch.int64))
    scores = product.member_scores(data)
    paper = None if threshold is None else Decision(POSTER_ONLY, None, DecisionRule.global_threshold(genres, threshold))
    decided = product.decide(data, scores, override=paper)  # paper: the head's own probabilities, one threshold
    if notes is not None:
        notes += _rule_notes(product, decided, threshold)
    out = [
        Prediction(
            path=r["path"],
            genres=[g for g, keep in zip(genres, row) if keep],
            probabilities={g: round(float(s), 6) for g, s in zip(genres, srow)},
            rule=name.split(":", 1)[-1],
            pattern=pattern,
        )
        for r, row, srow, name, pattern in zip(usable, decided.chosen, decided.probabilities, decided.rules,
                                               decided.patterns)
    ]
    if seen is not None:
        head = next(iter(product.members.values())).head  # the first member's attention (the main model's)
        seen.append(Seen(
            genres, f"rule: threshold {threshold:g} for every genre, no cap" if threshold is not None
            else decisions_line(product.decisions),
            keys=[r["sha256"] for r in usable], paths=[r["path"] for r in usable], sizes=[r["size"] for r in usable],
            probabilities=decided.probabilities, chosen=decided.chosen, rules=list(decided.rules),
            thresholds=None if threshold is not None
            else [product.plan_for(p).decision.rule.thresholds for p in decided.patterns],
            ocr={k: (lines, boxes, conf) for k, lines, boxes, conf in ocr_records(ocr_table)} if len(ocr_table) else {},
            texts=dict(texts.iter_rows()), attention=attention_maps(head, batch), attention_note=attention_note(head),
            token_words=text_encoder.token_words,
            image_fit=image_encoder.identity.get("preprocess", {}).get("fit", "squash")))
    return out, errors


def _rule_notes(product: Product, decided: Decided, threshold: float | None) -> list[str]:
    """The lines naming what decided: the fallback note, then the rule (the paper's at ``threshold``) or each
    input pattern's, with its validation figure, for the patterns these posters have."""
    if threshold is not None:
        return [rule_line(DecisionRule.global_threshold(product.genres, threshold))]
    lines = [f"note: {product.note}"] if product.note else []
    for pattern in dict.fromkeys(decided.patterns.tolist()):
        plan = product.plan_for(pattern)
        d, validation = plan.decision, plan.decision.validation or {}
        figure = ""
        if validation.get("chosen", {}).get("name") == d.rule.name:
            metric = validation["metric"]
            figure = f", {metric} {validation['chosen'][metric]:.2f} on validation"
        members = f"{plan.label}, " if product.choice is not None else ""
        lines.append(f"{pattern}: {rule_line(d.rule)} [{members}calibration {d.calibration_method}{figure}]")
    return lines


def _films_for(posters: list[dict], plot: str | None, films: str | Path | None, errors: list[str]) -> pl.DataFrame:
    """One films-table row per poster (its ``imdb_id`` column is the poster's path): from ``plot`` or the
    rows of ``films`` (by the IMDb id in the file name or a ``poster`` column), else unknown."""
    by_path: dict[str, dict] = {}
    if plot is not None:
        text = " ".join(plot.split()) or None
        by_path[posters[0]["path"]] = {"film_row": True, "plot": text}
    elif films is not None:
        read = read_films(films)
        errors += [f"{films}: line {d['line']}: {d['detail']}" for d in read.details]
        by_id = {f["imdb_id"]: f for _, f in read.films}
        by_file = {name: by_id[i] for i, name in _poster_column(films).items() if i in by_id}
        for r in posters:
            name = Path(r["path"]).name
            film = by_file.get(name)
            if film is None:
                match = FILE_IMDB_ID.search(name)
                film = by_id.get(match.group(1)) if match else None
            if film is not None:
                by_path[r["path"]] = {**film, "film_row": True}
    rows = [{k: by_path.get(r["path"], {}).get(k) for k in FILMS_SCHEMA} | {
        "imdb_id": r["path"], "film_row": r["path"] in by_path} for r in posters]
    return pl.DataFrame(rows, schema=FILMS_SCHEMA)


def _poster_column(films: str | Path) -> dict[str, str]:
    """imdb_id -> poster file name, where the films CSV has a ``poster`` column."""
    from pipeline.core.io import read_csv

    table = read_csv(films)
    if "poster" not in table.columns:
        return {}
    return {i: Path(p).name for i, p in table.select("imdb_id", "poster").iter_rows() if p}


def _film_batch(posters: list[dict], product: Product, encoder: EncoderParams, plot: str | None,
                films: str | Path | None, errors: list[str], ray: RayParams | None) -> dict[str, torch.Tensor]:
    """The film inputs of ``posters`` for a model that reads them: plot embeddings through the same encoder
    and cache as the pipeline (identity checked against the checkpoint) and the checkpoint's metadata spec."""
    table = _films_for(posters, plot, films, errors)
    params = plot_encoder_params(encoder)
    trained = product.features
    ids, arrays = [], {"pooled": None}
    if table["plot"].is_not_null().any():
        plot_encoder = create_text_encoder(params)
        if "plot" in trained:
            check_identity("plot", plot_encoder.identity, trained["plot"])
        ids, arrays, _ = embed_plots(table, plot_encoder, params.batch_size, ray=ray)
    width = max((m.checkpoint["head_config"].get("plot_pooled_dim") or 0 for m in product.members.values()),
                default=0) or 1
    pooled = arrays["pooled"] if ids else torch.zeros((0, width), dtype=torch.float16).numpy()
    spec = product.metadata_spec or NO_METADATA
    inputs = FilmInputs(table, FeatureSet(ids, {"pooled": pooled}, {}, None), spec=spec)
    return film_tensors(inputs, [r["path"] for r in posters], spec)
