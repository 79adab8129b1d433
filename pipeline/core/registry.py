"""One registry per kind of named thing: heads, encoders, OCR engines, losses, comparison methods.

Each thing registers itself where it is defined (timm-style), and everything that needs the names
reads them from its registry: params validation (:mod:`pipeline.core.params`), the comparison's
default methods list and tables, and the README test. A name is written once::

    HEADS = Registry("fusion.head")

    @HEADS.register("gmu")
    class GMUHead(nn.Module): ...

    HEADS.get("gmu")      # the class
    HEADS.names()         # every registered name, in registration order
    HEADS.get("gmo")      # UnknownNameError: fusion.head 'gmo' unknown; choose one of ['cross_attention', ...]

Plain-data entries (a comparison method) are added with :meth:`Registry.add`. A registration may
carry metadata (``register(name, **meta)``, read back with :meth:`Registry.meta`) and the names it
had before (``aliases=``): :meth:`Registry.get` still resolves an old name, so an old checkpoint or
run folder loads, while :meth:`Registry.check` (what params validation calls) refuses it with one
line naming the new name, so ``params.yaml`` says what a thing is now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from pipeline.core.errors import PipelineError

T = TypeVar("T")


class UnknownNameError(PipelineError, KeyError, ValueError):
    """A name no registry entry has (one line naming the parameter key and the choices).

    A :class:`KeyError` for lookups, a :class:`ValueError` so that pydantic reports it as the
    parameter's validation error, a :class:`PipelineError` so that commands print it as one line.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Names -> registered objects (classes, functions or plain data) of one kind.

    ``key`` is the parameter that chooses among them (``fusion.head``); errors name it.
    """

    def __init__(self, key: str):
        self.key = key
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: Iterable[str] = (), **meta: Any) -> Callable[[T], T]:
        """Decorator: register the decorated class or function as ``name`` (returned unchanged)."""

        def decorate(obj: T) -> T:
            self.add(name, obj, aliases=aliases, **meta)
            return obj

        return decorate

    def add(self, name: str, obj: T, *, aliases: Iterable[str] = (), **meta: Any) -> T:
        """Register ``obj`` as ``name``; ``aliases`` are names it had before (see the module docstring)."""
        for n in (name, *aliases):
            if n in self._entries or n in self._aliases:
                raise ValueError(f"{self.key} '{n}' is registered twice")
        self._entries[name] = obj
        self._meta[name] = dict(meta)
        self._aliases.update({old: name for old in aliases})
        return obj

    def names(self) -> list[str]:
        """Every registered name (aliases not included), in registration order."""
        return list(self._entries)

    def canonical(self, name: str) -> str:
        """Today's name of ``name`` (an alias resolved; any other name returned unchanged)."""
        return self._aliases.get(name, name)

    def check(self, name: str) -> str:
        """``name`` if it is registered; else :class:`UnknownNameError` (an old name: naming the new one)."""
        if name in self._entries:
            return name
        if name in self._aliases:
            raise UnknownNameError(f"{self.key} '{name}' was renamed '{self._aliases[name]}'")
        raise self.unknown(name)

    def get(self, name: str) -> T:
        """The object registered as ``name`` (or as the name an alias now points to)."""
        try:
            return self._entries[self.canonical(name)]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata ``name`` was registered with."""
        self.get(name)
        return dict(self._meta[self.canonical(name)])

    def unknown(self, name: Any) -> UnknownNameError:
        return UnknownNameError(f"{self.key} {name!r} unknown; choose one of {self.names()}")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.key!r}, {self.names()})"
