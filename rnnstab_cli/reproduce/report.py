"""The reproduction report: ``DIR/README.md`` and its figures, written from a campaign
directory alone.

Every number comes from the section stores, the generalisation scores and ``campaign.json``
(which session, commit and machine finished each run); the analysis of what did not reproduce
comes from ``DIR/notes/<section>.md``, written by people and kept with the evidence. Nothing
here reads the clock or the machine, so the same directory always gives the same file.
"""

from __future__ import annotations

import functools
import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.reproduce.campaign import (
    STORE_FILE,
    CampaignRun,
    estimate_left,
    fig7_budgets,
    fig7_lengths,
    plan_campaign,
    read_campaign_file,
)
from rnnstab_cli.reproduce.natural import NATURAL_STUDIES, NaturalRow, NaturalStore
from rnnstab_cli.reproduce.scores import Score, ScoreStore
from rnnstab_cli.reproduce.studies import FIG7_FIRST_SEEDS, SECTIONS
from rnnstab_cli.sweep.store import ResultStore, RunRow
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE

__all__ = ["REPORT_FILE", "Claim", "write_report"]

REPORT_FILE: Final[str] = "README.md"
FIG7_FIGURE: Final[str] = "figures/fig7.png"

Verdict = str  # reproduced | partly | not reproduced | pending


@dataclass(frozen=True)
class Claim:
    """One row of the summary table."""

    section: str
    claim: str
    paper: str
    measured: str
    seeds: str
    budget: str
    core_hours: str
    machine: str
    commit: str
    verdict: Verdict


# --------------------------------------------------------------------------------------------
# Reading the evidence
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    root: Path
    sessions: list[dict[str, Any]]
    rows: dict[str, list[RunRow]]  # section → stored runs
    planned: list[CampaignRun]
    scores: dict[str, dict[int, Score]]  # run id → length → score
    natural: dict[str, list[NaturalRow]]  # section → natural runs

    def row(self, run_id: str) -> RunRow | None:
        for rows in self.rows.values():
            for r in rows:
                if r.run_id == run_id:
                    return r
        return None

    def study_runs(self, match: Callable[[str], bool]) -> list[tuple[CampaignRun, RunRow | None]]:
        return [(p, self.row(p.run_id)) for p in self.planned if match(p.study.name)]

    def session_of(self, row: RunRow | NaturalRow) -> dict[str, Any] | None:
        """The session that stored ``row`` (its ``finished`` time within the session's span)."""
        for s in self.sessions:
            if str(s.get("started", "")) <= row.finished <= str(s.get("ended", "")):
                return s
        return None


def read_evidence(root: Path) -> Evidence:
    data = read_campaign_file(root)
    rows: dict[str, list[RunRow]] = {}
    for section in SECTIONS:
        path = root / section / STORE_FILE
        if path.is_file():
            with ResultStore.open_readonly(path) as store:
                rows[section] = store.runs()
    planned = plan_campaign(
        [s for s in SECTIONS if s in ("fig7", "generalisation", "tasks")],
        lambda section: rows.get(section, []),
    )
    scores: dict[str, dict[int, Score]] = {}
    gpath = root / "generalisation" / STORE_FILE
    if gpath.is_file():
        score_store = ScoreStore.open_readonly(gpath)
        if score_store is not None:
            try:
                for p in planned:
                    if p.study.score_lengths:
                        scores[p.run_id] = score_store.of(p.run_id)
            finally:
                score_store.close()
    natural: dict[str, list[NaturalRow]] = {}
    for section in NATURAL_STUDIES:
        nstore = NaturalStore.open(root / section / STORE_FILE, readonly=True)
        if nstore is not None:
            try:
                natural[section] = nstore.rows()
            finally:
                nstore.close()
    return Evidence(root, data["sessions"], rows, planned, scores, natural)


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x in (0.0, 1.0) else f"{100 * x:.1f}%"


def _err(x: float) -> str:
    return f"{100 * x:.2f}%"


def _count(n: int) -> str:
    return f"{n:,}"


def _hours(rows: Sequence[RunRow]) -> str:
    return f"{sum(r.wall_time or 0.0 for r in rows) / 3600:.2f}"


