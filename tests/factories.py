"""What many tests make: the repo's root, poster images, a git repository to run in."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def image_bytes(img: Image.Image, fmt: str = "JPEG", **save) -> bytes:
    """``img`` encoded as ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def poster_bytes(color=(200, 30, 30), size=(90, 133), fmt: str = "JPEG", mode: str = "RGB", **save) -> bytes:
    """A plain poster of one colour (``mode`` other than RGB: black), encoded as ``fmt``."""
    return image_bytes(Image.new(mode, size, color if mode == "RGB" else 0), fmt, **save)


def write_poster(path: Path, color=(200, 30, 30), size=(90, 133)) -> Path:
    """A plain poster written to ``path`` in the format its suffix names."""
    Image.new("RGB", size, color).save(path)
    return path


def git_repo(path: Path, message: str = "init") -> Path:
    """``path`` as a git repository with its identity configured and everything in it committed."""
    for cmd in (["init", "-q"], ["config", "user.name", "poster-genres tests"],
                ["config", "user.email", "tests@poster-genres.invalid"], ["add", "-A"], ["commit", "-qm", message]):
        subprocess.run(["git", *cmd], cwd=path, check=True, capture_output=True)
    return path


def git_commit(path: Path, message: str) -> None:
    """Commit everything in the repository at ``path``."""
    for cmd in (["add", "-A"], ["commit", "-qm", message]):
        subprocess.run(["git", *cmd], cwd=path, check=True, capture_output=True)
