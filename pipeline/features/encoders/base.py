"""Encoder interfaces and the shared image preprocessing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from pipeline.core.devices import resolve_device
from pipeline.core.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.core.params import EncoderParams


class EncoderError(PipelineError):
    pass


def same_encoder(identity: dict, other: dict) -> bool:
    """True when two encoder identities make the same features (compute precision aside: fp16 on a GPU and fp32
    on a CPU are the same encoder)."""
    return ({k: v for k, v in identity.items() if k != "precision"}
            == {k: v for k, v in other.items() if k != "precision"})


def encoder_device(device: str) -> torch.device:
    return resolve_device(device, "encoder.device")


def precision(device: torch.device) -> str:
    """fp16 autocast on GPU (fast, what the features are stored as anyway), fp32 on CPU."""
    return "float16" if device.type == "cuda" else "float32"


def to_tensor(img: Image.Image, size: int, mean, std, fit: str) -> torch.Tensor:
    """(3, size, size) normalised tensor; ``fit`` says how a non-square poster is made square."""
    img = img.convert("RGB")
    w, h = img.size
    if fit == "squash":
        img = img.resize((size, size), Image.BICUBIC)
    elif fit == "crop":
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        left = (img.width - size) // 2
        top = (img.height - size) // 2
        img = img.crop((left, top, left + size, top + size))
    elif fit == "pad":
        scale = size / max(w, h)
        inner = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
        mean_rgb = tuple(int(round(m * 255)) for m in mean)
        img = Image.new("RGB", (size, size), mean_rgb)
        img.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
    else:
        raise EncoderError(f"encoder.image_fit '{fit}' unknown")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


class ImageEncoder:
    """Frozen image encoder: ``encode(images) -> {"pooled": (n, Dp), "tokens": (n, T, Dt)}``."""

    params: EncoderParams  #: what it was built from (an actor on Ray builds the same one)
    identity: dict[str, Any]
    device: torch.device

    def encode(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        raise NotImplementedError


class TextEncoder:
    """Frozen text encoder: ``encode(texts) -> {"pooled", "tokens", "mask"}`` (tokens padded)."""

    params: EncoderParams
    identity: dict[str, Any]
    device: torch.device

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    #: token positions ``encode`` gives a text at most (its ``mask`` width)
    max_tokens: int

    def word_tokens(self, word: str) -> int | None:
        """How many tokens the tokenizer makes of one whitespace-free ``word``; None when it cannot say."""
        return None

    def token_words(self, text: str) -> list[int | None] | None:
        """For each token position ``encode`` gives ``text``, the index of the whitespace word of ``text`` it comes
        from (None: a start, end or padding token); None when the encoder cannot say.

        Both tokenizers here (WordPiece, CLIP's BPE) split on whitespace before anything else, so a text's tokens
        are its words' tokens in order, between a start and an end token. A text too long is cut where the
        tokenizer cuts it (``context``: CLIP's 77, where it puts its end token; else ``max_tokens``, where
        WordPiece puts its own), and ``encode`` keeps the first ``max_tokens`` positions."""
        positions: list[int | None] = [None]
        for i, word in enumerate(text.split()):
            n = self.word_tokens(word)
            if n is None:
                return None
            positions += [i] * n
        positions.append(None)
        cut = getattr(self, "context", self.max_tokens)
        if len(positions) > cut:
            positions = positions[: cut - 1] + [None]
        return positions[: self.max_tokens]


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", enabled=False)
