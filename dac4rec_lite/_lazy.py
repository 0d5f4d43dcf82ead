"""PEP 562 lazy attributes for a package: names and submodules imported on first use (one implementation for
``dac4rec_lite`` and ``dac4rec_lite.envs``, so that ``import dac4rec_lite`` stays light)."""
from __future__ import annotations

import importlib
from typing import Callable, Iterable, Mapping


def lazy_attributes(package: str, names: Mapping[str, str], submodules: Iterable[str],
                    namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the module (absolute, or
    relative to ``package``) that defines it; ``submodules`` are imported as attributes on first use.
    ``namespace`` is the package's ``globals()``: a resolved name is stored there so later lookups skip the hook."""
    submodules = tuple(submodules)

    def __getattr__(name: str) -> object:
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", package)   # the import also binds it in the package
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())) | set(submodules))

    return __getattr__, __dir__
