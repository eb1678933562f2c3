"""A reproduction campaign on disk, and the scheduler that runs it.

A campaign directory holds everything the report is made from::

    DIR/campaign.json           what this is, and a log of the sessions that worked on it
                                (when, which rnnstab and commit, on which machine)
    DIR/<section>/store.db      the section's result store (:mod:`rnnstab_cli.sweep.store`)
    DIR/<section>/runs/<id>/    each run's last checkpoint and metrics (``rnnstab eval`` loads
                                it); <id> is the run's *trajectory*: its settings without the
                                update budget, so a budget raised later continues the run. A
                                stored natural run keeps only its best validation parameters
                                (its id holds every setting, so it is never continued)
    DIR/notes/<section>.md      hand-written analysis the report includes (optional)

The scheduler asks, each time a worker is free, which run of the campaign is ready and missing
(Fig. 7's baselines become ready once SGD-CR has set their budget), stores each finished run
at once, and scores each single model at the generalisation lengths. Like a sweep it resumes
after Ctrl-C or ``kill -9``: the stores say what is finished, the checkpoints where each
unfinished run stands.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.reproduce.natural import (
    NaturalPlanned,
    NaturalStore,
    epochs_in_checkpoint,
    natural_seconds_left,
    plan_natural,
)
from rnnstab_cli.reproduce.scores import ScoreStore, score_run
from rnnstab_cli.reproduce.studies import (
    FIG7_FIRST_SEEDS,
    SECTIONS,
    SYNTHETIC_SECTIONS,
    Study,
    SuccessRule,
    fig7_baseline_studies,
    fig7_budget,
    rate_verdict,
    section_studies,
    static_studies,
)
from rnnstab_cli.sweep.run import SweepPlan, run_row
from rnnstab_cli.sweep.spec import PlannedRun, canonical_json, expand, id_settings
from rnnstab_cli.sweep.store import ResultStore, RunRow, utc_now
from rnnstab_cli.sweep.worker import INTERRUPTED, RunTask, fcntl
from rnnstab_cli.training.checkpoint import (
    METRICS_ARCHIVE,
    METRICS_FILE,
    STATE_FILE,
    archive_metrics,
    drop_clip_state,
    metrics_text,
)
from rnnstab_cli.training.natural.checkpoint import drop_last_params

__all__ = [
    "CAMPAIGN_FILE",
    "Campaign",
    "CampaignRun",
    "current_rows",
    "machine_facts",
    "plan_campaign",
    "plan_studies",
    "trajectory_id",
    "unique_runs",
]

CAMPAIGN_FILE: Final[str] = "campaign.json"
FORMAT: Final[str] = "rnnstab-reproduction"
FORMAT_VERSION: Final[int] = 1
STORE_FILE: Final[str] = "store.db"
RUNS_DIR: Final[str] = "runs"
#: Entries a campaign directory may hold besides its sections (the report and its figures).
_OTHER_ENTRIES: Final[frozenset[str]] = frozenset(
    {CAMPAIGN_FILE, "README.md", "figures", "notes", ".gitattributes", ".campaign.lock"}
)
#: Held (flock) by the process running a campaign: two at once would both append to the
#: session log, and their schedulers would not know of each other's runs.
LOCK_FILE: Final[str] = ".campaign.lock"


def trajectory_id(run: PlannedRun) -> str:
    """The run's settings without its budget: runs that differ only in ``max_updates`` follow
    the same trajectory, so the longer one continues the shorter one's checkpoint."""
    settings = {k: v for k, v in id_settings(run.config).items() if k != "max_updates"}
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()[:16]


def current_rows(rows: Sequence[RunRow]) -> list[RunRow]:
    """``rows`` less those a raised budget superseded. Rows sharing a run directory are one
    trajectory: the one trained furthest continued the others' checkpoint, so its updates and
    wall time include theirs, and only it still matches the checkpoint on disk."""
    latest: dict[str, RunRow] = {}
    for r in rows:
        if r.run_dir is not None and (
            r.run_dir not in latest or (r.updates or 0) > (latest[r.run_dir].updates or 0)
        ):
            latest[r.run_dir] = r
    return [r for r in rows if r.run_dir is None or latest[r.run_dir] is r]


