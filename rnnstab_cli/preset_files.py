"""Where the presets and the example sweep specs are found.

They ship inside the package, as ``rnnstab_cli/presets/*.toml`` and
``rnnstab_cli/presets/sweeps/*.toml`` (the source tree's ``tasks/`` is a link to that folder),
and are located with :mod:`importlib.resources`, so an installed wheel finds them wherever it
was installed. ``$RNNSTAB_TASKS`` replaces the shipped presets with a directory of one's own.

The presets' contents are part of every run's identity (a run id hashes its resolved config),
so they are never guessed: a preset or a preset directory that is missing is an error, never a
fall-back to built-in defaults.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Final

from rnnstab_cli.errors import InstallError, UsageError

#: The environment variable naming a directory of presets to use instead of the shipped ones.
PRESET_ENV: Final[str] = "RNNSTAB_TASKS"
#: The folders inside the package that hold the presets and the sweep specs.
PRESETS_PACKAGE_DIR: Final[str] = "presets"
SWEEPS_SUBDIR: Final[str] = "sweeps"


def shipped_preset_dir() -> Path:
    """The presets that ship with rnnstab (not checked to exist)."""
    root = resources.files("rnnstab_cli") / PRESETS_PACKAGE_DIR
    # The package holds a compiled extension, which Python cannot import from an archive, so
    # rnnstab_cli is always a directory on disk and its resources are plain paths.
    if not isinstance(root, Path):
        raise InstallError(f"rnnstab's presets are not plain files ({root!r}); reinstall rnnstab")
    return root


def preset_source() -> Path:
    """Where presets are looked up: ``$RNNSTAB_TASKS`` when set, else the shipped ones. Not
    checked, so that ``rnnstab info`` can show it even when it is missing."""
    env = os.environ.get(PRESET_ENV)
    return Path(env) if env else shipped_preset_dir()


def preset_dir() -> Path:
    """:func:`preset_source`, checked to be a directory."""
    path = preset_source()
    if path.is_dir():
        return path
    if os.environ.get(PRESET_ENV):
        raise UsageError(f"${PRESET_ENV} names {str(path)!r}, which is not a directory of presets")
    raise InstallError(
        f"the presets that ship with rnnstab are missing (no directory {str(path)!r}); "
        "reinstall rnnstab"
    )


def preset_path(name: str) -> Path | None:
    """The file of preset ``name`` in :func:`preset_dir`, or None when there is none."""
    path = preset_dir() / f"{name}.toml"
    return path if path.is_file() else None


def shipped_sweep_dir() -> Path:
    """The example sweep specs that ship with rnnstab (not checked to exist)."""
    return shipped_preset_dir() / SWEEPS_SUBDIR


def shipped_sweep_names() -> list[str]:
    """Names of the shipped sweep specs, sorted (empty when the folder is missing)."""
    d = shipped_sweep_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def find_sweep_spec(spec: str | os.PathLike[str]) -> Path:
    """The file a sweep spec argument names: an existing path as given, else a bare name
    (``fig7-small``) of a shipped spec. Anything else comes back unchanged, for the reader to
    report as missing."""
    path = Path(spec)
    if path.exists():
        return path
    name = os.fspath(spec)
    if path.name == name and not path.suffix:  # a bare name, not a path that is missing
        shipped = shipped_sweep_dir() / f"{name}.toml"
        if shipped.is_file():
            return shipped
        raise UsageError(
            f"no sweep spec file {name!r} and no shipped spec of that name; shipped specs: "
            f"{', '.join(shipped_sweep_names()) or 'none (reinstall rnnstab)'}"
        )
    return path
