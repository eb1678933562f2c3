"""Reading the TOML files a user names (config files, sweep specs) and the presets, with one
set of error messages that say which kind of file failed and why."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from rnnstab_cli.errors import UsageError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The table in ``path``; UsageError naming ``what`` (e.g. "config file") and the path when
    it is a directory, missing, unreadable or not TOML."""
    if path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a directory")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {what} {str(path)!r}: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{what} {str(path)!r} is not valid TOML: {e}") from None