def _provenance(ev: Evidence, rows: Sequence[RunRow | NaturalRow]) -> tuple[str, str]:
    machines, commits = set(), set()
    for r in rows:
        s = ev.session_of(r)
        if s is None:
            machines.add("?")
            commits.add("?")
            continue
        m = s.get("machine") or {}
        machines.add(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('simd', '?')}")
        commits.add(str(s.get("commit") or f"rnnstab {s.get('rnnstab', '?')}"))
    return "; ".join(sorted(machines)) or "—", ", ".join(sorted(commits)) or "—"


def _solve_stats(rows: Sequence[RunRow]) -> str:
    ups = sorted(r.updates or 0 for r in rows if r.solved)
    if not ups:
        return "—"
    med = statistics.median(ups)
    return f"median {med:,.0f} ({ups[0]:,}–{ups[-1]:,})"


def _budget(pairs: Sequence[tuple[CampaignRun, RunRow | None]]) -> str:
    budgets = sorted({p.run.config.max_updates for p, _ in pairs})
    if not budgets:
        return "—"
    shown = (
        _count(budgets[0]) if len(budgets) == 1 else f"{_count(budgets[0])}–{_count(budgets[-1])}"
    )
    return f"{shown} updates per run"


def _left_hours(ev: Evidence, todo: Sequence[CampaignRun]) -> str:
    rows = [r for rows in ev.rows.values() for r in rows]
    left = estimate_left(rows, ev.planned, todo)
    return "?" if left is None else f"{left / 3600:.1f}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return out


def _seed_text(pairs: Sequence[tuple[CampaignRun, RunRow | None]]) -> str:
    stored = sum(1 for _, r in pairs if r is not None)
    return f"{stored} of {len(pairs)} runs stored" if stored < len(pairs) else f"{len(pairs)} runs"


def _claim(
    ev: Evidence,
    section: str,
    claim: str,
    paper: str,
    measured: str,
    pairs: Sequence[tuple[CampaignRun, RunRow | None]],
    budget: str,
    verdict: Verdict,
) -> Claim:
    rows = [r for _, r in pairs if r is not None]
    machine, commit = _provenance(ev, rows)
    return Claim(
        section,
        claim,
        paper,
        measured,
        _seed_text(pairs),
        budget,
        _hours(rows),
        machine if rows else "—",
        commit if rows else "—",
        verdict,
    )


def _rate_verdict(solved: int, total: int, complete: bool) -> Verdict:
    if not complete or total == 0:
        return "pending"
    if solved == total:
        return "reproduced"
    return "partly" if solved else "not reproduced"


# --------------------------------------------------------------------------------------------
# Fig. 7
# --------------------------------------------------------------------------------------------