@dataclass(frozen=True)
class CampaignRun:
    """A planned run and the study it belongs to."""

    study: Study
    run: PlannedRun

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def cost(self) -> float:
        """Relative cost of the whole budget: updates × mean length × hidden² (the recurrence)."""
        c = self.run.config
        return c.max_updates * (c.length.lo + c.length.hi) / 2 * c.hidden * (c.hidden + 1)


#: What the scheduler tells its caller about each stored run (a synthetic or a natural one)
#: with its store row.
OnRun = Callable[["CampaignRun | NaturalPlanned", dict[str, Any]], None]


def _expand(study: Study) -> list[CampaignRun]:
    return [CampaignRun(study, r) for r in expand(study.spec)]


def _fig7_sgd_cr(planned: Sequence[CampaignRun]) -> list[CampaignRun]:
    return [p for p in planned if p.study.section == "fig7" and p.run.config.method == "sgd-cr"]


def fig7_lengths(planned: Sequence[CampaignRun]) -> list[int]:
    """Fig. 7's x axis: the lengths SGD-CR is planned at."""
    return sorted({p.run.config.length.lo for p in _fig7_sgd_cr(planned)})


def fig7_budgets(rows: Sequence[RunRow], planned: Sequence[CampaignRun]) -> dict[int, int]:
    """Length → the baselines' budget, for each length whose first SGD-CR seeds are stored
    (see :func:`~.studies.fig7_budget`); all stored SGD-CR seeds there count."""
    by_id = {r.run_id: r for r in rows}
    out: dict[int, int] = {}
    cr = _fig7_sgd_cr(planned)
    for length in fig7_lengths(planned):
        runs = [p for p in cr if p.run.config.length.lo == length]
        first = [p for p in runs if p.run.config.seed < FIG7_FIRST_SEEDS]
        if not first or any(p.run_id not in by_id for p in first):
            continue
        stored = [by_id[p.run_id] for p in runs if p.run_id in by_id]
        if any(r.outcome == "failed" for r in stored):
            continue  # a crash says nothing; the budget waits for the run to be redone
        cap = max(p.run.config.max_updates for p in runs)
        budget = fig7_budget([r.updates if r.solved else None for r in stored], cap)
        if budget is not None:
            out[length] = budget
    return out


def plan_campaign(
    sections: Sequence[str], rows_of: Callable[[str], list[RunRow]]
) -> list[CampaignRun]:
    """Every run the sections need that can be planned now, each once. ``rows_of(section)``:
    the runs stored in that section's store (Fig. 7's baselines are planned from them). A run
    two studies plan (the same settings, so the same id) is planned as the first one's."""
    return unique_runs(plan_studies(sections, rows_of))


def unique_runs(runs: Sequence[CampaignRun]) -> list[CampaignRun]:
    """``runs`` with each run id once, as the first study that plans it."""
    seen: set[str] = set()
    out = []
    for p in runs:
        if p.run_id not in seen:
            seen.add(p.run_id)
            out.append(p)
    return out


def plan_studies(
    sections: Sequence[str], rows_of: Callable[[str], list[RunRow]]
) -> list[CampaignRun]:
    """Every study's whole grid, study by study: a run two studies plan is in both (the
    stores register it in both grids, the report counts it in both tables)."""
    studies = static_studies()
    wanted = {s.name for sec in sections for s in section_studies(sec, studies)}
    planned = [r for s in studies if s.name in wanted for r in _expand(s)]
    if "fig7" in sections:
        budgets = fig7_budgets(rows_of("fig7"), planned)
        cr = _fig7_sgd_cr(planned)
        if cr:
            seeds = sorted({p.run.config.seed for p in cr})
            template = cr[0].study.spec
            planned += [
                r for s in fig7_baseline_studies(budgets, seeds, template) for r in _expand(s)
            ]
    return planned


