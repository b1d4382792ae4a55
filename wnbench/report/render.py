"""Writing a report: ``report.md`` with its PNGs in ``figures/``, a self-contained ``report.html`` (figures
inlined), and ``verdicts.json`` (one object per claim, for scripts and CI)."""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plots
from .cells import DIAGNOSTICS
from .claims import __doc__ as METHOD_DOC
from .matrix import Matrix, build_matrix
from .preregistration import PREREGISTRATION_HEADER, preregistration_rows, preregistration_text
from .records import Inputs
from .registry import Registry, load_registry
from .results import ClaimResult, Figure, Table
from .rules import RulesComparison
from .simulate import render_inference_table
from .tables import reference_table

VERDICT_COLORS = {
    "supported": "#1a7f37",
    "contradicted": "#cf222e",
    "equivalent": "#0969da",
    "inconclusive": "#9a6700",
    "insufficient data": "#6e7781",
    "no data": "#6e7781",
}


def _method_text() -> str:
    """The scoring method, from :mod:`wnbench.report.claims`' docstring (one source for code and report)."""
    text = (METHOD_DOC or "").split("\n\n", 1)[-1].strip()
    return text.replace("Scoring (written into every report):", "").replace("``", "`").strip()


def _counts_text(result: ClaimResult) -> str:
    total: dict[str, int] = {}
    for by_status in result.status_counts.values():
        for status, n in by_status.items():
            total[status] = total.get(status, 0) + n
    if not total and not result.missing:
        return "—"
    failed = total.get("failed", 0) + total.get("timeout", 0)
    missing = sum(result.missing.values())
    return f"{total.get('finished', 0)} / {total.get('diverged', 0)} / {failed} / {missing}"


def _md_table(table: Table) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = [f"**{table.title}**", "", "| " + " | ".join(esc(h) for h in table.header) + " |"]
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def make_figures(results: Sequence[ClaimResult], inputs: Inputs, out_dir: Path) -> None:
    """Draw every figure each claim's registry entry asks for (``figures``, in its order) that the data allow, and
    attach it to its claim."""
    fig_dir = out_dir / "figures"
    for result in results:
        for kind in result.registered.figures if result.registered is not None else ():
            for title, name, draw in _FIGURES[kind](result, inputs):
                if draw(fig_dir / name):
                    result.figures.append(Figure(title, f"figures/{name}"))


#: One figure a claim may show: (title, file name, draw(path) -> drawn?).
FigureJob = tuple[str, str, Callable[[Path], bool]]


def _diagnostic_figures(result: ClaimResult, inputs: Inputs) -> list[FigureJob]:
    c = result.claim.lower()
    return [
        (f"Mechanism: {key.removeprefix('diag/')}", f"{c}_diag_{key.removeprefix('diag/')}.png",
         functools.partial(plots.diagnostics, result, key))
        for key in DIAGNOSTICS
    ]  # fmt: skip


def _noise_figures(result: ClaimResult, inputs: Inputs) -> list[FigureJob]:
    if "noise" not in inputs.bench:
        return []
    return [("Noise from batch companions", f"{result.claim.lower()}_noise.png",
             lambda path: plots.noise_plot(inputs.bench["noise"], path, result.claim))]  # fmt: skip


def _batch_sweep_figures(result: ClaimResult, inputs: Inputs) -> list[FigureJob]:
    title = f"{result.claim} in training: headline metric against batch size"
    return [("Training with small batches", f"{result.claim.lower()}_batch.png",
             lambda path: plots.sweep_plot(result, "batch_size", path, title))]  # fmt: skip


def _one(title: str, suffix: str, draw: Callable[..., bool], **kwargs: Any) -> Callable[..., list[FigureJob]]:
    """A figure kind drawn once per claim from its result alone: ``draw(result, path, **kwargs)``."""

    def jobs(result: ClaimResult, inputs: Inputs) -> list[FigureJob]:
        return [(title, f"{result.claim.lower()}_{suffix}.png", functools.partial(draw, result, **kwargs))]

    return jobs


