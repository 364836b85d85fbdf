"""Named implementations chosen by a config entry (model backends, captioners, audio LLMs, audio
benchmark formats), each registered by its own module with `@REGISTRY.register("name")`.

A registry knows the package holding its implementations and imports every module of it on the first
lookup, so adding an implementation is adding one module there: no list to extend elsewhere. Those
modules are imported when a name is first looked up (a config checked, a backend loaded), so they
import heavy packages (torch, transformers, librosa) inside their functions, keeping that lookup and
`akb --help` cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> implementation, read like a dict (`in`, `[]`, `items()`, iteration in registration
    order); `get(name, owner)` looks up a config entry's name, with a message naming the entry."""

    def __init__(self, family: str, key: str, package: str | None = None):
        # Messages call a name "<key>" after the entry that gives it ("model m1: unknown backend 'x'"),
        # and "<family> <key>" where no entry does ("model backend 'x' registered twice").
        self.family, self.key = family, key
        self.package = package  # e.g. "akb.models.backends": all its modules register into this one
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or factory function under `name`."""

        def decorate(implementation: T) -> T:
            return self.add(name, implementation)

        return decorate

    def add(self, name: str, implementation: T) -> T:
        """Register `implementation` (a class, a function or a plain value) under `name`; a second,
        different implementation of a name is an error rather than a silent replacement."""
        known = self._entries.get(name)
        if known is not None and known is not implementation:
            raise ValueError(f"{self.family} {self.key} {name!r} registered twice: by {_origin(known)} "
                             f"and by {_origin(implementation)}")
        self._entries[name] = implementation
        return implementation

    def unregister(self, name: str) -> None:
        """Forget `name` (a test's toy implementation, once the test is done)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, sorted (for messages, schema enums and argparse choices)."""
        return sorted(self._all())

    def get(self, name: str, owner: str = "") -> T:
        """The implementation called `name`; `owner` (e.g. "model m1") begins the one-line error an
        unknown name raises, which lists the known names."""
        entries = self._all()
        if not isinstance(name, str) or name not in entries:  # None (unset) or a list: unknown too
            prefix = f"{owner}: " if owner else ""
            raise ValueError(f"{prefix}unknown {self.key} {name!r}; one of {self.names()}")
        return entries[name]

    def _all(self) -> dict[str, T]:
        if not self._loaded:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self.package}.{module.name}")
            self._loaded = True  # only once every module imported: a broken one fails every lookup
        return self._entries

    def __getitem__(self, name: str) -> T:
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def items(self):
        return self._all().items()

    def values(self):
        return self._all().values()

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.key!r}, {self.package!r})"


def _origin(implementation: object) -> str:
    if hasattr(implementation, "__qualname__"):  # a class or function: where it is defined
        return f"{implementation.__module__}.{implementation.__qualname__}"
    return repr(implementation)


__all__ = ["Registry"]
