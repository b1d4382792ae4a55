"""The ``wnbench`` command line (typer). Makefile targets call this.

User mistakes (a bad config, an unknown norm, a missing file) print one clear message and exit 2;
tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from wnbench.cli_bench import bench_app
from wnbench.errors import UserError
from wnbench.norms import NormError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmarks that test whether Weight Normalization beats Batch Normalization in noise-sensitive training.",
)
app.add_typer(bench_app, name="bench")


@app.command("norms")
def norms_command() -> None:
    """List the registered norm kinds, one line each, and how to compose them."""
    from rich.console import Console
    from rich.table import Table

    from wnbench.norms import COMPOSITION_GRAMMAR, available_norms, make_norm, norm_aliases

    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("norm")
    table.add_column("part")
    table.add_column("batch stats")
    table.add_column("recurrent")
    table.add_column("what it is")
    aliases = norm_aliases()
    for name in available_norms():
        norm = make_norm(name)
        summary = norm.summary if name not in aliases else f"= {aliases[name][0]} with {aliases[name][1]}"
        table.add_row(
            name,
            "alias" if name in aliases else type(norm).role,
            "yes" if norm.uses_batch_statistics else "no",
            "yes" if norm.supports_recurrent else "no",
            summary,
        )
    console = Console(width=160)
    console.print(table)
    console.print(f"\nCompose: {COMPOSITION_GRAMMAR}.", highlight=False, markup=False)
    console.print(
        "Examples: weight+batch_renorm (CrossQ + WN), spectral+batch, weight+layer, "
        "{name: batch_renorm, placement: pre} (CrossQ's own layout), {name: spectral, layers: last_hidden}.",
        highlight=False,
    )


@app.command("run")
def run_command(
    suite_file: Path = typer.Argument(..., help="Suite YAML file (see suites/)."),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Profile to run (default: 'default' or the first)."
    ),
    executor: str = typer.Option("local", "--executor", "-e", help="local (process pool) or ray."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", min=1, help="Parallel runs (default: CPU cores)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Results folder (default: results/<suite name>)."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="List the runs and which are already done, with CPU-hours per cell spent and still to run (from the "
        "folder's records); run nothing.",
    ),
    no_wandb: bool = typer.Option(False, "--no-wandb", help="Do not track runs in W&B."),
    wandb_project: str | None = typer.Option(
        None, "--wandb-project", help="W&B project (default: $WANDB_PROJECT or wnbench)."
    ),
    wandb_entity: str | None = typer.Option(
        None, "--wandb-entity", help="W&B entity (default: $WANDB_ENTITY)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="KEY=VALUE override, dotted path into the profile (repeatable)."
    ),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Run one slice: FIELD=V1[,V2] with FIELD task, algo, norm, seed or params.KEY (repeatable; all must "
        "match). Same run ids as the whole profile, so records resume and publish with it.",
    ),
    stop_after: str | None = typer.Option(
        None,
        "--stop-after",
        help="Start no run after this long (e.g. 2h30m, 90m, 3600s); runs in flight finish, the rest wait for the "
        "next invocation. For time-limited sessions and batch jobs: leave the longest run's time to spare.",
    ),
) -> None:
    """Run a suite's runs that are not done yet; exit 1 if any run failed or timed out."""
    from wnbench.suite import is_done, load_suite, parse_overrides, plan, run_suite, select_runs
    from wnbench.suite.executors import EXECUTORS
    from wnbench.tracking import resolve_options

    if executor not in EXECUTORS:
        raise UserError(f"--executor: unknown executor '{executor}'; known: {', '.join(EXECUTORS)}")
    start_until = None if stop_after is None else time.time() + parse_duration(stop_after, "--stop-after")
    suite = select_runs(load_suite(suite_file, profile, parse_overrides(overrides)), only)
    out_dir = out or Path("results") / suite.name
    if dry_run:
        rows = plan(suite, out_dir)  # with the evaluation runs of every tuning group already decided
        done = 0
        for run, record in rows:
            state = record["status"] if record else "pending"
            done += is_done(record)
            print(f"{run.run_id}  {state:<8}  {run.label}  {_short_params(run.params)}")
        to_run = len(rows) - done
        print(
            f"{len(rows)} runs in {suite.name}/{suite.profile}: {done} done, {to_run} to run (out: {out_dir})"
        )
        from wnbench.suite.cost import cost_lines, plan_cost

        print("\n".join(cost_lines(plan_cost(rows))))
        undecided = sum(g.decided is None for g in suite.tune_groups)
        if undecided:
            print(
                f"{undecided} tuning groups wait for their tuning runs: their evaluation runs are added (and "
                "listed) once those are done"
            )
        return
    tracking = resolve_options(out_dir, enabled=not no_wandb, project=wandb_project, entity=wandb_entity)
    print(
        f"suite {suite.name}/{suite.profile}: {len(suite.runs)} runs, executor {executor}, out {out_dir}, "
        f"W&B {tracking.mode} ({tracking.reason})",
        flush=True,
    )
    try:
        result = run_suite(
            suite, out_dir, executor=executor, workers=workers, tracking=tracking, start_until=start_until
        )
    except KeyboardInterrupt as err:  # SIGTERM/SIGHUP/SIGINT: in-flight runs were stopped and have no record
        from wnbench.suite.signals import Interrupted

        print("interrupted; rerun the same command to resume", file=sys.stderr, flush=True)
        raise typer.Exit(err.exit_code if isinstance(err, Interrupted) else 130) from None
    raise typer.Exit(result.exit_code)


DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds in a duration such as ``2h30m``, ``90m``, ``45s`` or ``3600`` (seconds); UserError otherwise."""
    import re

    spec = text.strip().lower()
    number = r"(\d+(?:\.\d+)?)"
    if re.fullmatch(number, spec):
        spec += "s"
    parts = re.fullmatch(f"(?:{number}h)?(?:{number}m)?(?:{number}s)?", spec)
    if parts is None or not any(parts.groups()):
        raise UserError(f"{option}: '{text}' is not a duration; write e.g. 2h30m, 90m, 45s or 3600 (seconds)")
    return sum(float(v) * unit for v, unit in zip(parts.groups(), DURATION_UNITS.values(), strict=True) if v)


def _short_params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k in ("lr", "batch_size", "fault"))


@app.command("publish")
def publish_command(
    directories: list[Path] = typer.Argument(..., help="Suite output folders (OUT of wnbench run)."),
    to: Path = typer.Option(
        Path("results/published"), help="Folder for <suite>.jsonl.gz and <suite>.plan.json."
    ),
    lock_timeout: float = typer.Option(
        120.0, min=0.0, help="Seconds to wait for another publisher's lock on --to before giving up (exit 2)."
    ),
) -> None:
    """Compress a suite's finished records into one committable file per suite (merged with what is there, under a
    lock on --to, so publishers running at once lose nothing). A published archive that is damaged or differs
    from its plan is never overwritten: exit 2."""
    from wnbench.suite.published import export_published

    for directory in directories:
        if not (directory / "suite.json").is_file():
            raise UserError(f"{directory}: no suite.json; expected the OUT folder of a wnbench run")
        records, plan, count = export_published(directory, to, lock_timeout_s=lock_timeout)
        typer.echo(f"{directory}: {count} records -> {records} (+ {plan.name})")


@app.command("verify")
def verify_command(
    paths: list[Path] = typer.Argument(
        None,
        help="Published folders (their pending/ too) or <suite>.jsonl.gz files [default: results/published].",
    ),
    seal: bool = typer.Option(
        False,
        "--seal",
        help="Record the count and digest of archives whose plan has none (written before wnbench recorded them); "
        "a digest already recorded is only checked, never rewritten.",
    ),
) -> None:
    """Check every published archive against the record count and content digest its plan records; exit 2 naming
    each damaged or unsealed file."""
    from wnbench.suite.published import (
        ArchiveError,
        find_archives,
        read_archive,
        recovery_hints,
        seal_archive,
    )

    archives: list[Path] = []
    for path in paths or [Path("results/published")]:
        if path.is_file() and path.name.endswith(".jsonl.gz"):
            archives.append(path)
        elif path.is_dir():
            archives += find_archives(path) + find_archives(path / "pending")
        else:
            raise UserError(f"{path}: not a published folder or a <suite>.jsonl.gz file")
    if not archives:
        raise UserError(f"no published archives (<suite>.jsonl.gz) in {', '.join(map(str, paths or []))}")
    bad: list[str] = []
    damaged: list[Path] = []
    for path in archives:
        try:
            if seal and seal_archive(path):
                typer.echo(f"sealed {path}")
            archive = read_archive(path)
        except ArchiveError as err:
            bad.append(str(err))
            damaged.append(err.archive)
            continue
        if not archive.sealed:
            bad.append(
                f"{path}: no digest recorded in its plan (published before wnbench recorded them); once you know it "
                f"holds the records you published (e.g. git shows it unchanged), run `wnbench verify --seal {path.parent}`"
            )
            continue
        typer.echo(f"ok {path}: {archive.count} records, sha256 {archive.sha256[:12]}...")
    if bad:
        hints = recovery_hints(*damaged) if damaged else []
        raise UserError(f"{len(bad)} of {len(archives)} published archives failed verification", bad + hints)
    typer.echo(f"{len(archives)} published archives verified")


@app.command("unpack")
def unpack_command(
    published: Path = typer.Argument(..., help="A <suite>.jsonl.gz written by wnbench publish."),
    out: Path = typer.Option(
        ..., help="Suite output folder to unpack into (wnbench run --out resumes from it)."
    ),
) -> None:
    """Unpack published records into a suite output folder, so a run resumes from them and a report reads them."""
    from wnbench.suite.published import import_published

    if not published.is_file() or not published.name.endswith(".jsonl.gz"):
        raise UserError(f"{published}: expected a <suite>.jsonl.gz written by wnbench publish")
    count = import_published(published, out)
    typer.echo(f"{published}: {count} records unpacked into {out}")


@app.command("wandb-export")
def wandb_export_command(
    results: Path = typer.Argument(
        ...,
        help="A published folder (its *.jsonl.gz), one <suite>.jsonl.gz, or a run folder (OUT/runs/*/record.json).",
    ),
    project: str = typer.Option(None, help="W&B project (default: $WANDB_PROJECT or wnbench)."),
    entity: str = typer.Option(
        None, help="W&B entity (default: $WANDB_ENTITY or your default entity at sync)."
    ),
    out: Path = typer.Option(
        Path("results/wandb-reference"), help="Folder the offline runs go to (OUT/wandb/)."
    ),
    workers: int = typer.Option(
        1, min=1, help="Processes writing runs (1 is fastest on a busy 2-core machine)."
    ),
) -> None:
    """Write run records as offline W&B runs (tag `reference`, group = suite), so the published reference can be
    synced and viewed beside your own runs; runs already exported to OUT are skipped."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from wnbench.tracking.export import export_records, load_records

    runs = load_records(
        results
    )  # exit 2 on a missing path, no records or a damaged archive (integrity-checked)
    project = project or os.environ.get("WANDB_PROJECT") or "wnbench"
    entity = entity or os.environ.get("WANDB_ENTITY") or None
    with Progress(
        TextColumn("exporting runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("export", total=None)
        result = export_records(
            runs,
            out_dir=out,
            project=project,
            entity=entity,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(
        f"{result.written} runs written, {result.skipped} skipped (already exported), {result.seconds:.1f} s "
        f"({result.runs_per_s:.2f} runs/s); upload with: {result.sync_command}"
    )


@app.command("status")
def status_command(
    out_dir: Path = typer.Argument(..., help="A results folder written by `wnbench run`."),
) -> None:
    """Count a results folder's runs by status and show each failure's error line."""
    from wnbench.suite import status_of

    status = status_of(out_dir)
    counts = status["counts"]
    order = ["finished", "diverged", "failed", "timeout", "pending"]
    print("  ".join(f"{s}: {counts.get(s, 0)}" for s in order if s in counts or s != "pending"))
    for failure in status["failures"]:
        print(f"{failure['status']}: {failure['run_id']} {failure['label']}: {failure['error']}")


@app.command("report")
def report_command(
    directories: list[Path] = typer.Argument(
        ...,
        help="Results folders: suite outputs (wnbench run), benchmark outputs (wnbench bench), or their parent.",
    ),
    out: Path = typer.Option(
        Path("results/report"), help="Report folder: report.html, report.md, figures/, verdicts.json."
    ),
    wandb: bool = typer.Option(
        False, "--wandb", help="Also build a W&B report of the runs (saved when online)."
    ),
    project: str = typer.Option(None, help="W&B project (default: $WANDB_PROJECT or wnbench)."),
    entity: str = typer.Option(None, help="W&B entity (default: $WANDB_ENTITY or your default entity)."),
    reps: int = typer.Option(2000, min=100, help="Bootstrap resamples per interval."),
    registry: str = typer.Option(
        None,
        help="Claims registry: v3 (the pre-registration, wnbench/report/registry.yaml; the default unless "
        "$WNBENCH_REGISTRY names a file), v2 (the rules behind the v2 verdicts, registry_v2.yaml) or a YAML path.",
    ),
    reference: Path = typer.Option(
        None,
        help="Results to compare with, verdict by verdict and cell by cell (e.g. results/published).",
    ),
    readme: Path = typer.Option(
        None,
        help="Also rewrite this Markdown file's generated blocks (verdicts, matrix, ...: between <!-- NAME:begin/end --> "
        "markers) and those of the docs/*.md pages beside it from the new verdicts files, as `make publish-report` "
        "does for README.md.",
    ),
) -> None:
    """Verdicts for the registered claims from stored records: per-task P(X > Y), decided over tasks by the
    registry's method (v3: exact sign-flip test, Holm within families), per-cell effect sizes, plots,
    HTML/Markdown with the pre-registration."""
    from rich.console import Console
    from rich.table import Table

    from wnbench.report import analyze, load_inputs, load_registry, wandb_sections
    from wnbench.report.render import VERDICT_HEADER, Reference, verdict_rows, write_report
    from wnbench.report.rules import compare_rules

    claims = load_registry(registry)
    if readme is not None:  # before the work: a README without the markers is a bad input
        from wnbench.report.readme import current_block

        try:
            current_block(readme.read_text(encoding="utf-8"), f"--readme {readme}")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"--readme {readme}: cannot read it ({err})") from err
    inputs = load_inputs(directories)
    for line in inputs.skipped + inputs.warnings:
        typer.echo(f"note: {line}", err=True)
    ref = None
    if reference is not None:
        ref_inputs = load_inputs([reference])
        for line in ref_inputs.skipped + ref_inputs.warnings:
            typer.echo(f"note (reference): {line}", err=True)
    with Console(stderr=True).status("building the report (bootstrap intervals, figures)..."):
        results = analyze(inputs, reps=reps, registry=claims)
        rules = compare_rules(inputs, results, claims, reps)  # v3: the v2 rules on the same records beside it
        if reference is not None:
            ref = Reference(str(reference), analyze(ref_inputs, reps=reps, registry=claims), ref_inputs)
        paths = write_report(results, inputs, out, claims, reference=ref, rules=rules)
    table = Table(title="Verdicts")
    for column in VERDICT_HEADER:
        table.add_column(column, overflow="fold")
    for row in verdict_rows(results):
        table.add_row(*row)
    Console(width=200).print(table)
    typer.echo(f"wrote {paths['html']}, {paths['markdown']} and {paths['json']}")
    if readme is not None:
        from wnbench.report.readme import splice_readme

        changed = splice_readme(readme, out)  # the README's blocks and those of docs/*.md beside it
        typer.echo(f"generated blocks rewritten in: {', '.join(map(str, changed))}" if changed
                   else f"{readme} and docs/*.md: generated blocks unchanged")  # fmt: skip
    if wandb:
        from wnbench.tracking import resolve_options
        from wnbench.tracking.wandb_report import build_report as build_wandb_report
        from wnbench.tracking.wandb_report import publish_report

        options = resolve_options(out, enabled=True, project=project, entity=entity)
        sections = wandb_sections(results)
        if not sections:
            typer.echo("W&B report: no tracked suite runs among the inputs; nothing to build")
            return
        from wnbench.tracking.export import REFERENCE_TAG

        mine_vs_reference = (
            f" Each panel grid shows your runs (run set 'mine') beside the reference runs tagged "
            f"'{REFERENCE_TAG}' (run set 'reference', from `wnbench wandb-export {reference}`), grouped by norm."
            if reference is not None
            else ""
        )
        report = build_wandb_report(
            sections,
            project=options.project,
            entity=options.entity,
            title="wnbench: weight norm vs batch norm, claims C1-C8"
            + (": mine vs reference" if reference is not None else ""),
            description="Built by `wnbench report --wandb` from the suite runs; verdicts from the local records."
            + mine_vs_reference,
            reference_tag=REFERENCE_TAG if reference is not None else None,
        )
        typer.echo(publish_report(report, mode=options.mode).replace("OUT/wandb", _wandb_dirs(directories)))
        if reference is not None:
            typer.echo(
                f"the 'reference' run sets show runs tagged '{REFERENCE_TAG}': export and upload them once with "
                f"`wnbench wandb-export {reference} --project {options.project}` and the `wandb sync` it prints"
            )


def _wandb_dirs(directories: list[Path]) -> str:
    """The inputs' offline W&B folders, for the sync hint (``results/rl/wandb`` or ``{a/wandb,b/wandb}``)."""
    found = sorted(
        {str(p) for d in directories for p in [*d.glob("wandb"), *d.glob("*/wandb")] if p.is_dir()}
    )
    if not found:
        return "OUT/wandb"
    return found[0] if len(found) == 1 else "{" + ",".join(found) + "}"


def main() -> None:
    """Console-script entry point: run the app, turning user errors into exit code 2."""
    try:
        app()
    except (UserError, NormError) as err:
        message = err.render() if isinstance(err, UserError) else str(err)
        print(f"wnbench: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
