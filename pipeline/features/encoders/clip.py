"""OpenCLIP encoders (the paper's): ViT image tokens and text token states.

Image tokens (``encoder.image_tokens``): the paper's f_v is CLIP's *projected*
image embedding, so the image token sequence starts with it:

* ``projected`` (default): the class token and every patch token, all through
  CLIP's final projection into the joint image-text space. Token 0 is exactly the
  pooled embedding f_v the pooled baselines use; the patches are in the same space
  (projecting every token, as dense-CLIP work does).
* ``unprojected``: the class token and the patch tokens at the ViT's width, before
  the projection (a linear map away from f_v; the head's alignment layer learns its
  own).

Earlier features held the patch tokens only, so the paper's head never saw f_v.

``encoder.model`` is an OpenCLIP architecture name (``ViT-B-32``) or a path to
a model-config JSON (registered on the fly, used by the tests for a tiny
model). ``encoder.pretrained`` is an OpenCLIP tag (downloaded as usual on a
connected machine) or a local checkpoint file.

Random weights are refused: if the weights cannot be had the encoder stops with
an error that names the offline choice. Only with ``encoder.pretrained: random``
*and* the environment variable ``POSTER_GENRES_ALLOW_RANDOM_WEIGHTS=1`` (set by
the tests) does it build a randomly initialised model, and then the identity
says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.io import sha256_file
from pipeline.core.params import EncoderParams
from pipeline.features.encoders.base import (
    EncoderError,
    ImageEncoder,
    TextEncoder,
    autocast,
    encoder_device,
    precision,
    to_tensor,
)
from pipeline.features.encoders.registry import IMAGE_ENCODERS, TEXT_ENCODERS

ALLOW_RANDOM_ENV = "POSTER_GENRES_ALLOW_RANDOM_WEIGHTS"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _load(params: EncoderParams, device: torch.device):
    import open_clip

    name = params.model
    arch: dict[str, Any] = {"model": name}
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise EncoderError(f"encoder.model: config file {path} not found")
        open_clip.add_model_config(path)
        name = path.stem
        arch = {"model": name, "config_sha256": sha256_file(path)}
    if name not in open_clip.list_models():
        raise EncoderError(f"encoder.model '{params.model}' is not an OpenCLIP model (see open_clip.list_models())")

    pretrained = params.pretrained
    if pretrained in ("random", "", "none"):
        if os.environ.get(ALLOW_RANDOM_ENV) != "1":
            raise EncoderError(
                f"encoder.pretrained '{pretrained}' means random CLIP weights, which give meaningless features; "
                f"name an OpenCLIP tag or checkpoint, or use encoder.name=offline "
                f"(tests only: set {ALLOW_RANDOM_ENV}=1)"
            )
        torch.manual_seed(0)
        model = open_clip.create_model(name, pretrained=None)
        weights = {"pretrained": "random", "init_seed": 0}
    else:
        path = Path(pretrained)
        weights = {"pretrained": pretrained}
        if path.is_file():
            weights = {"pretrained": "file", "sha256": sha256_file(path)}
        elif os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise EncoderError(f"encoder.pretrained: checkpoint {path} not found")
        try:
            model = open_clip.create_model(name, pretrained=pretrained)
        except Exception as err:  # noqa: BLE001 - open_clip raises RuntimeError/HTTP errors alike
            first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise EncoderError(
                f"encoder.pretrained '{pretrained}' for {name} could not be loaded ({first}); "
                f"without internet set encoder.name=offline, or point encoder.pretrained at a local checkpoint"
            ) from None
    model.eval().requires_grad_(False).to(device)
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = cfg.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    mean = tuple(cfg.get("mean", OPENAI_MEAN))
    std = tuple(cfg.get("std", OPENAI_STD))
    tokenizer = open_clip.get_tokenizer(name)
    identity = {"family": "open_clip", "open_clip": open_clip.__version__, **arch, **weights}
    return model, tokenizer, (size, mean, std), identity


@IMAGE_ENCODERS.register("clip")
class ClipImageEncoder(ImageEncoder):
    def __init__(self, params: EncoderParams):
        self.params = params  # an actor on Ray builds the same encoder from these
        self.device = encoder_device(params.device)
        self.model, _, (self.size, self.mean, self.std), ident = _load(params, self.device)
        self.fit = params.image_fit
        self.image_tokens = params.image_tokens
        visual = self.model.visual
        if getattr(visual, "proj", None) is None or not hasattr(visual, "output_tokens"):
            raise EncoderError(f"encoder.model '{params.model}': image tokens need a ViT tower with a projection")
        # The tower returns its pooled token and patch tokens *before* the projection; the projection is
        # applied here to what encoder.image_tokens asks for (one forward pass gives both).
        self.proj = visual.proj.detach()
        visual.proj = None
        visual.output_tokens = True
        self.identity = {
            "encoder": "clip", "modality": "image", **ident,
            "preprocess": {"size": self.size, "mean": list(self.mean), "std": list(self.std), "fit": self.fit},
            "image_tokens": self.image_tokens,
            # projected: the pooled vector is token 0 itself (bit for bit; before, a second product)
            **({"pooled": "token 0"} if self.image_tokens == "projected" else {}),
            "precision": precision(self.device),
        }

    @torch.no_grad()
    def encode(self, images) -> dict[str, np.ndarray]:
        x = torch.stack([to_tensor(im, self.size, self.mean, self.std, self.fit) for im in images]).to(self.device)
        with autocast(self.device):
            cls, patches = self.model.visual(x)  # (n, width), (n, T, width): after ln_post, before the projection
            sequence = torch.cat([cls[:, None, :], patches], dim=1)
            if self.image_tokens == "projected":
                sequence = sequence @ self.proj.to(sequence.dtype)
                # f_v *is* token 0: one product, not two (under fp16 two matmuls of different shapes
                # could round the same vector differently)
                pooled = sequence[:, 0]
            else:
                pooled = cls @ self.proj.to(cls.dtype)
        return {"pooled": pooled.float().cpu().numpy(), "tokens": sequence.float().cpu().numpy()}


@TEXT_ENCODERS.register("clip")
class ClipTextEncoder(TextEncoder):
    def __init__(self, params: EncoderParams):
        self.params = params  # an actor on Ray builds the same encoder from these
        self.device = encoder_device(params.device)
        self.model, self.tokenizer, _, ident = _load(params, self.device)
        self.context = int(getattr(self.tokenizer, "context_length", 77))
        self.max_tokens = min(params.text_max_tokens, self.context)
        self.identity = {
            "encoder": "clip", "modality": "text", **ident,
            "tokenizer": {"context_length": self.context, "max_tokens": self.max_tokens},
            "precision": precision(self.device),
        }

    def _states(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled, token states) of OpenCLIP's text tower, for both CLIP and CustomTextCLIP."""
        m = self.model
        if hasattr(m, "text"):  # CustomTextCLIP: a TextTransformer that can return tokens
            m.text.output_tokens = True
            pooled, tokens = m.text(text)
            return pooled, tokens
        from open_clip.transformer import text_global_pool

        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(text).to(cast) + m.positional_embedding.to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))
        pooled = text_global_pool(x, text, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        if m.text_projection is not None:
            proj = m.text_projection
            pooled = proj(pooled) if isinstance(proj, torch.nn.Linear) else pooled @ proj
        return pooled, x

    @torch.no_grad()
    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids = self.tokenizer(list(texts)).to(self.device)
        with autocast(self.device):
            pooled, tokens = self._states(ids)
        # CLIP's text tower is causal: states after the end-of-text token are padding.
        eot = ids.argmax(dim=-1)
        positions = torch.arange(ids.shape[1], device=ids.device)
        mask = positions[None, :] <= eot[:, None]
        t = self.max_tokens
        return {
            "pooled": pooled.float().cpu().numpy(),
            "tokens": tokens[:, :t].float().cpu().numpy(),
            "mask": mask[:, :t].cpu().numpy(),
        }

    def word_tokens(self, word: str) -> int | None:
        encode = getattr(self.tokenizer, "encode", None)  # OpenCLIP's SimpleTokenizer; an HF tokenizer has none
        return None if encode is None else len(encode(word))
