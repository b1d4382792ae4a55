"""Suite progress: a rich live display on a terminal, plain one-line-per-run output in CI logs, a summary table."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from .spec import ResolvedRun

__all__ = ["PlainProgress", "RichProgress", "error_line", "make_progress", "print_summary"]


def error_line(record: dict[str, Any]) -> str:
    """The most telling line of a record's error: the exception line of a traceback, else its first line."""
    error = (record.get("error") or "").strip()
    if not error:
        return ""
    lines = [ln for ln in error.splitlines() if ln.strip()]
    if lines[0].startswith("Traceback"):
        return lines[-1].strip()
    return lines[0].strip()


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """One line per completed run, with counts and an ETA: readable in CI logs."""

    def __init__(self, total: int, skipped: int, stream: TextIO | None = None) -> None:
        self.total, self.skipped = total, skipped
        self.stream = stream or sys.stdout
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.t0 = time.time()

    def __enter__(self) -> PlainProgress:
        print(f"{self.total} runs to do ({self.skipped} already done)", file=self.stream, flush=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def eta(self) -> float | None:
        done = sum(self.counts.values())
        if not done:
            return None
        return (time.time() - self.t0) / done * (self.total - done)

    def started(self, run: ResolvedRun) -> None:
        self.in_flight += 1

    def finished(self, run: ResolvedRun, record: dict[str, Any]) -> None:
        self.in_flight -= 1
        self.counts[record["status"]] += 1
        done = sum(self.counts.values())
        extra = f" -- {error_line(record)}" if record["status"] != "finished" else ""
        print(
            f"[{done}/{self.total}] {record['status']:<8} {run.run_id} {run.label} "
            f"({record.get('wall_time_s') or 0:.1f} s; in flight {self.in_flight}; ETA {_fmt_eta(self.eta())}){extra}",
            file=self.stream,
            flush=True,
        )


class RichProgress(PlainProgress):
    """A live bar with done / failed / in flight counts and an ETA."""

    def __enter__(self) -> RichProgress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task("runs", total=self.total, counts=self._counts_text())
        if self.skipped:
            self._progress.console.print(f"{self.skipped} runs already done, skipped")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def _counts_text(self) -> str:
        failed = self.counts["failed"] + self.counts["timeout"]
        return (
            f"[green]{self.counts['finished']} ok[/] [yellow]{self.counts['diverged']} diverged[/] "
            f"[red]{failed} failed[/] [cyan]{self.in_flight} in flight[/]"
        )

    def started(self, run: ResolvedRun) -> None:
        super().started(run)
        self._progress.update(self._task, counts=self._counts_text())

    def finished(self, run: ResolvedRun, record: dict[str, Any]) -> None:
        self.in_flight -= 1
        self.counts[record["status"]] += 1
        if record["status"] in ("failed", "timeout"):
            self._progress.console.print(
                f"{record['status']} {run.label}: {error_line(record)}",
                style="red",
                markup=False,
                highlight=False,
            )
        self._progress.update(self._task, advance=1, counts=self._counts_text())


def make_progress(total: int, skipped: int, *, rich: bool | None = None) -> PlainProgress:
    """Rich on a terminal, plain lines otherwise."""
    if rich is None:
        rich = sys.stdout.isatty()
    return (RichProgress if rich else PlainProgress)(total, skipped)


def print_summary(records: list[dict[str, Any]], *, title: str, skipped: int = 0) -> None:
    """A table of counts by status, then one line per failed or timed-out run with its error line."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(100, Console().width), soft_wrap=False)
    counts = Counter(r.get("status") for r in records)
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("runs", justify="right")
    for status in ("finished", "diverged", "failed", "timeout"):
        table.add_row(status, str(counts.get(status, 0)))
    if skipped:
        table.add_row("(skipped: already done)", str(skipped))
    console.print(table)
    for record in records:
        if record.get("status") in ("failed", "timeout"):
            line = f"{record['status']}: {record['run_id']} {record.get('label', '')}: {error_line(record)}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
