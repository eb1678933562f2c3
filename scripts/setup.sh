#!/usr/bin/env bash
# Sets rnnstab up on a fresh Debian machine that has Rust (cargo) and Python 3.11:
# system packages, a virtual environment in .venv, the Python dependencies, and the Rust
# engine built in release mode into the package (an editable install, so edits to the Python
# sources need no reinstall; after editing Rust, run this again).
set -euo pipefail
cd "$(dirname "$0")/.."

# Mesa's software Vulkan driver (lavapipe) lets the GPU backend's tests run on machines
# without a GPU, as wgpu's own CI does.
SYSTEM_PACKAGES=(mesa-vulkan-drivers libvulkan1)
if command -v apt-get >/dev/null 2>&1; then
    missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "setup: installing ${missing[*]}" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The editable install builds the Rust extension through maturin (release profile, see
# pyproject.toml) and installs the runtime and development dependencies, and Ray, whose
# backend the sweep tests exercise on a local instance.
.venv/bin/python -m pip install -q -e ".[dev,ray]"
echo "setup: done; the command is .venv/bin/rnnstab" >&2
