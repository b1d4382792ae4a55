"""Writing a report: ``report.md`` with its PNGs in ``figures/``, a self-contained ``report.html`` (figures
inlined), and ``verdicts.json`` (one object per claim, for scripts and CI)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plots
from .claims import DIAGNOSTICS, ClaimResult, Figure, Table, reference_table
from .claims import __doc__ as METHOD_DOC
from .records import Inputs
from .registry import (
    PREREGISTRATION_HEADER,
    Registry,
    load_registry,
    preregistration_rows,
    preregistration_text,
)

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
    """Draw every figure the data allow and attach it to its claim."""
    fig_dir = out_dir / "figures"
    by_claim = {r.claim: r for r in results}
    for result in results:
        c = result.claim.lower()
        if result.claim in ("C1", "C2", "C7") and plots.learning_curves(result, fig_dir / f"{c}_curves.png"):
            result.figures.append(Figure("Learning curves", f"figures/{c}_curves.png"))
        if result.claim in ("C1", "C7"):
            for key in DIAGNOSTICS:
                name = key.removeprefix("diag/")
                if plots.diagnostics(result, key, fig_dir / f"{c}_diag_{name}.png"):
                    result.figures.append(Figure(f"Mechanism: {name}", f"figures/{c}_diag_{name}.png"))
        if result.claim in ("C1", "C2", "C6", "C7") and plots.iqm_intervals(result, fig_dir / f"{c}_iqm.png"):
            result.figures.append(Figure("IQM per norm", f"figures/{c}_iqm.png"))
        if result.claim in ("C1", "C2") and plots.performance_profiles(result, fig_dir / f"{c}_profiles.png"):
            result.figures.append(Figure("Performance profiles", f"figures/{c}_profiles.png"))
        if result.claim == "C3" and plots.iqm_intervals(
            result, fig_dir / "c3_iqm.png", xlabel="IQM of normalized throughput"
        ):
            result.figures.append(Figure("Throughput per norm", "figures/c3_iqm.png"))
    if (
        "C4" in by_claim
        and "noise" in inputs.bench
        and plots.noise_plot(inputs.bench["noise"], fig_dir / "c4_noise.png")
    ):
        by_claim["C4"].figures.append(Figure("Noise from batch companions", "figures/c4_noise.png"))
    if "C4" in by_claim and plots.sweep_plot(
        by_claim["C4"],
        "batch_size",
        fig_dir / "c4_batch.png",
        "C4 in training: headline metric against batch size",
    ):
        by_claim["C4"].figures.append(Figure("Training with small batches", "figures/c4_batch.png"))
    if "C5" in by_claim and plots.lr_sensitivity(by_claim["C5"], fig_dir / "c5_lr.png"):
        by_claim["C5"].figures.append(Figure("Learning-rate sensitivity", "figures/c5_lr.png"))
    if "C2" in by_claim and plots.sample_grids(by_claim["C2"], fig_dir / "c2_samples.png"):
        by_claim["C2"].figures.append(Figure("Generated samples", "figures/c2_samples.png"))


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
        ]
        for r in results
    ]


VERDICT_HEADER = ["claim", "statement", "verdict (shared hyperparameters)", "verdict (tuned per norm)",
                  "verdict (cells at peer level only)",
                  "headline hypothesis: statistic [family-wise CI]", "direction over cells",
                  "effect: median X − Y per cell, raw units [95% CI]", "cells, runs X vs Y",
                  "runs finished / diverged / failed / missing"]  # fmt: skip


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


def preregistration_markdown(registry: Registry) -> str:
    """The registry as the report prints it: the rule, then one row per hypothesis."""
    sets = "; ".join(f"{name} = {{{', '.join(arms)}}}" for name, arms in registry.arm_sets.items())
    return "\n".join(
        [
            preregistration_text(registry),
            "",
            f"Arm sets: {sets}. Family `measurement` (and any hypothesis decided by a benchmark's stated rule) has "
            "no bootstrap and no multiplicity correction.",
            "",
            _md_table(Table("Claims registry (wnbench/report/registry.yaml)", PREREGISTRATION_HEADER,
                            preregistration_rows(registry))),
        ]
    )  # fmt: skip


def markdown(
    results: Sequence[ClaimResult],
    inputs: Inputs,
    title: str = "wnbench report",
    registry: Registry | None = None,
    reference: Reference | None = None,
) -> str:
    """The whole report as Markdown (figures by relative path); with a ``reference``, a section that sets the
    runs beside it, verdict by verdict and cell by cell."""
    registry = registry or load_registry()
    suites = sorted({r["suite"] for r in inputs.records})
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        f"# {title}",
        "",
        f"Generated {when} from {len(inputs.records)} run records (suites: {', '.join(suites) or 'none'}) and "
        f"benchmark files ({', '.join(sorted(inputs.bench)) or 'none'}). The report reads stored results only.",
        "",
        "## Verdicts",
        "",
        _md_table(Table("One row per claim", VERDICT_HEADER, verdict_rows(results))),
        "",
        "X and Y are the headline hypothesis' arm sets (see the pre-registration). *no data*: none of the inputs "
        "measures the claim (run the suite or benchmark named in its section).",
        "",
        *(_reference_markdown(results, inputs, reference) if reference is not None else []),
        "## Pre-registration",
        "",
        preregistration_markdown(registry),
        "",
        "## How scores are computed",
        "",
        _method_text(),
        "",
        "C5 (learning rate): each norm's runs are normalized with the cell's fixed anchors; a rate is good for a "
        "run when its normalized score is at least (1 - tolerance) × the norm's own best median over rates and at "
        "least the claim's floor × the cell's best median over norms and rates (a norm that fails at every rate "
        "has no good rate); a "
        "run's width is the widest stretch of adjacent good rates in decades (one grid step for a single rate); a "
        "seed's width uses every rate it ran. Peak performance (the best rate's median) is a separate table.",
        "",
    ]
    for r in results:
        out += [f"## {r.claim} — {r.title}", "", f"**Verdict: {r.verdict}.** {r.headline_text}"]
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
        out += [
            "",
            f"Measured by: {r.measure}." + (f" Suites: {', '.join(r.suites)}." if r.suites else ""),
            "",
        ]
        if r.verdict == "no data":
            out += [_NO_DATA_HINT.get(r.claim, "No input measures this claim."), ""]
        for note in r.notes:
            out += [note, ""]
        for table in r.tables:
            out += [_md_table(table), ""]
        for fig in r.figures:
            out += [f"![{r.claim}: {fig.title}]({fig.path})", ""]
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
    out += compute_markdown(compute_payload(inputs))
    out += ["## Inputs", ""] + [f"- `{s}`" for s in inputs.sources]
    if inputs.warnings:
        out += [""] + [f"**Note:** {w}." for w in inputs.warnings]
    if inputs.skipped:
        out += ["", "Skipped (not usable):", ""] + [f"- {s}" for s in inputs.skipped]
    versions = {json.dumps(r.get("versions", {}), sort_keys=True) for r in inputs.records}
    for v in sorted(versions):
        out += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in json.loads(v).items())]
    return "\n".join(out) + "\n"


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


_NO_DATA_HINT = {
    "C1": "Run `make bench-rl` (suites/rl.yaml).",
    "C2": "Run `make bench-gen` (suites/gen.yaml).",
    "C3": "Run `make bench-overhead`, or report RL/generative suites (their throughput is compared).",
    "C4": "Run `make bench-noise` (and suites/gen-batch.yaml for training with small batches).",
    "C5": "Run suites/rl-lr.yaml or suites/gen-lr.yaml.",
    "C6": "Run `make bench-rl` or `make bench-gen` (both include weight and weight_ddi).",
    "C7": "Run suites/rl-recurrent.yaml.",
    "C8": "Run `wnbench bench ddi`.",
}


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
) -> dict[str, Path]:
    """Figures, Markdown, HTML and verdicts.json under ``out_dir``; returns the paths written."""
    registry = registry or load_registry()
    out_dir.mkdir(parents=True, exist_ok=True)
    make_figures(results, inputs, out_dir)
    text = markdown(results, inputs, registry=registry, reference=reference)
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
    }
    _atomic_write(paths["json"], json.dumps(payload, indent=1) + "\n")
    return paths