#: The figure kinds a registry entry can name (``figures:``) -> the figures each draws.
_FIGURES: dict[str, Callable[[ClaimResult, Inputs], list[FigureJob]]] = {
    "curves": _one("Learning curves", "curves", plots.learning_curves),
    "diagnostics": _diagnostic_figures,
    "iqm": _one("IQM per norm", "iqm", plots.iqm_intervals),
    "profiles": _one("Performance profiles", "profiles", plots.performance_profiles),
    "throughput": _one(
        "Throughput per norm", "iqm", plots.iqm_intervals, xlabel="IQM of normalized throughput"
    ),
    "noise": _noise_figures,
    "batch_sweep": _batch_sweep_figures,
    "lr": _one("Learning-rate sensitivity", "lr", plots.lr_sensitivity),
    "samples": _one("Generated samples", "samples", plots.sample_grids),
}


def verdict_rows(results: Sequence[ClaimResult]) -> list[list[str]]:
    return [
        [
            r.claim,
            r.title,
            r.verdict,
            r.tuned_verdict or "—",
            r.peer_verdict or "—",
            (r.headline.name + ": " if r.headline else "") + r.headline_text,
            r.direction_text,
            r.effect_text,
            r.basis,
            _counts_text(r),
            r.registry or "—",
        ]
        for r in results
    ]


VERDICT_HEADER = ["claim", "statement", "verdict (shared hyperparameters)", "verdict (tuned per norm)",
                  "verdict (cells at peer level only)",
                  "headline hypothesis: statistic [family-wise CI]", "direction over cells",
                  "effect: median X − Y per cell, raw units [95% CI]", "cells, runs X vs Y",
                  "runs finished / diverged / failed / missing", "registry"]  # fmt: skip


@dataclass(frozen=True)
class Reference:
    """Records to compare against (``wnbench report MINE --reference results/published``) and their verdicts."""

    label: str
    results: Sequence[ClaimResult]
    inputs: Inputs


def _reference_markdown(results: Sequence[ClaimResult], inputs: Inputs, reference: Reference) -> list[str]:
    theirs = {r.claim: r for r in reference.results}
    rows = [
        [r.claim, r.verdict, r.headline_text, r.basis,
         theirs[r.claim].verdict if r.claim in theirs else "—",
         theirs[r.claim].headline_text if r.claim in theirs else "—",
         theirs[r.claim].basis if r.claim in theirs else "—"]
        for r in results
    ]  # fmt: skip
    out = [
        f"## Against the reference ({reference.label})",
        "",
        f"{len(inputs.records)} of your records beside {len(reference.inputs.records)} reference records. Cells "
        "match on suite, task, algorithm and arm; a different budget is shown, not hidden.",
        "",
        _md_table(
            Table(
                "Verdicts, yours and the reference's",
                [
                    "claim",
                    "your verdict",
                    "your headline",
                    "your cells, runs",
                    "reference verdict",
                    "reference headline",
                    "reference cells, runs",
                ],
                rows,
            )
        ),  # fmt: skip
        "",
    ]
    table = reference_table(inputs.records, reference.inputs.records)
    out += [_md_table(table) if table else "No cell (suite, task, algorithm, arm) is in both.", ""]
    return out


def _registry_name(registry: Registry) -> str:
    """``wnbench/report/registry.yaml`` for a built-in registry, else the file's path."""
    source = Path(registry.source) if registry.source else None
    if source is not None and source.parent == Path(__file__).parent:
        return f"wnbench/report/{source.name}"
    return str(source) if source is not None else "wnbench/report/registry.yaml"


def preregistration_markdown(registry: Registry) -> str:
    """The registry as the report prints it: the rule, then one row per hypothesis."""
    sets = "; ".join(
        f"{name} = {arms.text}" for name, arms in {**registry.arm_sets, **registry.designs}.items()
    )
    return "\n".join(
        [
            preregistration_text(registry),
            "",
            f"Arm sets: {sets}. Family `measurement` (and any hypothesis decided by a benchmark's stated rule) has "
            "no bootstrap and no multiplicity correction.",
            "",
            _md_table(Table(f"Claims registry ({_registry_name(registry)})", PREREGISTRATION_HEADER,
                            preregistration_rows(registry))),
        ]
    )  # fmt: skip


