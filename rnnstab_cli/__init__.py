"""rnnstab: train recurrent networks stably (Pascanu, Mikolov & Bengio, 2013)."""

from __future__ import annotations

from functools import cache


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importing importlib.metadata is a good part of
    # the command line's start-up, and most commands never ask for the version.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnnstab")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
