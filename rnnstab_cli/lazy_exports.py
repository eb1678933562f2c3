"""A package's public names imported on first use: importing one submodule (a config, say)
then runs a package ``__init__`` that loads nothing, where eager re-exports would load the
training loop, the engine and numpy too. ``rnnstab tasks`` and ``rnnstab --help`` answer
sooner for it (``rnnstab bench``'s start-up table)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package`` whose public names live in submodules:
    ``exports`` maps each name to its submodule, relative to the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