def markdown(
    results: Sequence[ClaimResult],
    inputs: Inputs,
    title: str = "wnbench report",
    registry: Registry | None = None,
    reference: Reference | None = None,
    matrix: Matrix | None = None,
    matrix_figure: str | None = None,
    rules: RulesComparison | None = None,
) -> str:
    """The whole report as Markdown (figures by relative path): the practitioner's matrix first (when given), then
    the verdicts; with a ``reference``, a section that sets the runs beside it, verdict by verdict and cell by cell."""
    registry = registry or load_registry()
    suites = sorted({r["suite"] for r in inputs.records})
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        f"# {title}",
        "",
        f"Generated {when} from {len(inputs.records)} run records (suites: {', '.join(suites) or 'none'}) and "
        f"benchmark files ({', '.join(sorted(inputs.bench)) or 'none'}). The report reads stored results only.",
        "",
        *matrix_markdown(matrix, matrix_figure),
        "## Verdicts",
        "",
        _md_table(Table("One row per claim", VERDICT_HEADER, verdict_rows(results))),
        "",
        "X and Y are the headline hypothesis' arm sets (see the pre-registration). *no data*: none of the inputs "
        "measures the claim (run the suite or benchmark named in its section).",
        "",
        *(rules.markdown_lines() if rules is not None else []),
        *(_reference_markdown(results, inputs, reference) if reference is not None else []),
        "## Pre-registration",
        "",
        preregistration_markdown(registry),
        "",
        "## How scores are computed",
        "",
        _method_text(),
        "",
        *inference_markdown(inputs),
        *_lr_method(registry),
    ]
    for r in results:
        out += claim_markdown(r)
    out += compute_markdown(compute_payload(inputs))
    out += _inputs_markdown(inputs)
    return "\n".join(out) + "\n"


#: The practitioner's matrix figure, relative to the report directory.
MATRIX_FIGURE = "figures/matrix.png"


def matrix_markdown(matrix: Matrix | None, figure: str | None = MATRIX_FIGURE) -> list[str]:
    """The practitioner's matrix section: the compact table, how to read it, the heatmap (when drawn)."""
    if matrix is None or not matrix.rows:
        return []
    out = ["## The practitioner's matrix", "", _md_table(matrix.table()), ""]
    out += [line for note in matrix.notes() for line in (note, "")]
    if figure:
        out += [f"![The practitioner's matrix]({figure})", ""]
    return out


def inference_data(inputs: Inputs) -> dict[str, Any] | None:
    """``inference.json`` (``wnbench bench inference``) from the inputs, or from an input directory holding it."""
    if "inference" in inputs.bench:
        return inputs.bench["inference"]
    for source in inputs.sources:
        path = Path(source) / "inference.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def inference_markdown(inputs: Inputs) -> list[str]:
    """The method section's simulation table: the decider's family-wise error and power by task count."""
    data = inference_data(inputs)
    if not data or not data.get("rows"):
        return []
    return [
        "**The task-level decider, checked by simulation (`wnbench bench inference`)**",
        "",
        render_inference_table(data),
        "",
    ]


def claim_markdown(r: ClaimResult) -> list[str]:
    """One claim's section: verdicts (shared, tuned, at peer), what measures it, notes, tables, figures, run
    counts, planned runs without a record and failures."""
    out = [f"## {r.claim} — {r.title}", "", f"**Verdict: {r.verdict}.** {r.headline_text}"]
    if r.basis != "—":
        direction = f"; {r.direction_text}" if r.direction_text != "—" else ""
        out[-1] += f" ({r.basis}{direction})."
    if r.tuned_verdict:
        out[-1] += f" **Tuned per norm: {r.tuned_verdict}.** {r.tuned_headline.statistic_text}."
    if r.peer_verdict:
        out[-1] += (
            f" **On the cells whose baseline is at peer level only: {r.peer_verdict}.** "
            f"{r.peer_headline.statistic_text} ({r.peer_headline.basis})."
        )
    out += ["", f"Measured by: {r.measure}." + (f" Suites: {', '.join(r.suites)}." if r.suites else ""), ""]
    if r.verdict == "no data":
        hint = r.registered.how_to_measure if r.registered is not None else ""
        out += [hint or "No input measures this claim.", ""]
    for note in r.notes:
        out += [note, ""]
    for table in r.tables:
        out += [_md_table(table), ""]
    for fig in r.figures:
        out += [f"![{r.claim}: {fig.title}]({fig.path})", ""]
    return out + _runs_markdown(r)


