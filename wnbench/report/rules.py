"""The same records under two registries: each claim of the v2 rules (registry_v2.yaml) beside what the v3 rules
(the default registry) say on the same records, with the reason (e.g. "3 tasks: insufficient").

v3 split some v2 claims (C2 -> C2-GAN, C2-GAN-image, C2-VAE, C2-diffusion); a v2 claim maps to the v3 claims with
its id, to those split from it (``C2-...``), else to those with its statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .records import Inputs
from .registry import Registry, load_registry
from .results import NO_DATA, ClaimResult, Table


@dataclass(frozen=True)
class RulesComparison:
    """The v2 rules' verdicts on the report's records and the table setting them beside the main (v3) ones."""

    registry: Registry  # the v2 registry
    results: Sequence[ClaimResult]  # its verdicts on the same records
    table: Table

    def markdown_lines(self) -> list[str]:
        from .render import _md_table

        return [
            "## v2 records: v2 rules against v3 rules",
            "",
            f"The records above under the registry they were run for ({self.registry.identity}: bootstrap over "
            "tasks, v2 arm sets) and under the pre-registered v3 rules (the verdicts above). v3 claims split from "
            "a v2 claim are listed under it.",
            "",
            _md_table(self.table),
            "",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"registry": self.registry.identity, "rows": self.table.rows}


def v3_claims_for(v2_claim: ClaimResult, v3: Sequence[ClaimResult]) -> list[ClaimResult]:
    """The v3 claims answering a v2 claim: same id, split from it (``C2`` -> ``C2-GAN``), else same statement."""
    same = [r for r in v3 if r.claim == v2_claim.claim or r.claim.startswith(f"{v2_claim.claim}-")]
    return same or [r for r in v3 if r.title == v2_claim.title]


def reason(result: ClaimResult) -> str:
    """Why a claim got its verdict, in a few words: "3 tasks: insufficient (needs 5)", "no records", ..."""
    head = result.headline
    if head is None or result.verdict == NO_DATA:
        return "no records measure it"
    if head.decided:
        k = len(head.tasks)
        needs = f" (needs {head.needs_tasks})" if head.needs_tasks else ""
        return f"{k} task{'s' * (k != 1)}: {head.verdict}{needs}"
    if not head.statistical:
        return "benchmark rule: " + (head.text or head.verdict)[:160]
    return f"{head.basis}: {head.verdict}"


def compare_rules(
    inputs: Inputs, main: Sequence[ClaimResult], registry: Registry, reps: int
) -> RulesComparison | None:
    """The v2 rules on the same records beside ``main`` (the v3 verdicts); ``None`` when ``registry`` is not v3."""
    if registry.method is None:
        return None
    from .claims import analyze

    v2 = load_registry("v2")
    v2_results = analyze(inputs, reps=reps, registry=v2)
    rows = []
    for old in v2_results:
        new = v3_claims_for(old, main)
        rows.append([
            old.claim, old.title, old.verdict, old.headline_text,
            ", ".join(r.claim for r in new) or "—",
            "; ".join(f"{r.claim}: {r.verdict}" for r in new) or "—",
            "; ".join(f"{r.claim}: {reason(r)}" for r in new) or "no v3 claim",
        ])  # fmt: skip
    table = Table("Each v2 claim: its verdict under registry v2 and what v3 says on the same records",
                  ["v2 claim", "statement", "v2 verdict", "v2 headline", "v3 claims", "v3 verdict", "v3 reason"],
                  rows)  # fmt: skip
    return RulesComparison(v2, v2_results, table)
