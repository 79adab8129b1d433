"""Decoding posters safely, and turning any decodable poster into RGB.

The same function (:func:`load_rgb`) feeds OCR, both encoders and ``predict``,
so a poster is seen identically everywhere. Modes that are safe to convert
(grayscale, palette, CMYK, alpha, 16-bit) are converted; alpha is composited
on white, because posters with transparency are meant to be shown on a page.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.core.errors import PipelineError

#: Refuse decompression bombs: IMDb posters are well below 50 megapixels.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

#: Refuse images under this many pixels on either side (reason ``too_small``):
#: thumbnails and icons, not posters. The smallest real posters (``../shared/posters``,
#: 5842 files, mostly 300x444) are 89x132 px, so 64 leaves a margin below them,
#: and at under 64 px no printed text on a poster can be read (OCR is one input).
MIN_POSTER_SIDE = 64


class PosterError(PipelineError, ValueError):
    """A poster cannot be used; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class PosterInfo:
    sha256: str
    width: int
    height: int
    mode: str
    format: str
    converted: bool


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, name: str = "<bytes>") -> tuple[Image.Image, PosterInfo]:
    """Decode poster bytes fully; raise :class:`PosterError` if they are not a usable image."""
    from pipeline.core.io import sha256_bytes

    if not data:
        raise PosterError("empty_file", f"{name} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            img.load()  # forces a full decode: truncated files fail here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise PosterError("too_large", f"{name}: {err}") from None
    except UnidentifiedImageError:
        raise PosterError("not_an_image", f"{name} is not an image") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PosterError("corrupt", f"{name}: {err}") from None
    if img.width < MIN_POSTER_SIDE or img.height < MIN_POSTER_SIDE:
        raise PosterError(
            "too_small", f"{name} is {img.width}x{img.height} px, under {MIN_POSTER_SIDE} px a side"
        )
    mode = img.mode
    try:
        rgb = _to_rgb(img)
    except (OSError, ValueError) as err:
        raise PosterError("unsupported_mode", f"{name}: mode {mode}: {err}") from None
    info = PosterInfo(sha256_bytes(data), img.width, img.height, mode, fmt, mode != "RGB")
    return rgb, info


def read_bytes(path: str | Path) -> bytes:
    """A poster file's bytes; a missing or unreadable file raises :class:`PosterError`."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PosterError("missing_file", f"{path} does not exist") from None
    except IsADirectoryError:
        raise PosterError("not_an_image", f"{path} is a directory") from None
    except OSError as err:
        raise PosterError("unreadable", f"{path}: {err.strerror}") from None


def read_poster(path: str | Path) -> tuple[Image.Image, PosterInfo]:
    """Read and decode a poster file; missing or unreadable files raise :class:`PosterError`."""
    return decode(read_bytes(path), str(path))


def load_rgb(path: str | Path, expected_sha256: str | None = None, data: bytes | None = None) -> Image.Image:
    """RGB image of a poster, checking it is still the file that was ingested.

    ``data``: the file's bytes, already read (by the driver of a Ray run, which ships posters to
    workers that cannot open the path); ``path`` then only names the poster in errors."""
    img, info = decode(data, str(path)) if data is not None else read_poster(path)
    if expected_sha256 is not None and info.sha256 != expected_sha256:
        raise PosterError("changed", f"{path} changed since ingest (sha256 differs); re-run ingest")
    return img


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if c.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