def _runs_markdown(r: ClaimResult) -> list[str]:
    out: list[str] = []
    if r.status_counts:
        counts = ", ".join(
            f"{norm}: " + " ".join(f"{k} {v}" for k, v in sorted(st.items()))
            for norm, st in r.status_counts.items()
        )
        out += [f"Runs by norm and status — {counts}.", ""]
    if r.missing:
        out += [
            "Planned but without a record (never run, or killed in flight): "
            + ", ".join(f"{s}: {n}" for s, n in r.missing.items())
            + ".",
            "",
        ]
    if r.problems:
        out += ["Failed or timed-out runs (not scored):", ""] + [f"- `{p}`" for p in r.problems] + [""]
    return out


def _inputs_markdown(inputs: Inputs) -> list[str]:
    """The report's "Inputs" section: sources, warnings, skipped files and the package versions of the records."""
    out = ["## Inputs", ""] + [f"- `{s}`" for s in inputs.sources]
    if inputs.warnings:
        out += [""] + [f"**Note:** {w}." for w in inputs.warnings]
    if inputs.skipped:
        out += ["", "Skipped (not usable):", ""] + [f"- {s}" for s in inputs.skipped]
    versions = {json.dumps(r.get("versions", {}), sort_keys=True) for r in inputs.records}
    for v in sorted(versions):
        out += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in json.loads(v).items())]
    return out


def compute_payload(inputs: Inputs) -> dict[str, Any]:
    """:meth:`Inputs.compute`, CPU-hours rounded (verdicts.json's ``compute``)."""
    out = inputs.compute()
    for suite in out.values():
        suite["cpu_hours"] = round(suite["cpu_hours"], 3)
        suite["cells"] = {
            k: {**v, "cpu_hours": round(v["cpu_hours"], 3)} for k, v in sorted(suite["cells"].items())
        }
    return out


def compute_markdown(compute: dict[str, Any]) -> list[str]:
    """The report's "Compute" section: CPU-hours per suite, then per cell."""
    if not compute:
        return []
    rows = [
        [
            name,
            str(s["runs"]),
            ", ".join(f"{k} {v}" for k, v in sorted(s["statuses"].items())) or "—",
            f"{s['cpu_hours']:.2f}",
            str(s["missing"]),
        ]
        for name, s in compute.items()
    ]
    cells = [
        [name, cell, str(c["runs"]), f"{c['cpu_hours']:.2f}", f"{3600 * c['cpu_hours'] / c['runs']:.0f}"]
        for name, s in compute.items()
        for cell, c in s["cells"].items()
    ]
    out = [
        "## Compute",
        "",
        "CPU time of the run processes themselves (`timings.cpu_s`, one torch thread each), summed over every record "
        "read, whatever its status; wall time where a record has none. Wall-clock time is this divided by the "
        "workers, on idle cores.",
        "",
        _md_table(
            Table(
                "CPU-hours per suite", ["suite", "runs", "by status", "CPU-hours", "planned, no record"], rows
            )
        ),
        "",
        _md_table(
            Table("CPU-hours per cell", ["suite", "cell", "runs", "CPU-hours", "CPU s per run"], cells)
        ),
        "",
    ]
    no_cpu = {name: s["no_cpu_time"] for name, s in compute.items() if s["no_cpu_time"]}
    if no_cpu:
        out += [
            "Records without CPU time (wall time used): "
            + ", ".join(f"{k} {v}" for k, v in no_cpu.items())
            + ".",
            "",
        ]
    return out


