"""Genres of new posters: OCR + frozen encoders + the trained head.

Prediction goes through the same functions and caches as the pipeline
(:func:`run_ocr`, :func:`embed_images`, :func:`embed_texts`), so a poster
already seen costs nothing and a new one is seen exactly as in training. The
encoders are built from the params and must have the identity the model was
trained on (compute precision aside); otherwise prediction refuses to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch

from pipeline.core.errors import PipelineError
from pipeline.core.params import EncoderParams, OcrParams, RayParams
from pipeline.data.images import PosterError, expand_paths, read_poster
from pipeline.evaluation.thresholds import DecisionRule, checkpoint_rule, rule_line
from pipeline.features.encoders import create_image_encoder, create_text_encoder
from pipeline.features.ocr import ocr_texts, run_ocr
from pipeline.features.store import FeatureSet, embed_images, embed_texts
from pipeline.models.checkpoint import load_head
from pipeline.models.datasets import feature_tensors


class PredictError(PipelineError):
    pass


@dataclass
class Prediction:
    path: str
    genres: list[str]
    probabilities: dict[str, float]
    rule: str = ""  #: name of the decision rule that chose ``genres``


def _comparable(identity: dict) -> dict:
    return {k: v for k, v in identity.items() if k != "precision"}


def check_identity(kind: str, built: dict, trained: dict) -> None:
    if _comparable(built) != _comparable(trained):
        diff = sorted(k for k in set(built) | set(trained)
                      if k != "precision" and built.get(k) != trained.get(k))
        raise PredictError(
            f"the {kind} encoder from params differs from the one the model was trained with "
            f"(in {', '.join(diff)}); use the params.yaml of that run"
        )


def predict(
    paths: list[str | Path], model_path: str | Path, ocr: OcrParams, encoder: EncoderParams,
    threshold: float | None = None, fallback_threshold: float = 0.5, notes: list[str] | None = None,
    ray: RayParams | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Predictions for every readable poster under ``paths``, and one error line per unreadable one.

    Genres are chosen by the checkpoint's decision rule (chosen on validation when it was
    trained); ``threshold`` instead gives the paper's rule (that threshold for every genre,
    no cap). A checkpoint without a rule falls back to ``fallback_threshold`` (eval.threshold).
    ``ray`` (its ``address`` set) runs the OCR and the embedding on Ray, as the stages do.
    ``notes``, when given, receives the line naming the rule used (and the fallback note)."""
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
        rows.append({"path": str(p), "sha256": info.sha256})
    if not rows:
        return [], errors

    head, ckpt = load_head(model_path)
    genres = ckpt["genres"]
    image_encoder = create_image_encoder(encoder)
    check_identity("image", image_encoder.identity, ckpt["features"]["image"])
    text_encoder = create_text_encoder(encoder)
    check_identity("text", text_encoder.identity, ckpt["features"]["text"])

    posters = pl.DataFrame(rows, schema={"path": pl.String, "sha256": pl.String})
    ocr_table, ocr_report = run_ocr(posters, ocr, ray=ray)
    errors += [f["detail"] for f in ocr_report["failed"]]
    texts = ocr_texts(ocr_table, ocr)
    tkeys, tarrays, _ = embed_texts(texts, text_encoder, encoder.batch_size, ray=ray)
    ikeys, iarrays, irep = embed_images(posters, image_encoder, encoder.batch_size, ray=ray)
    errors += [f["detail"] for f in irep["failed"]]

    have = set(ikeys) & set(tkeys)
    usable = [r for r in rows if r["sha256"] in have]
    if not usable:
        return [], errors
    image = FeatureSet(ikeys, iarrays, image_encoder.identity, None)
    text = FeatureSet(tkeys, tarrays, text_encoder.identity, None)
    batch = feature_tensors(image, text, [r["sha256"] for r in usable])
    with torch.no_grad():
        scores = torch.sigmoid(head(batch)).numpy()
    rule = decision_rule(ckpt, threshold, fallback_threshold, notes)
    chosen = rule.apply(scores)
    out = [
        Prediction(
            path=r["path"],
            genres=[g for g, keep in zip(genres, row) if keep],
            probabilities={g: round(float(s), 6) for g, s in zip(genres, srow)},
            rule=rule.name,
        )
        for r, row, srow in zip(usable, chosen, scores)
    ]
    return out, errors


def decision_rule(ckpt: dict, threshold: float | None, fallback_threshold: float,
                  notes: list[str] | None = None) -> DecisionRule:
    """``threshold`` for every genre when given (the paper's rule), else the checkpoint's rule."""
    if threshold is not None:
        rule, note = DecisionRule.global_threshold(ckpt["genres"], threshold), None
    else:
        rule, note = checkpoint_rule(ckpt, fallback_threshold)
    if notes is not None:
        notes += ([f"note: {note}"] if note else []) + [rule_line(rule, ckpt)]
    return rule
