"""The generated blocks of the docs/ pages (history, method, costs, benchmarks, what changed since v2), rendered
from the committed report files only: ``docs/results/verdicts.json`` (registry v3), ``verdicts_v2.json`` (the v2
rules on the same records) and ``docs/results-v1/verdicts.json`` (v1, superseded). No figure in these blocks is
typed by hand; :mod:`wnbench.report.readme` splices them and ``tests/test_readme_generated.py`` checks them.

Each function takes a :class:`Sources` and returns the block's Markdown (without its markers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wnbench.errors import UserError

#: Why a claim's verdict may differ between the v2 and the v3 rules on the same records: the design change v3 made
#: for that claim (registry.yaml's header, "What v3 changes against v2"), in words. A claim not listed: "—".
WHY_V3 = {
    "C1": "decided over tasks, not cells; BN as its advocates run it (running statistics on-policy, "
    "the CrossQ design off-policy), so no BN member in SAC, TD3 or CrossQ cells",
    "C2": "split by model (2-D GANs, image GANs, VAEs, diffusion), each decided over its own tasks",
    "C3": "the same paired micro-benchmark; the arm sets are v3's (WN without batch statistics)",
    "C4": "the same noise benchmark",
    "C5": "decided over tasks; only rates where both arms are good count",
    "C6": "measured with careless-init arms (an initial weight scale), which the v2 records do not hold",
    "C7": "a non-inferiority test over tasks (WN-LSTM not worse than the plain LSTM)",
    "C8": "judged on held-out batches after training steps, not only on the initialization batch",
}


@dataclass(frozen=True)
class Sources:
    """The committed report files the generated blocks are rendered from, and the pre-registration line."""

    v3: Mapping[str, Any]
    v2: Mapping[str, Any] | None = None
    v1: Mapping[str, Any] | None = None
    preregistration: str = ""

    @classmethod
    def load(cls, report_dir: str | Path, root: str | Path, preregistration: str = "") -> Sources:
        """``report_dir``/verdicts.json (required), verdicts_v2.json and ``root``/docs/results-v1/verdicts.json."""

        def read(path: Path, required: bool) -> dict[str, Any] | None:
            if not path.is_file():
                if required:
                    raise UserError(f"{path}: missing (the generated blocks are rendered from it)")
                return None
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise UserError(f"{path}: not readable JSON ({err})") from err

        report_dir, root = Path(report_dir), Path(root)
        v3 = read(report_dir / "verdicts.json", True)
        assert v3 is not None
        return cls(v3, read(report_dir / "verdicts_v2.json", False),
                   read(root / "docs/results-v1/verdicts.json", False), preregistration)  # fmt: skip


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table (``|`` inside a cell escaped)."""
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(map(esc, row)) + " |" for row in rows
    ]