def git_commit() -> str | None:
    """The commit of this rnnstab's source tree, with ``+dirty`` if it has local changes, or
    None for an installed package."""
    src = Path(__file__).resolve().parents[2]
    if not (src / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(src),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "rnnstab_cli",
                "rust",
                "tasks",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine_facts() -> dict[str, Any]:
    """What the report says about the machine a session ran on."""
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine()
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "simd": simd}


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_campaign_file(root: Path) -> dict[str, Any]:
    """``campaign.json``, checked; CheckpointError if it is not a reproduction's."""
    path = root / CAMPAIGN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"damaged campaign file {str(path)!r}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an rnnstab reproduction's campaign file")
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has format version {data.get('version')!r}; this rnnstab reads "
            f"up to {FORMAT_VERSION}"
        )
    sessions = data.get("sessions")
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise CheckpointError(f"damaged campaign file {str(path)!r}: sessions is not a list")
    return data


@contextlib.contextmanager
def campaign_lock(root: Path) -> Iterator[None]:
    """Hold DIR's lock while a campaign runs; UsageError at once if another process holds it.
    The kernel drops the lock when its process dies, so a killed campaign leaves none."""
    if fcntl is None:  # pragma: no cover - Windows: no lock, one campaign at a time is on the user
        yield
        return
    with open(root / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another `rnnstab reproduce` is running in {str(root)!r}; stop it (Ctrl-C or "
                "kill) or wait for it, then run this command again"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def check_campaign_dir(root: Path, *, create: bool, missing_ok: bool = False) -> None:
    """Refuse a DIR that is a file, or that holds something other than a reproduction.
    ``missing_ok``: a DIR that holds no campaign yet is fine (nothing is created)."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{str(root)!r} is a file; --dir needs a directory")
    if (root / CAMPAIGN_FILE).is_file():
        read_campaign_file(root)
        return
    if root.is_dir():
        strangers = sorted(
            e.name
            for e in root.iterdir()
            if e.name not in _OTHER_ENTRIES and e.name not in SECTIONS
        )
        if strangers or any((root / s).exists() for s in SECTIONS):
            raise UsageError(
                f"{str(root)!r} is not an rnnstab reproduction (no {CAMPAIGN_FILE}) and is not "
                f"empty; give a new or empty directory"
            )
    if missing_ok:
        return
    if not create:
        raise CheckpointError(
            f"no reproduction in {str(root)!r} (start one with `rnnstab reproduce all --dir "
            f"{root}`)"
        )
    root.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(
        root / CAMPAIGN_FILE, {"format": FORMAT, "version": FORMAT_VERSION, "sessions": []}
    )


def is_study_name(name: str) -> bool:
    """Whether a sweep's name is one of a reproduction's studies."""
    return name in {s.name for s in static_studies()} or name.startswith("fig7-baselines-len")


def _check_store(store: ResultStore, section: str) -> None:
    """A section store holds this campaign's studies only."""
    foreign = [s.name for s in store.sweeps() if not is_study_name(s.name)]
    if foreign:
        raise UsageError(
            f"{str(store.path)!r} holds sweeps that are not part of the {section!r} "
            f"reproduction ({', '.join(sorted(foreign)[:3])}); use another --dir"
        )


@dataclass
class Progress:
    """Counts for the display and the summary."""

    planned: int = 0
    stored_before: int = 0
    ran: int = 0
    solved: int = 0
    unsolved: int = 0
    failed: int = 0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


class Campaign:
    """An open campaign directory, ready to run ``sections``."""

    def __init__(
        self,
        root: Path,
        sections: Sequence[str],
        *,
        readonly: bool = False,
        data: str | None = None,
    ) -> None:
        for s in sections:
            if s not in SECTIONS:
                raise UsageError(f"unknown section {s!r}; expected one of: {', '.join(SECTIONS)}")
        check_campaign_dir(root, create=not readonly)
        self.root = root
        # Read only (a dry run): the stores are opened for reading, one not written yet reads
        # as empty, and nothing in the directory is created or changed.
        self.readonly = readonly
        self.all_sections = list(sections)
        self.sections = [s for s in sections if s in SYNTHETIC_SECTIONS]
        self.natural_sections = [s for s in sections if s not in SYNTHETIC_SECTIONS]
        self.data = data
        self._natural: dict[str, NaturalPlanned] = {}
        self._natural_stores: dict[str, NaturalStore] = {}
        self._stores: dict[str, ResultStore] = {}
        self._scores: ScoreStore | None = None
        self._in_flight: dict[str, CampaignRun | NaturalPlanned] = {}
        self._stored: set[str] = set()
        self._outcomes: dict[str, str] = {}  # run id → outcome of the stored synthetic runs
        self._planned: dict[str, CampaignRun] = {}
        self._grids: list[CampaignRun] = []  # every study's whole grid (see plan_studies)
        self.progress = Progress()
        self._session: dict[str, Any] | None = None

    # -- stores -------------------------------------------------------------------------------

    def section_dir(self, section: str) -> Path:
        return self.root / section

    def store(self, section: str) -> ResultStore:
        if section not in self._stores:
            path = self.section_dir(section) / STORE_FILE
            if not self.readonly:
                self._stores[section] = ResultStore.open(path)
            elif path.is_file():
                self._stores[section] = ResultStore.open_readonly(path)
            else:
                self._stores[section] = ResultStore.empty(path)
        return self._stores[section]

    def rows(self, section: str) -> list[RunRow]:
        return self.store(section).runs()

    def natural_store(self, section: str) -> NaturalStore:
        if section not in self._natural_stores:
            path = self.section_dir(section) / STORE_FILE
            store = NaturalStore.open(path, readonly=self.readonly)
            # Opened for writing it is never None; for reading, None is a store without runs.
            self._natural_stores[section] = store or NaturalStore.empty(path)
        return self._natural_stores[section]

    def close(self) -> None:
        for s in self._stores.values():
            s.close()
        self._stores.clear()
        for n in self._natural_stores.values():
            n.close()
        self._natural_stores.clear()
        if self._scores is not None:
            self._scores.close()
            self._scores = None

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- planning -----------------------------------------------------------------------------

    def _homes(self) -> list[str]:
        """Every section whose store this run touches (including shared studies' homes)."""
        studies = static_studies()
        homes = {s.section for sec in self.sections for s in section_studies(sec, studies)}
        return [s for s in SECTIONS if s in homes]

    def replan(self) -> list[CampaignRun]:
        self._grids = plan_studies(self.sections, self.rows)
        planned = unique_runs(self._grids)
        self._planned = {p.run_id: p for p in planned}
        self._outcomes = {}
        for home in self._homes():
            self._outcomes |= self.store(home).stored_outcomes()
        self._stored = set(self._outcomes)
        self._natural = {n.run_id: n for n in plan_natural(self.natural_sections, self.data)}
        for section in self.natural_sections:
            self._stored |= self.natural_store(section).ids()
        return planned

    def check_data(self) -> None:
        """Load each natural data set once now: a missing or malformed file is said before any
        run starts (exit 3), not hours into a campaign."""
        from rnnstab_cli.training.natural import load_natural_data

        seen: set[tuple[str, str | None]] = set()
        for n in self._natural.values():
            key = (n.config.dataset, n.config.data)
            if key not in seen:
                seen.add(key)
                load_natural_data(n.config)

    def register(self) -> None:
        """Record each planned study in its store (the store says which grids it holds), a
        run that two studies plan in both."""
        by_study: dict[str, list[CampaignRun]] = {}
        for p in self._grids:
            by_study.setdefault(p.study.name, []).append(p)
        for home in self._homes():
            _check_store(self.store(home), home)
        for name, runs in by_study.items():
            study = runs[0].study
            plan = SweepPlan(study.spec, [p.run for p in runs])
            self.store(study.section).register_sweep(
                plan.sweep_id,
                name,
                study.spec.to_json(),
                [(p.run_id, p.run.index, p.run.point) for p in runs],
            )

    def missing(self) -> list[CampaignRun]:
        """Planned runs neither stored nor running, in the order they should start: those
        that can still change a verdict first (see :meth:`decided_studies`), so a campaign cut
        short has settled all it could; then by the study's priority, then cheapest first
        (short lengths give early, complete points)."""
        todo = [
            p
            for rid, p in self._planned.items()
            if rid not in self._stored and rid not in self._in_flight
        ]
        decided = self.decided_studies()
        return sorted(
            todo,
            key=lambda p: (p.study.name in decided, p.study.priority, p.cost(), p.run.index),
        )

    def decided_studies(self) -> set[str]:
        """Studies judged by their success rate alone whose verdict their stored runs already
        settle (:func:`rate_verdict`): their other runs still run, after every one that can
        change a verdict."""
        tally: dict[tuple[str, SuccessRule], list[int]] = {}  # (study, rule) → [solved, stored]
        for p in self._grids:
            outcome = self._outcomes.get(p.run_id)
            if p.study.success_rule is None or outcome not in ("solved", "unsolved"):
                continue
            t = tally.setdefault((p.study.name, p.study.success_rule), [0, 0])
            t[0] += outcome == "solved"
            t[1] += 1
        return {
            name
            for (name, rule), (solved, stored) in tally.items()
            if rate_verdict(rule, solved, stored, complete=False) != "pending"
        }

    def missing_natural(self) -> list[NaturalPlanned]:
        """Natural runs neither stored nor running, in the tables' order."""
        return [
            n
            for rid, n in self._natural.items()
            if rid not in self._stored and rid not in self._in_flight
        ]

    def run_dir(self, p: CampaignRun) -> Path:
        return self.section_dir(p.study.section) / RUNS_DIR / trajectory_id(p.run)

    # -- the scheduler's two callbacks ---------------------------------------------------------

    def next_task(self, backend_name: str, jobs: int = 1) -> RunTask | None:
        """The next run to start on one of ``jobs`` slots. Natural runs (hours each) hold at
        most half the slots while synthetic runs (minutes each) wait: both kinds of evidence
        progress, and the long runs do not all start last, on a machine otherwise idle. On
        one slot the synthetic runs go first; a slot no synthetic run wants takes a natural
        one."""
        todo = self.missing()
        natural = self.missing_natural()
        natural_flying = sum(isinstance(f, NaturalPlanned) for f in self._in_flight.values())
        if natural and (not todo or natural_flying < jobs // 2):
            n = natural[0]
            self._in_flight[n.run_id] = n
            run_dir = self.section_dir(n.section) / RUNS_DIR / n.run_id
            return RunTask(
                n.run_id, n.config.to_dict(), str(run_dir.resolve()), backend_name, "natural"
            )
        if not todo:
            return None
        p = todo[0]
        self._in_flight[p.run_id] = p
        return RunTask(
            p.run_id, p.run.config.to_dict(), str(self.run_dir(p).resolve()), backend_name
        )

    def on_result(self, result: Mapping[str, Any], on_run: OnRun | None) -> None:
        """Store a run's result. A Ctrl-C may cut this short and the scheduler then hands the
        same result over again: the run leaves ``_in_flight`` only once it is handled, and
        storing and archiving are idempotent."""
        flying = self._in_flight.get(result["run_id"])
        if flying is None:  # handled already
            return
        self._handle_result(flying, result, on_run)
        del self._in_flight[result["run_id"]]

    def _handle_result(
        self,
        flying: CampaignRun | NaturalPlanned,
        result: Mapping[str, Any],
        on_run: OnRun | None,
    ) -> None:
        if result["outcome"] == INTERRUPTED:
            if isinstance(flying, CampaignRun):
                # Stopped part-way, as every campaign stops before its evidence is kept:
                # the log it leaves is as small as a finished run's.
                compact_metrics(self.run_dir(flying))
            return
        if isinstance(flying, NaturalPlanned):
            self._on_natural(flying, result, on_run)
            return
        p = flying
        row = run_row(p.run, result)
        # Paths relative to the section, so the directory can move (a clone, another machine).
        rel = self.run_dir(p).relative_to(self.section_dir(p.study.section))
        row["run_dir"] = str(rel)
        row["metrics_path"] = str(rel / METRICS_FILE)
        if row["outcome"] in ("solved", "unsolved"):
            compact_metrics(self.run_dir(p))
            row["metrics_path"] = str(rel / METRICS_ARCHIVE)
        stored = self.store(p.study.section).record_run(row)
        if row["outcome"] in ("solved", "unsolved"):
            # Only once the row is in the store, as for a natural run's last parameters.
            self._drop_clip_state(self.run_dir(p))
        if not stored:
            return
        self._stored.add(p.run_id)
        self._outcomes[p.run_id] = row["outcome"]
        pr = self.progress
        pr.ran += 1
        setattr(pr, row["outcome"], getattr(pr, row["outcome"]) + 1)
        if result.get("note"):
            pr.notes.append(f"run {p.run_id} ({p.study.name} {p.run.describe()}): {result['note']}")
        self.score_missing()
        self._touch_session()
        if p.study.name.startswith("fig7-sgd-cr"):
            self.replan()  # a length's SGD-CR runs may now set its baselines' budget
            self.register()
        if on_run is not None:
            on_run(p, row)

    def _on_natural(
        self, n: NaturalPlanned, result: Mapping[str, Any], on_run: OnRun | None
    ) -> None:
        pr = self.progress
        if result["outcome"] == "failed":
            # Not stored: a natural run's failure (a data error, divergence under
            # nonfinite = "error") is said and the run is tried again next time.
            pr.failed += 1
            pr.notes.append(f"natural run {n.describe()} failed: {result.get('error')}")
            return
        row = {**result, "run_dir": f"{RUNS_DIR}/{n.run_id}"}
        stored = self.natural_store(n.section).record(n, row)
        # Only once the row is in the store: a run stored is never started again, whereas one
        # that lost its last parameters before being stored could not be continued. Also when
        # an earlier handling of this result stored it and was cut short before this.
        self._keep_best_only(n.section, row["run_dir"])
        if not stored:
            return
        self._stored.add(n.run_id)
        pr.ran += 1
        self._touch_session()
        if on_run is not None:
            on_run(n, dict(row))

    def archive_logs(self) -> None:
        """Archive the plain metrics log of every stored run (one stored before archiving was
        part of storing it, or by a process killed between the two), and round the numbers of
        an archive written before they were rounded (:func:`compact_metrics`)."""
        for section in self.sections:
            for r in self.rows(section):
                if r.outcome not in ("solved", "unsolved") or not r.run_dir:
                    continue
                run_dir = self.section_dir(section) / r.run_dir
                compact_metrics(run_dir)
                if (run_dir / METRICS_ARCHIVE).exists() and r.metrics_path != str(
                    Path(r.run_dir) / METRICS_ARCHIVE
                ):
                    self.store(section).set_metrics_path(
                        r.run_id, str(Path(r.run_dir) / METRICS_ARCHIVE)
                    )

    def drop_stored_resume_state(self) -> None:
        """Make every stored run keep only what its figures use: a natural run its best
        parameters, every run no clipping-rule state (one stored before that was part of
        storing it, or by a process killed between the two)."""
        for section in self.natural_sections:
            for nr in self.natural_store(section).rows():
                self._keep_best_only(section, nr.run_dir)
        for section in self.sections:
            for r in self.rows(section):
                if r.outcome in ("solved", "unsolved") and r.run_dir:
                    self._drop_clip_state(self.section_dir(section) / r.run_dir)

    def _drop_clip_state(self, run_dir: Path) -> None:
        """:func:`drop_clip_state` on a stored synthetic run (the percentile rule's grows by 8
        bytes an update); a damaged checkpoint is noted, not raised, as in
        :meth:`_keep_best_only`."""
        if not (run_dir / STATE_FILE).is_file():
            return
        try:
            drop_clip_state(run_dir)
        except CheckpointError as e:
            self.progress.notes.append(f"kept the clipping state of {run_dir.name}: {e}")

    def _keep_best_only(self, section: str, run_dir: str) -> None:
        """:func:`drop_last_params` on a stored natural run. A damaged checkpoint is noted, not
        raised: the run is stored, and the campaign goes on (``rnnstab eval`` on it says what
        is wrong)."""
        d = self.section_dir(section) / run_dir
        if not d.is_dir():
            return
        try:
            drop_last_params(d)
        except CheckpointError as e:
            self.progress.notes.append(f"kept the last parameters of {run_dir}: {e}")

    # -- generalisation scores ----------------------------------------------------------------

    def scores(self) -> ScoreStore:
        if self._scores is None:
            self._scores = ScoreStore.open(self.section_dir("generalisation") / STORE_FILE)
        return self._scores

    def score_missing(self) -> None:
        """Score every finished single model at the generalisation lengths it lacks."""
        for p in self._planned.values():
            if not p.study.score_lengths or p.run_id not in self._stored:
                continue
            store = self.scores()
            have = store.lengths(p.run_id)
            todo = [n for n in p.study.score_lengths if n not in have]
            if todo:
                for rec in score_run(self.run_dir(p), todo):
                    store.record(p.run_id, rec)

    # -- the session log ------------------------------------------------------------------------

    def start_session(self) -> None:
        data = read_campaign_file(self.root)
        self._session = {
            "started": utc_now(),
            "ended": utc_now(),
            "sections": list(self.all_sections),
            "rnnstab": __version__,
            "commit": git_commit(),
            "machine": machine_facts(),
        }
        data["sessions"].append(self._session)
        _write_json_atomic(self.root / CAMPAIGN_FILE, data)

    def _touch_session(self) -> None:
        """The session's end time, so that each stored run can be traced to its session."""
        if self._session is None:
            return
        data = read_campaign_file(self.root)
        self._session["ended"] = utc_now()
        for s in data["sessions"]:
            if s.get("started") == self._session["started"]:
                s.update(self._session)
        _write_json_atomic(self.root / CAMPAIGN_FILE, data)

    def core_seconds(self) -> float:
        synthetic = sum(
            r.wall_time or 0.0 for home in self._homes() for r in current_rows(self.rows(home))
        )
        natural = sum(
            r.wall_time for s in self.natural_sections for r in self.natural_store(s).rows()
        )
        return synthetic + natural

    def estimate_left(self) -> float | None:
        """Core-seconds the missing and running runs take at most (:func:`estimate_left`,
        :func:`natural_seconds_left`); None when some have no stored run to go by."""
        flying = list(self._in_flight.values())
        synthetic = self.missing() + [p for p in flying if isinstance(p, CampaignRun)]
        natural = self.missing_natural() + [p for p in flying if isinstance(p, NaturalPlanned)]
        left = 0.0
        if synthetic:
            rows = [r for home in self._homes() for r in self.rows(home)]
            part = estimate_left(rows, list(self._planned.values()), synthetic)
            if part is None:
                return None
            left += part
        if natural:
            stored = [r for s in self.natural_sections for r in self.natural_store(s).rows()]
            done = [
                (n, epochs_in_checkpoint(self.section_dir(n.section) / RUNS_DIR / n.run_id))
                for n in natural
            ]
            part = natural_seconds_left(stored, done)
            if part is None:
                return None
            left += part
        return left


def estimate_left(
    rows: Sequence[RunRow], planned: Sequence[CampaignRun], todo: Sequence[CampaignRun]
) -> float | None:
    """Core-seconds ``todo`` takes at most, each run to its whole budget, at the pace of the
    stored runs of ``planned`` (seconds per unit of :meth:`CampaignRun.cost`); None before
    any run is stored. An upper bound: runs that solve stop early."""
    by_id = {p.run_id: p for p in planned}
    done = [(r, by_id[r.run_id]) for r in rows if r.run_id in by_id and r.updates and r.wall_time]
    if not done:
        return None
    work = sum(p.cost() / p.run.config.max_updates * (r.updates or 0) for r, p in done)
    pace = sum(r.wall_time or 0.0 for r, _ in done) / work if work else 0.0
    return pace * sum(p.cost() for p in todo)


#: Significant digits an archived metrics log keeps of each number: a float32's precision, the
#: engine's dtype in every campaign run. The digits beyond are noise to the report's figures
#: and, incompressible, 40 % of a finished synthetic run's archived bytes.
ARCHIVED_DIGITS: Final[int] = 7


def _rounded(value: Any) -> Any:
    """``value`` (a parsed JSON record or part of one) with its floats to ARCHIVED_DIGITS."""
    if isinstance(value, float):
        return float(f"{value:.{ARCHIVED_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _archive_unrounded(run_dir: Path) -> bool:
    """Whether the archived log of ``run_dir`` keeps more than ARCHIVED_DIGITS: its first
    record tells, since an archive is written whole. False when there is none or it cannot be
    read (a continued run reports the damage)."""
    try:
        with gzip.open(run_dir / METRICS_ARCHIVE, "rt", encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return bool(_rounded(first) != first)


def compact_metrics(run_dir: Path) -> None:
    """Archive the metrics log of a run that stopped (finished or interrupted): drop the
    per-evaluation gradient-flow diagnostics but the last (most of the log's bytes; the report
    does not use them), keep ARCHIVED_DIGITS of each number and gzip the rest
    (:func:`archive_metrics`). The checkpoint stays valid: one record per evaluation is all it
    counts, and a continued run reads the archive. An archive is left alone once compact:
    one written before its numbers were rounded is rewritten the same way."""
    if not (run_dir / METRICS_FILE).exists() and not _archive_unrounded(run_dir):
        return
    try:
        lines = metrics_text(run_dir).splitlines()
    except (OSError, EOFError, UnicodeDecodeError):
        return  # nothing readable to archive; a continued run reports the damage
    out = []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)  # kept as it is: a continued run reports the damage
            continue
        if i < len(lines) - 1 and isinstance(record, dict):
            record.pop("diagnostics", None)
        out.append(json.dumps(_rounded(record), separators=(",", ":")))
    archive_metrics(run_dir, out)


def run_campaign(
    campaign: Campaign,
    *,
    backend: str = "local",
    jobs: int | None = None,
    address: str | None = None,
    on_start: Callable[[Campaign], None] | None = None,
    on_run: OnRun | None = None,
) -> Progress:
    """Run every missing run of the campaign's sections until none is left or Ctrl-C.

    KeyboardInterrupt is not propagated: ``progress.interrupted`` says so, and the same call
    continues. Finished runs are stored (and single models scored) the moment they end. One
    process at a time runs a campaign directory (:func:`campaign_lock`).
    """
    from rnnstab_cli.sweep.local import default_jobs

    jobs = jobs if jobs is not None else default_jobs()
    if jobs < 1:
        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    with campaign_lock(campaign.root):
        return _run_locked(campaign, backend, jobs, address, on_start, on_run)


def _run_locked(
    campaign: Campaign,
    backend: str,
    jobs: int,
    address: str | None,
    on_start: Callable[[Campaign], None] | None,
    on_run: OnRun | None,
) -> Progress:
    from rnnstab_cli.sweep.local import run_local

    campaign.replan()
    campaign.check_data()
    campaign.register()
    campaign.archive_logs()
    campaign.drop_stored_resume_state()
    campaign.score_missing()  # a kill between storing a run and scoring it
    pr = campaign.progress
    pr.stored_before = len(campaign._stored & set(campaign._planned))
    campaign.start_session()
    if on_start is not None:
        on_start(campaign)
    backend_name = "ray" if backend == "ray" else "local-process"

    def next_task() -> RunTask | None:
        return campaign.next_task(backend_name, jobs)

    def on_result(result: dict[str, Any]) -> None:
        campaign.on_result(result, on_run)

    t0 = time.perf_counter()
    try:
        if backend == "ray":
            from rnnstab_cli.sweep.ray_backend import run_ray

            run_ray(next_task, on_result, address=address, jobs=jobs)
        else:
            run_local(next_task, on_result, jobs=jobs)
    except KeyboardInterrupt:
        pr.interrupted = True
    finally:
        campaign._touch_session()
    pr.notes.append(f"this session: {time.perf_counter() - t0:.0f} s")
    return pr