def _fig7(ev: Evidence) -> tuple[list[Claim], list[str], list[RunRow]]:
    fig7 = [(p, r) for p, r in ev.study_runs(lambda n: n.startswith("fig7-"))]
    budgets = fig7_budgets(ev.rows.get("fig7", []), [p for p, _ in fig7])
    lengths = fig7_lengths([p for p, _ in fig7])
    cr = [(p, r) for p, r in fig7 if p.run.config.method == "sgd-cr"]
    base = [(p, r) for p, r in fig7 if p.run.config.method != "sgd-cr"]

    def at(
        pairs: Sequence[tuple[CampaignRun, RunRow | None]], method: str, length: int
    ) -> list[RunRow]:
        return [
            r
            for p, r in pairs
            if r is not None
            and r.outcome != "failed"
            and p.run.config.method == method
            and p.run.config.length.lo == length
        ]

    def cell(rows: Sequence[RunRow]) -> str:
        return f"{sum(r.solved for r in rows)}/{len(rows)}" if rows else "—"

    lines = [
        "| method | " + " | ".join(f"len {n}" for n in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for method, pairs in (("sgd", base), ("sgd-c", base), ("sgd-cr", cr)):
        label = {"sgd": "SGD", "sgd-c": "SGD-C", "sgd-cr": "SGD-CR"}[method]
        lines.append(
            f"| {label} | " + " | ".join(cell(at(pairs, method, n)) for n in lengths) + " |"
        )
    lines.append(
        "| budget (updates, all three) | "
        + " | ".join(_count(budgets[n]) if n in budgets else "pending" for n in lengths)
        + " |"
    )
    lines.append(
        "| SGD-CR updates to solve | "
        + " | ".join(_solve_stats(at(cr, "sgd-cr", n)) for n in lengths)
        + " |"
    )

    # Claim 1: SGD-CR 100% up to 200.
    first_cr = [(p, r) for p, r in cr if p.run.config.seed < FIG7_FIRST_SEEDS]
    complete = all(r is not None for _, r in first_cr)
    counted = [r for _, r in cr if r is not None and r.outcome != "failed"]
    solved = sum(r.solved for r in counted)
    per_len = ", ".join(f"{n}: {cell(at(cr, 'sgd-cr', n))}" for n in lengths if at(cr, "sgd-cr", n))
    claims = [
        _claim(
            ev,
            "fig7",
            "SGD-CR solves temporal order at every length up to 200",
            "100% success at 10–200",
            f"solved/runs per length: {per_len or '—'}",
            cr,
            f"{_count(max((p.run.config.max_updates for p, _ in cr), default=0))} updates "
            "per run (the cap)",
            _rate_verdict(solved, len(counted), complete),
        ),
    ]

    # Claim 2: neither SGD nor SGD-C beyond 20.
    long_base = [(p, r) for p, r in base if p.run.config.length.lo > 20]
    first_long = [(p, r) for p, r in long_base if p.run.config.seed < FIG7_FIRST_SEEDS]
    long_complete = len(budgets) == len(lengths) and all(r is not None for _, r in first_long)
    long_rows = [r for _, r in long_base if r is not None and r.outcome != "failed"]
    long_solved = sum(r.solved for r in long_rows)
    if not long_complete:
        verdict = "pending"
    elif long_solved == 0:
        verdict = "reproduced"
    else:
        at_100 = [r for r in long_rows if int(str(r.config.get("len"))) >= 100 and r.solved]
        verdict = "partly" if not at_100 else "not reproduced"
    per_len_b = ", ".join(
        f"{n}: SGD {cell(at(base, 'sgd', n))}, SGD-C {cell(at(base, 'sgd-c', n))}"
        for n in lengths
        if at(base, "sgd", n) or at(base, "sgd-c", n)
    )
    claims.append(
        _claim(
            ev,
            "fig7",
            "SGD and SGD-C cannot solve temporal order beyond length 20",
            "0% beyond 20",
            per_len_b or "—",
            base,
            "per length: max(1.5 × slowest SGD-CR solve, 100,000)",
            verdict,
        )
    )
    all_rows = [r for _, r in fig7 if r is not None]
    return claims, lines, all_rows


def _fig7_figure(ev: Evidence, rows: Sequence[RunRow]) -> bool:
    """Fig. 7 from the stored runs; False when there is nothing to draw yet."""
    from rnnstab_cli.sweep.plot import plot_success, success_curves

    counted = [r for r in rows if r.outcome != "failed"]
    curves = success_curves(counted, by="method", x="len")
    if not curves:
        return False
    plot_success(
        curves,
        ev.root / FIG7_FIGURE,
        title="Temporal order: rate of success vs. sequence length",
        subtitle="rnnstab, the paper's settings; budget per length as in the table",
        xlabel="sequence length",
    )
    return True


# --------------------------------------------------------------------------------------------
# Generalisation and the appendix's tasks
# --------------------------------------------------------------------------------------------


def _generalisation(ev: Evidence) -> tuple[list[Claim], list[str]]:
    claims: list[Claim] = []
    scored = sorted({n for p in ev.planned for n in p.study.score_lengths})
    header = ["task", "seed", "outcome", "updates"] + [f"len {n}" for n in scored]
    body: list[list[str]] = []
    studies = sorted(
        {p.study.name: p.study for p in ev.planned if p.study.score_lengths}.values(),
        key=lambda s: s.priority,
    )
    for study in studies:
        task = study.name.removeprefix("generalisation-")
        pairs = ev.study_runs(functools.partial(operator.eq, study.name))
        models = []
        for p, r in pairs:
            if r is None:
                continue
            sc = ev.scores.get(p.run_id, {})
            body.append(
                [task, str(p.run.config.seed), r.outcome, _count(r.updates or 0)]
                + [_err(sc[n].error_rate) if n in sc else "—" for n in scored]
            )
            if r.solved and 400 in sc:
                models.append(sc[400].error_rate)
        complete = bool(pairs) and all(r is not None for _, r in pairs)
        solved = [r for _, r in pairs if r is not None and r.solved]
        good = sum(e <= SOLVED_ERROR_RATE for e in models)
        if not complete:
            verdict = "pending"
        elif not solved:
            verdict = "not reproduced"
        else:
            verdict = (
                "reproduced" if good == len(models) else "partly" if good else "not reproduced"
            )
        measured = (
            f"{len(solved)} of {sum(r is not None for _, r in pairs)} seeds solved 50–200; "
            f"{good} of {len(models)} solved models ≤ 1% at 400"
            + (f" (errors at 400: {', '.join(_err(e) for e in sorted(models))})" if models else "")
        )
        claims.append(
            _claim(
                ev,
                "generalisation",
                study.claim,
                "< 1% error up to length 400",
                measured,
                pairs,
                _budget(pairs),
                verdict,
            )
        )
    return claims, _table(header, body)


_APPENDIX: Final[tuple[tuple[str, str, str, str], ...]] = (
    # study, claim, the paper's figure, rule
    ("generalisation-addition", "addition, one model for 50–200", "100% success", "all"),
    (
        "generalisation-multiplication",
        "multiplication, one model for 50–200",
        "100% success",
        "all",
    ),
    (
        "tasks-temporal-order-3bit",
        "3-bit temporal order (100 units), 50–200",
        "100% success",
        "all",
    ),
    ("tasks-random-permutation", "random permutation (100 units), 50–200", "1 of 8 runs", "any"),
    (
        "tasks-memorization-5bit",
        "noiseless memorisation, 5 bits, a model per length",
        "100% success",
        "all",
    ),
    (
        "tasks-memorization-20bit",
        "noiseless memorisation, 20+ bits, a model per length",
        "100% success",
        "all",
    ),
)


def _tasks(ev: Evidence) -> tuple[list[Claim], list[str]]:
    claims: list[Claim] = []
    body: list[list[str]] = []
    for study, claim, paper, rule in _APPENDIX:
        pairs = ev.study_runs(functools.partial(operator.eq, study))
        rows = [r for _, r in pairs if r is not None and r.outcome != "failed"]
        complete = bool(pairs) and all(r is not None for _, r in pairs)
        solved = sum(r.solved for r in rows)
        lengths = sorted({str(p.run.config.length) for p, _ in pairs}, key=lambda s: (len(s), s))
        for length in lengths:
            at = [
                r
                for p, r in pairs
                if r is not None and r.outcome != "failed" and str(p.run.config.length) == length
            ]
            body.append(
                [
                    claim,
                    length,
                    f"{sum(r.solved for r in at)}/{len(at)}" if at else "—",
                    _solve_stats(at),
                ]
            )
        if rule == "any":
            verdict = "pending" if not complete else "reproduced" if solved else "not reproduced"
        else:
            verdict = _rate_verdict(solved, len(rows), complete)
        measured = f"{solved}/{len(rows)} solved" if rows else "—"
        claims.append(
            _claim(
                ev,
                "tasks",
                f"SGD-CR solves {claim}",
                paper,
                measured,
                pairs,
                _budget(pairs),
                verdict,
            )
        )
    return claims, _table(["task", "length", "solved/runs", "updates to solve"], body)


# --------------------------------------------------------------------------------------------
# Tables 1 and 2 (natural tasks)
# --------------------------------------------------------------------------------------------

#: The paper's figures, SGD / SGD+C / SGD+CR (None: not in the paper), (train, test).
_PAPER: Final[dict[str, tuple[str, str, tuple[float | None, ...], tuple[float | None, ...]]]] = {
    # preset: (table, data set, train, test)
    "music-piano-midi": ("Table 1", "Piano-midi.de", (6.87, 6.81, 7.01), (7.56, 7.53, 7.46)),
    "music-nottingham": ("Table 1", "Nottingham", (3.67, 3.21, 3.24), (3.80, 3.48, 3.46)),
    "music-musedata": ("Table 1", "MuseData", (8.25, 6.54, 6.51), (7.11, 7.00, 6.99)),
    "ptb-char": ("Table 2", "next character", (1.46, 1.34, 1.36), (1.50, 1.42, 1.41)),
    "ptb-char-5ahead": ("Table 2", "5 characters ahead", (None, 3.76, 3.70), (None, 3.89, 3.74)),
}
_METHODS: Final[tuple[str, ...]] = ("sgd", "sgd-c", "sgd-cr")
#: A measured figure within this fraction above the paper's counts as reproducing it.
NATURAL_TOLERANCE: Final[float] = 0.05


def _three(values: Sequence[float | None]) -> str:
    return " / ".join("–" if v is None else f"{v:.2f}" for v in values)


def _natural(ev: Evidence) -> tuple[list[Claim], list[str]]:
    claims = []
    body: list[list[str]] = []
    for section in ("music", "ptb"):
        rows = {(r.preset, r.method): r for r in ev.natural.get(section, [])}
        for preset, methods in NATURAL_STUDIES[section]:
            table, name, p_train, p_test = _PAPER[preset]
            got = [rows.get((preset, m)) for m in _METHODS]
            wanted = [rows.get((preset, m)) for m in methods]
            m_train = [None if r is None else r.train for r in got]
            m_test = [None if r is None else r.test for r in got]
            for r in got:
                if r is not None:
                    body.append([
                        f"{table}: {name}", r.method, r.outcome, str(r.epochs),
                        str(r.best_epoch), _count(r.updates), _fmt(r.train), _fmt(r.valid),
                        _fmt(r.test), f"{r.wall_time / 3600:.2f}",
                    ])  # fmt: skip
            if any(r is None for r in wanted):
                verdict = "pending"
            else:
                pairs = [(m, p) for m, p in zip(m_test, p_test, strict=True) if p is not None]
                close = all(m is not None and m <= p * (1 + NATURAL_TOLERANCE) for m, p in pairs)
                sgd_best = m_test[0] is not None and all(
                    m is not None and m_test[0] < m for m in m_test[1:]
                )
                verdict = "reproduced" if close else "not reproduced" if sgd_best else "partly"
            unit = "NLL per time step" if section == "music" else "bits per character"
            done = [r for r in wanted if r is not None]
            machine, commit = ("—", "—")
            claims.append(
                Claim(
                    section,
                    f"{table}: {name}, SGD / SGD+C / SGD+CR ({unit})",
                    f"train {_three(p_train)}, test {_three(p_test)}",
                    f"train {_three(m_train)}, test {_three(m_test)}" if done else "not run yet",
                    f"{len(done)} of {len(wanted)} runs stored",
                    "the preset's epochs, early stopping on validation",
                    f"{sum(r.wall_time for r in done) / 3600:.2f}",
                    _provenance(ev, done)[0] if done else machine,
                    _provenance(ev, done)[1] if done else commit,
                    verdict,
                )
            )
    header = ["table", "method", "stopped by", "epochs", "best epoch", "updates", "train",
              "valid", "test", "core-hours"]  # fmt: skip
    return claims, _table(header, body) if body else ["Not run in this campaign yet."]


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def _notes(root: Path, section: str) -> list[str]:
    path = root / "notes" / f"{section}.md"
    if not path.is_file():
        return []
    try:
        return ["", path.read_text(encoding="utf-8").rstrip()]
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {str(path)!r}: {e}") from None


def _sessions(ev: Evidence) -> list[str]:
    body = []
    for s in ev.sessions:
        m = s.get("machine") or {}
        stored = [r for rows in ev.rows.values() for r in rows if ev.session_of(r) is s]
        body.append(
            [
                str(s.get("started", "?"))[:19].replace("T", " "),
                str(s.get("ended", "?"))[:19].replace("T", " "),
                ", ".join(s.get("sections") or []),
                str(s.get("commit") or "—"),
                f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores, {m.get('simd', '?')})",
                str(len(stored)),
                _hours(stored),
            ]
        )
    return _table(
        [
            "started (UTC)",
            "last run stored",
            "sections",
            "commit",
            "machine",
            "runs stored",
            "core-hours",
        ],
        body,
    )


def render(ev: Evidence, fig7_drawn: bool, fig7_claims: list[Claim], fig7_table: list[str]) -> str:
    gen_claims, gen_table = _generalisation(ev)
    task_claims, task_table = _tasks(ev)
    natural_claims, natural_table = _natural(ev)
    claims = fig7_claims + gen_claims + task_claims + natural_claims
    all_rows = [r for rows in ev.rows.values() for r in rows]
    natural_rows = [r for rows in ev.natural.values() for r in rows]
    total_h = (
        sum(r.wall_time or 0.0 for r in all_rows) + sum(r.wall_time for r in natural_rows)
    ) / 3600
    todo = [p for p in ev.planned if ev.row(p.run_id) is None]
    tally = {
        v: sum(c.verdict == v for c in claims)
        for v in ("reproduced", "partly", "not reproduced", "pending")
    }
    out = [
        "# Reproducing Pascanu, Mikolov & Bengio (2013) with rnnstab",
        "",
        "Generated by `rnnstab reproduce report` from the evidence in this directory alone: the "
        "result stores (`*/store.db`), the final checkpoint of every run (`*/runs/<id>/`, which "
        "`rnnstab eval` loads), `campaign.json` (the sessions: commit and machine) and the notes "
        "in `notes/`. Continue the campaign with `rnnstab reproduce all --dir <this directory>`.",
        "",
        f"**Compute so far:** {total_h:.2f} core-hours of training in "
        f"{len(all_rows) + len(natural_rows)} stored runs "
        f"(each run single-threaded; its wall time is its core time). **Claims:** "
        + ", ".join(f"{n} {v}" for v, n in tally.items())
        + ".",
        "",
        f"**Left:** {len(todo)} planned runs, at most {_left_hours(ev, todo)} core-hours if "
        "every one used its whole budget (at the pace of the stored runs; runs that solve stop "
        "early), plus Fig. 7's SGD and SGD-C runs at lengths whose SGD-CR runs are not all in, "
        "and the natural runs not stored yet.",
        "",
        "A run *solves* a task when at most 1% of 10,000 fresh test sequences are wrong (the "
        "paper's criterion). Core-hours are the runs' training time on the machines listed; runs "
        "shared a 2-core machine with other work, so wall times are upper bounds.",
        "",
        "## Summary: one row per claim",
        "",
    ]
    out += _table(
        [
            "section",
            "claim",
            "paper",
            "rnnstab (measured)",
            "runs",
            "update budget",
            "core-hours",
            "machine",
            "commit",
            "verdict",
        ],
        [
            [
                c.section,
                c.claim,
                c.paper,
                c.measured,
                c.seeds,
                c.budget,
                c.core_hours,
                c.machine,
                c.commit,
                f"**{c.verdict}**",
            ]
            for c in claims
        ],
    )
    out += ["", "## Fig. 7: temporal order, success rate against length", ""]
    if fig7_drawn:
        out += [f"![Fig. 7 as reproduced]({FIG7_FIGURE})", ""]
    out += fig7_table + _notes(ev.root, "fig7")
    out += [
        "",
        "## Generalisation: single models for lengths 50–200",
        "",
        "Error on 10,000 fresh sequences per length (`rnnstab eval RUN --len N`, test seed 0)."
        " The paper: under 1% up to length 400.",
        "",
    ]
    out += gen_table + _notes(ev.root, "generalisation")
    out += ["", "## The appendix's other pathological tasks (SGD-CR)", ""]
    out += task_table + _notes(ev.root, "tasks")
    out += ["", "## Tables 1 and 2: natural tasks", ""]
    out += [
        "The table's metric with the best validation parameters (`rnnstab eval RUN --split`).",
        "",
    ]
    out += natural_table + _notes(ev.root, "music") + _notes(ev.root, "ptb")
    out += ["", "## Sessions", "", *_sessions(ev), ""]
    return "\n".join(out)


def write_report(root: Path) -> Path:
    """Write ``root/README.md`` (and its figures) from the evidence in ``root``."""
    ev = read_evidence(root)
    fig7_claims, fig7_table, fig7_rows = _fig7(ev)
    drawn = _fig7_figure(ev, fig7_rows)
    text = render(ev, drawn, fig7_claims, fig7_table)
    path = root / REPORT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
