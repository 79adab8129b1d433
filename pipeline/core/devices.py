"""Where computation runs: one rule for OCR, encoders and training."""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError


def resolve_device(device: str, param: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit ``cuda`` without CUDA is an error naming ``param``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"{param} 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)
