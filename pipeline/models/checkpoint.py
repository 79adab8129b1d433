"""A trained head on disk: its config, genres, weights and the decision rule chosen for it.

Saved with ``torch.save`` into a buffer and written atomically, so the same checkpoint gives
the same bytes; loaded with ``weights_only=True`` (plain data, no pickled code).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from pipeline.core.checkpoint import HEAD_FORMAT, HeadCheckpoint
from pipeline.core.io import atomic_path
from pipeline.models.datasets import TrainError
from pipeline.models.heads import create_head


def save_checkpoint(checkpoint: HeadCheckpoint, path) -> None:
    """torch.save into a buffer, then the atomic writer (same bytes for the same checkpoint)."""
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_head(path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, HeadCheckpoint]:
    """The trained head (eval mode) and its checkpoint metadata."""
    path = Path(path)
    if not path.exists():
        raise TrainError(f"{path}: no trained model; run the pipeline first (dvc repro)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise TrainError(f"{path}: not a poster-genres checkpoint ({type(err).__name__})") from None
    if ckpt.get("format") != HEAD_FORMAT:
        raise TrainError(f"{path}: not a poster-genres checkpoint")
    return head_from_checkpoint(ckpt, device), ckpt


def head_from_checkpoint(ckpt: HeadCheckpoint, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The head a checkpoint describes, with its weights, in eval mode."""
    model = create_head(ckpt["head_config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def modalities(ckpt: HeadCheckpoint) -> list[str]:
    """The inputs a checkpoint's head reads: image and OCR text always, then the film's plot and metadata."""
    config = ckpt["head_config"]
    return ["image", "text"] + [m for m in ("plot", "metadata") if config.get(m)]


def record_inputs(checkpoint: HeadCheckpoint, inputs) -> None:
    """Record in ``checkpoint`` what the head was trained on: the features' identities (predict refuses other
    encoders), the modalities it reads and, when it reads metadata, the spec fitted on the training films."""
    reads = modalities(checkpoint)
    checkpoint["features"] = {k: v for k, v in inputs.identities.items() if k != "plot" or "plot" in reads}
    checkpoint["modalities"] = reads
    if "metadata" in reads:
        checkpoint["metadata_spec"] = inputs.info["metadata_spec"]


def make_checkpoint(config: dict, genres: list[str], state: dict, epoch: int, val_loss: float) -> HeadCheckpoint:
    return HeadCheckpoint(format=HEAD_FORMAT, head_config=config, genres=list(genres), state_dict=state,
                          best_epoch=epoch, best_val_loss=val_loss)
