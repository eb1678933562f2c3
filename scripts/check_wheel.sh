#!/usr/bin/env bash
# Builds rnnstab's wheel and checks it as a user gets it: installed (not editable) into a fresh
# virtual environment and run from a directory outside the source tree, so nothing can be found
# by accident in the checkout. The presets and sweep specs must ship inside the wheel, `rnnstab
# tasks` must list them, and a short `rnnstab train --task addition` must train with the
# preset's settings, not built-in defaults.
#
# Needs what scripts/setup.sh installs (.venv with maturin); the build reuses target/ from that
# setup, so it links the already-compiled engine instead of compiling it again. Given a path
# (scripts/check_wheel.sh WHEEL), it checks that wheel instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "check_wheel: $*" >&2
    exit 1
}

if (($#)); then # a wheel built elsewhere: check that one
    wheel="$(realpath "$1")"
else
    echo "check_wheel: building the wheel" >&2
    .venv/bin/maturin build --release --interpreter .venv/bin/python --out "$work/dist" --quiet
    wheels=("$work"/dist/rnnstab-*.whl)
    ((${#wheels[@]} == 1)) || fail "expected one wheel, got: ${wheels[*]}"
    wheel="${wheels[0]}"
fi

# Every preset and sweep spec of the source tree is in the wheel, at the same place.
.venv/bin/python - "$wheel" <<'EOF'
import sys
import zipfile
from pathlib import Path

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
expected = {p.as_posix() for p in Path("rnnstab_cli/presets").rglob("*.toml")}
assert len(expected) >= 10, f"too few presets in the source tree: {sorted(expected)}"
missing = sorted(expected - names)
assert not missing, f"missing from the wheel: {missing}"
print(f"check_wheel: the wheel holds all {len(expected)} presets and sweep specs", file=sys.stderr)
EOF

echo "check_wheel: installing it into a fresh virtual environment" >&2
.venv/bin/python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"

# From elsewhere, with nothing of the checkout on the path and no preset directory of one's own.
mkdir "$work/elsewhere"
cd "$work/elsewhere"
unset RNNSTAB_TASKS PYTHONPATH
rnnstab="$work/venv/bin/rnnstab"
py="$work/venv/bin/python"

"$py" - "$repo" <<'EOF'
import sys
from pathlib import Path

import rnnstab_cli

where = Path(rnnstab_cli.__file__).resolve()
assert not where.is_relative_to(Path(sys.argv[1]).resolve()), f"imported from the checkout: {where}"
EOF

"$rnnstab" tasks >tasks.txt || fail "rnnstab tasks failed"
grep -q "addition" tasks.txt || fail "rnnstab tasks does not list the addition preset"
"$rnnstab" tasks --json >tasks.json
"$py" - <<'EOF'
import json
from pathlib import Path

import rnnstab_cli

listing = json.loads(Path("tasks.json").read_text())
shipped = Path(rnnstab_cli.__file__).resolve().parent / "presets"
assert Path(listing["preset_dir"]).resolve() == shipped, listing["preset_dir"]
rows = {r["name"]: r for r in listing["presets"]}
assert rows["addition"]["lr"] == 0.01, rows["addition"]
assert {s["name"] for s in listing["sweeps"]} >= {"fig7-small", "fig7-temporal-order"}
EOF

# A short run of the addition preset: its lr (0.01), α (0.5) and clipping threshold (6), where
# the built-in defaults would give lr 0.001. Exit 0 (solved) or 10 (budget used up) both mean
# it ran; the run's checkpoint records the config it trained with.
code=0
"$rnnstab" train --task addition --len 10 --max-updates 20 --eval-every 10 \
    --set eval_sequences=100 --set screen_sequences=0 --threads 1 --json --out run \
    >train.jsonl || code=$?
[[ $code == 0 || $code == 10 ]] || fail "rnnstab train --task addition exited $code"
"$py" - <<'EOF'
import json
from pathlib import Path

summary = json.loads(Path("train.jsonl").read_text().splitlines()[-1])
assert summary["event"] == "summary" and summary["updates"] == 20, summary
config = json.loads(Path("run/state.json").read_text())["config"]
got = {k: config[k] for k in ("task", "lr", "alpha", "clip", "hidden")}
assert got == {"task": "addition", "lr": 0.01, "alpha": 0.5, "clip": 6.0, "hidden": 50}, got
EOF

# A shipped sweep spec by name, planned only.
"$rnnstab" sweep fig7-small --store sweep.db --dry-run --json --axis seed=0 >sweep.jsonl ||
    fail "rnnstab sweep fig7-small --dry-run failed"
[[ $(wc -l <sweep.jsonl) == 9 ]] || fail "fig7-small with one seed should plan 9 runs"

# A preset directory without the task's preset is an error, never the built-in defaults.
mkdir empty-presets
code=0
RNNSTAB_TASKS="$work/elsewhere/empty-presets" "$rnnstab" train --task addition --len 10 \
    2>missing.txt || code=$?
[[ $code == 2 ]] || fail "a missing preset exited $code, expected 2"
grep -q "no preset for task 'addition'" missing.txt || fail "unexpected message: $(cat missing.txt)"

echo "check_wheel: ok" >&2
