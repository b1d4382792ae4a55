"""``wnbench bench inference``: the simulation table behind the task-level decider -- family-wise error under
task-level nulls and power at 3, 5, 8 and 12 tasks, old method (multi-stage bootstrap) against the new one and
its candidates (:mod:`wnbench.report.simulate`). Writes ``inference.json``; the report renders it with
:func:`wnbench.report.simulate.render_inference_table`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from wnbench.errors import UserError
from wnbench.report.simulate import COLUMN_TITLES, FWER, InferenceTable, inference_table

from .output import environment, write_rows

DEFAULT_TASK_COUNTS = (3, 5, 8, 12)


def check_args(reps: int, old_reps: int, boot_reps: int, task_counts: Sequence[int]) -> None:
    """Refuse bad arguments, all problems at once, before anything runs."""
    problems = []
    if reps < 100:
        problems.append(f"--reps: need at least 100 replicates to bound a rate, got {reps}")
    if old_reps < 0:
        problems.append(f"--old-reps: expected 0 (leave the old method out) or more, got {old_reps}")
    if boot_reps < 50:
        problems.append(f"--boot-reps: need at least 50 bootstrap resamples, got {boot_reps}")
    bad = [n for n in task_counts if not 2 <= n <= 16]
    if not task_counts or bad:
        problems.append(f"--tasks: expected task counts between 2 and 16, got {list(task_counts)}")
    if problems:
        raise UserError("bad benchmark arguments", problems)


def run_inference_bench(
    out: Path,
    reps: int = 4000,
    old_reps: int = 200,
    boot_reps: int = 500,
    seed: int = 0,
    task_counts: Sequence[int] = DEFAULT_TASK_COUNTS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Simulate, write ``out/inference.json`` (``{"meta", "rows"}``) and return what was written."""
    check_args(reps, old_reps, boot_reps, task_counts)
    table: InferenceTable = inference_table(reps, old_reps, boot_reps, seed, task_counts, progress)
    meta = {**environment("cpu"), **table.meta, "task_counts": list(task_counts)}
    write_rows(out / "inference.json", table.rows, meta)
    return {"meta": meta, "rows": [asdict(r) for r in table.rows]}


def rich_table(data: Mapping[str, Any]) -> Table:
    """The table for the terminal: rows = task count x measure, columns = methods."""
    rows = data["rows"]
    columns = list(dict.fromkeys(r["column"] for r in rows))
    table = Table(
        title="Task-level inference: family-wise error under task-level nulls and power "
        f"(family of 3, Holm at {data['meta']['alpha']:g}; rate ± Monte-Carlo SE)"
    )
    table.add_column("tasks", justify="right")
    table.add_column("measure")
    for c in columns:
        table.add_column(COLUMN_TITLES.get(c, c), justify="right")
    cell = {(r["tasks"], r["measure"], r["column"]): r for r in rows}
    for tasks, measure in dict.fromkeys((r["tasks"], r["measure"]) for r in rows):
        values = [cell.get((tasks, measure, c)) for c in columns]
        table.add_row(
            str(tasks),
            "FWER (null)" if measure == FWER else "power",
            *[f"{v['rate']:.3f} ± {v['mcse']:.3f}" if v else "" for v in values],
        )
    return table
