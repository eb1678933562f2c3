"""rnnstab: train recurrent networks stably (Pascanu, Mikolov & Bengio, 2013)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnstab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