def _claims(payload: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {c["claim"]: c for c in (payload or {}).get("claims") or []}


def v1_block(src: Sources) -> str:
    """v1's verdicts (2026-11-26, default profiles, superseded) from docs/results-v1/verdicts.json."""
    if not src.v1:
        return "No v1 verdicts file (docs/results-v1/verdicts.json)."
    rows = [[f"**{c['claim']}** {c.get('title', '')}", f"**{c.get('verdict', '—')}**",
             c.get("headline_text") or "—", c.get("basis") or "—"] for c in src.v1.get("claims") or []]  # fmt: skip
    return "\n".join(
        [
            *md_table(["claim", "verdict", "headline statistic [95% CI]", "basis"], rows),
            "",
            f"From {src.v1.get('records', '—')} run records (report generated {src.v1.get('generated_at', '—')}); "
            "the full v1 report: [results-v1/report.md](results-v1/report.md).",
        ]
    )


def v2_to_v3_block(src: Sources) -> str:
    """What changed since v2, and why: per v2 claim, the v2 rules' verdict (verdicts_v2.json) and the v3 rules'
    verdict of each claim it became (verdicts.json), on the same records; the why is the design change, in words."""
    v2, v3 = _claims(src.v2), _claims(src.v3)
    if not v2:
        return "No v2 verdicts file (docs/results/verdicts_v2.json)."
    rows = []
    for cid, c in v2.items():
        after = [v for k, v in v3.items() if k == cid or k.startswith(cid + "-")]
        v3_text = "; ".join(f"{a['claim']}: {a['verdict']}" for a in after) or "—"
        rows.append([f"**{cid}** {c.get('title', '')}", c.get("verdict", "—"), v3_text, WHY_V3.get(cid, "—")])
    reg2 = (src.v2 or {}).get("registry") or {}
    reg3 = src.v3.get("registry") or {}
    return "\n".join(
        [
            *md_table(
                [
                    "claim (v2)",
                    f"v2 rules (registry {reg2.get('version', '?')})",
                    f"v3 rules (registry {reg3.get('version', '?')})",
                    "why",
                ],
                rows,
            ),  # fmt: skip
            "",
            f"Both columns judge the same {src.v3.get('records', '—')} published records.",
        ]
    )


def method_block(src: Sources) -> str:
    """The v3 decider's constants, arm sets, peer gate and amendments, as registered (verdicts.json's registry)."""
    from .arms import arm_set_of

    reg = src.v3.get("registry") or {}
    m = reg.get("method") or {}
    if not m:
        return "The published verdicts come from a registry without a v3 method section."
    margins = m.get("margins") or {}
    seeds = m.get("seeds") or {}
    gate = reg.get("peer_gate") or {}
    lines = [
        f"- Registry version {reg.get('version')}, dated {reg.get('date')}"
        + (f"; {src.preregistration}" if src.preregistration else "")
        + ".",
        f"- Decider: `{m.get('decider')}` (exact sign-flip test over tasks) on `{m.get('statistic')}`, "
        f"family-wise confidence {m.get('confidence')} with Holm within each family.",
        f"- Insufficient: fewer than {m.get('min_tasks')} tasks with data, or fewer than {m.get('min_runs')} "
        "scored runs on a side of a cell.",
        f"- Margins (P units): equivalence ± {margins.get('equivalence')}, non-inferiority − "
        f"{margins.get('non_inferiority')}.",
        f"- Seeds: evaluation {seeds.get('evaluation')}, tuning {seeds.get('tuning')}.",
        f"- Peer gate: grades {', '.join(gate.get('grades') or [])}; headlines use cells graded "
        f"{' and '.join(gate.get('headline_cells') or [])}; a cell is at peer when its no-norm baseline's median "
        f"normalized score is at least {gate.get('level')}.",
        "",
        "Verdicts:",
        "",
        *[f"- *{k}*: {v}" for k, v in (m.get("verdicts") or {}).items()],
        "",
        "Arm sets:",
        "",
        *[f"- {k} = {arm_set_of(v).text}" for k, v in (reg.get("arm_sets") or {}).items()],
        "",
        f"Amendments ({len(reg.get('amendments') or [])}):",
        "",
        *[
            f"- {a.get('date')}: {a.get('change')} *Why:* {a.get('reason')}"
            for a in reg.get("amendments") or []
        ],
    ]
    return "\n".join(lines)


def costs_block(src: Sources) -> str:
    """CPU-hours and runs per published suite and cell (verdicts.json's ``compute``, from the records' timings)."""
    compute = src.v3.get("compute") or {}
    if not compute:
        return "No published suite has records yet."
    rows = []
    for suite, s in compute.items():
        statuses = ", ".join(f"{k} {v}" for k, v in (s.get("statuses") or {}).items())
        rows.append([f"**{suite}**", "all", str(s.get("runs")), f"{s.get('cpu_hours', 0):.1f}",
                     statuses + (f"; {s['missing']} planned without a record" if s.get("missing") else "")])  # fmt: skip
        for cell, c in (s.get("cells") or {}).items():
            rows.append(["", cell, str(c.get("runs")), f"{c.get('cpu_hours', 0):.2f}", ""])
    total = sum(s.get("cpu_hours", 0) for s in compute.values())
    runs = sum(s.get("runs", 0) for s in compute.values())
    return "\n".join(
        [
            *md_table(["suite", "cell", "runs", "CPU-hours", "statuses"], rows),
            "",
            f"In all: {runs} runs, {total:.1f} CPU-hours (each run's own CPU time, one torch thread per run).",
        ]
    )


def benchmarks_block(src: Sources) -> str:
    """The micro-benchmark claims' measured headlines (C3, C4, C8 and any other claim decided by a benchmark
    rule), as the published report states them."""
    rows = [[f"**{c['claim']}** {c.get('title', '')}", f"**{c.get('verdict')}**",
             ((c.get("headline") or {}).get("text") or "—")]
            for c in src.v3.get("claims") or [] if c.get("basis") == "benchmark rule"]  # fmt: skip
    if not rows:
        return "No benchmark-rule claim in the published verdicts."
    return "\n".join(md_table(["claim", "verdict", "measured"], rows))