def _lr_method(registry: Registry) -> list[str]:
    """How the learning-rate claims (analysis ``lr_robustness``) score a sweep; nothing without such a claim."""
    ids = [c.id for c in registry.claims if c.analysis == "lr_robustness"]
    if not ids:
        return []
    return [
        f"{', '.join(ids)} (learning rate): each norm's runs are normalized with the cell's fixed anchors; a rate is "
        "good for a run when its normalized score is at least (1 - tolerance) × the norm's own best median over "
        "rates and at least the claim's floor × the cell's best median over norms and rates (a norm that fails at "
        "every rate has no good rate); a run's width is the widest stretch of adjacent good rates in decades (one "
        "grid step for a single rate); a seed's width uses every rate it ran. Peak performance (the best rate's "
        "median) is a separate table.",
        "",
    ]


def _inline_images(body: str, out_dir: Path) -> str:
    def repl(match: re.Match[str]) -> str:
        src = match.group(1)
        path = out_dir / src
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="([^"]+\.png)"', repl, body)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#1f2328;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #d0d7de;padding:.25em .55em}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfbfc}img{max-width:min(100%,1000px);border:1px solid #eee;display:block;margin:.5em 0}
code{background:#f6f8fa;padding:0 .2em;font-size:.9em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;
margin-top:1.8em}.verdict{font-weight:600;padding:0 .35em;border-radius:4px;color:#fff}
"""


def html_page(md_text: str, out_dir: Path, title: str = "wnbench report") -> str:
    """A self-contained HTML page from the Markdown: figures inlined as data URIs, verdicts colored."""
    import markdown as md

    body = md.markdown(md_text, extensions=["tables", "fenced_code"])
    body = _inline_images(body, out_dir)
    for verdict, color in VERDICT_COLORS.items():
        body = body.replace(
            f"<td>{verdict}</td>",
            f'<td><span class="verdict" style="background:{color}">{verdict}</span></td>',
        )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(
    results: Sequence[ClaimResult],
    inputs: Inputs,
    out_dir: Path,
    registry: Registry | None = None,
    reference: Reference | None = None,
    rules: RulesComparison | None = None,
) -> dict[str, Path]:
    """Figures, Markdown, HTML and verdicts.json under ``out_dir`` (with ``rules``, the v2 rules' verdicts on the
    same records in verdicts_v2.json); returns the paths written."""
    registry = registry or load_registry()
    out_dir.mkdir(parents=True, exist_ok=True)
    make_figures(results, inputs, out_dir)
    matrix = build_matrix(inputs, registry)
    drawn = plots.matrix_heatmap(matrix, out_dir / MATRIX_FIGURE)
    text = markdown(results, inputs, registry=registry, reference=reference, matrix=matrix,
                    matrix_figure=MATRIX_FIGURE if drawn else None, rules=rules)  # fmt: skip
    paths = {
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
        "json": out_dir / "verdicts.json",
    }
    _atomic_write(paths["markdown"], text)
    _atomic_write(paths["html"], html_page(text, out_dir))
    payload: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": [str(s) for s in inputs.sources],
        "records": len(inputs.records),
        "skipped": inputs.skipped,
        "warnings": inputs.warnings,
        "registry": registry.model_dump(mode="json"),
        "compute": compute_payload(inputs),
        "claims": [r.as_dict() for r in results],
        "matrix": None if matrix is None else matrix.as_dict(),
        "v2_against_v3": None if rules is None else rules.as_dict(),
    }
    _atomic_write(paths["json"], json.dumps(payload, indent=1) + "\n")
    if rules is not None:
        paths["json_v2"] = out_dir / "verdicts_v2.json"
        v2 = {
            **{k: payload[k] for k in ("generated_at", "inputs", "records", "skipped", "warnings")},
            "registry": rules.registry.model_dump(mode="json"),
            "claims": [r.as_dict() for r in rules.results],
        }
        _atomic_write(paths["json_v2"], json.dumps(v2, indent=1) + "\n")
    return paths
