"""Shared wrapper that turns a user error into one line on stderr and exit code 1."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer

from pipeline.core.errors import PipelineError


def command(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PipelineError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper
