"""Registry v3's comparison decided over tasks, on constructed records: arms as advocates define them (first_of),
design arms across algorithms, the peer gate ("no reference" kept and marked, below peer left out), the
sensitivity table (leave one task out), insufficiency (task count and the exact test's floor against the Holm
level), and the loader refusing a bad field by name."""

from __future__ import annotations

import copy

import pytest
import yaml

from wnbench.errors import UserError
from wnbench.report import Inputs, analyze
from wnbench.report import stats as report_stats
from wnbench.report.anchors import rl_anchor
from wnbench.report.cells import NO_REFERENCE, peer_grade
from wnbench.report.decide import (
    AS_FIRST_REGISTERED,
    AT_PEER_ONLY,
    DECIDED_BY_ONE_TASK,
    CellPool,
    evaluate_claim,
    tasks_needed,
)
from wnbench.report.registry import REGISTRY_FILE, ArmSet, load_registry
from wnbench.report.rules import v3_claims_for
from wnbench.suite.store import RECORD_SCHEMA

REPS = 200
#: Tasks with no published figure (no reference): every cell enters the headline, marked.
TOYS = tuple(f"Toy{i}-v0" for i in range(8))


def _record(task: str, norm: str, seed: int, value: float, algo: str = "ppo", steps: int = 1000) -> dict:
    return {
        "run_id": f"{task}-{algo}-{norm}-{seed}-{steps}", "suite": "rl-v3", "claims": [], "status": "finished",
        "config": {"kind": "rl", "task": task, "algo": algo, "norm": norm, "norm_spec": {"name": norm},
                   "seed": seed, "params": {}, "budget": {"steps": steps}, "resolved": None},
        "metrics": {"final_return": float(value)}, "curves": {}, "timings": {}, "versions": {},
        "schema": RECORD_SCHEMA,
    }  # fmt: skip


def _arms(
    tasks, levels: dict[str, float], algo: str = "ppo", steps: int = 1000, seeds: int = 3
) -> list[dict]:
    """``levels``: each norm's mean value (seeds spread by ±0.01, so a level gap of 0.1 separates every run)."""
    return [_record(t, norm, s, level + 0.01 * (s - 1), algo, steps)
            for t in tasks for norm, level in levels.items() for s in range(seeds)]  # fmt: skip


def _registry(tmp_path, claims: list[dict]):
    """The real v3 registry (method, arm sets, designs, peer gate) with only ``claims``."""
    raw = yaml.safe_load(REGISTRY_FILE.read_text())
    raw["claims"] = claims
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_registry(path)


def _claim(hypotheses: list[dict], **extra) -> dict:
    return {"id": "C1", "statement": "WN beats BN in noise-sensitive RL", "analysis": "comparison",
            "suites": ["rl-v3"], "metric": "final return", "hypotheses": hypotheses, **extra}  # fmt: skip


def _decide(registry, records, claim_id="C1", v2_ids=frozenset()):
    claim = registry.claim(claim_id)
    return evaluate_claim(claim, registry, CellPool(records, v2_ids), REPS, lambda metric: None)


# -- arms as advocates define them -------------------------------------------------------------------------------
def test_first_of_picks_the_advocated_member_in_each_cell_and_a_list_pools():
    """BN = first of (batch[bn_mode=running], batch): where running statistics ran, they are BN (weight loses to
    them); where only minibatch BN ran, it is BN (weight wins). A pooled list would average the two."""
    registry = load_registry("v3")
    records = _arms(TOYS[:5], {"weight": 0.5, "batch[bn_mode=running]": 0.9, "batch": 0.1}) + _arms(
        TOYS[5:6], {"weight": 0.5, "batch": 0.1}
    )
    (head, *_), tables, _ = _decide(registry, records)
    per_cell = {c.cell.split(" ")[0]: c.probability.point for c in head.cells}
    assert per_cell == {**{f"{t}/ppo": 0.0 for t in TOYS[:5]}, f"{TOYS[5]}/ppo": 1.0}
    assert head.estimate.point == pytest.approx(1 / 6) and len(head.tasks) == 6
    # the sensitivity line with BN_STOCK (a plain list [batch]) takes minibatch BN wherever it ran
    stock = next(r for r in tables[0].rows if r[0] == "arms {weight, weight_ddi, forced_weight, nap, "
                 "hyperspherical} vs {batch}, not in cells with algo in {sac, td3, crossq}")  # fmt: skip
    assert stock[2].startswith("1.000")
    assert registry.claim("C1").headline.y == ArmSet(["batch[bn_mode=running]", "batch"], first=True)


def test_bn_members_are_not_bn_in_off_policy_actor_critic_cells():
    """BN and BN_STOCK carry not_in {algo: [sac, td3, crossq]} (amendment of 2026-12-06): naive BN inside SAC/TD3
    loses here and would pull every task's mean to 0.5; it is left out (a note names its cells), so the headline
    rests on the PPO cells, and the sensitivity line with the sets as first registered shows the pooled 0.5."""
    registry = load_registry("v3")
    bn = registry.arm_sets["BN"]
    assert (
        bn.not_in == {"algo": ("sac", "td3", "crossq")} and registry.arm_sets["BN_STOCK"].not_in == bn.not_in
    )
    assert bn.as_data() == {"first_of": ["batch[bn_mode=running]", "batch"],
                            "not_in": {"algo": ["sac", "td3", "crossq"]}}  # fmt: skip
    assert (
        registry.amendments[0].date.isoformat() == "2026-12-06" and "not_in" in registry.amendments[0].change
    )
    records = _arms(TOYS[:6], {"weight": 0.9, "batch": 0.1}) + _arms(TOYS[:6], {"weight": 0.1, "batch": 0.9},
                                                                      algo="sac")  # fmt: skip
    (head, *_), tables, notes = _decide(registry, records)
    assert {c.cell.split(" ")[0].split("/")[1] for c in head.cells} == {"ppo"} and len(head.tasks) == 6
    assert head.verdict == report_stats.SUPPORTED and head.estimate.point == pytest.approx(1.0)
    assert any("not in cells with algo in {sac, td3, crossq}" in n and f"{TOYS[0]}/sac" in n for n in notes)
    first = next(r for r in tables[0].rows if r[0].startswith(AS_FIRST_REGISTERED))
    assert first[1] == "6" and first[2].startswith("0.500")


def test_design_arms_pair_algorithms_within_a_task_and_budget(tmp_path):
    """SAC + WN against CrossQ: one cell per (task, budget) across algorithms; a CrossQ run at another budget is
    another cell, with no SAC to pair with, so it is not used."""
    registry = _registry(tmp_path, [_claim([
        {"name": "SAC + WN > CrossQ", "x": "SAC_WN", "y": "CROSSQ", "family": "headline"}])])  # fmt: skip
    records = (
        _arms(TOYS[:6], {"weight": 0.8}, algo="sac")
        + _arms(TOYS[:6], {"batch_renorm[placement=pre]": 0.2, "weight": 0.99}, algo="crossq")
        + _arms(TOYS[:1], {"batch_renorm[placement=pre]": 0.9}, algo="crossq", steps=5000)
    )
    (head,), _, _ = _decide(registry, records)
    assert [c.cell for c in head.cells] == [f"{t} [steps=1000] (no reference)" for t in TOYS[:6]]
    assert all(c.probability.point == 1.0 for c in head.cells)  # crossq:weight is no CROSSQ arm
    assert head.verdict == report_stats.SUPPORTED and head.runs == (18, 18)  # 6 cells x 3 seeds a side


def test_a_hypothesis_cells_filter_restricts_its_cells(tmp_path):
    registry = _registry(tmp_path, [_claim([
        {"name": "on-policy", "x": "WN", "y": "BN", "family": "headline", "cells": {"algo": ["a2c"]}}])])  # fmt: skip
    records = _arms(TOYS[:6], {"weight": 0.8, "batch": 0.2}) + _arms(TOYS[:2], {"weight": 0.1, "batch": 0.9},
                                                                      algo="a2c")  # fmt: skip
    (head,), _, _ = _decide(registry, records)
    assert {c.cell.split(" ")[0].split("/")[1] for c in head.cells} == {"a2c"} and len(head.tasks) == 2


# -- the peer gate ---------------------------------------------------------------------------------------------------
def _at_level(task: str, norm: str, level: float) -> list[dict]:
    anchor = rl_anchor(task, "ppo")
    return [_record(task, norm, s, anchor.low + (level + 0.01 * (s - 1)) * (anchor.high - anchor.low))
            for s in range(3)]  # fmt: skip


def test_no_reference_cells_stay_in_the_headline_marked_and_below_peer_cells_leave_it():
    registry = load_registry("v3")
    at_peer, below = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0"), "Pendulum-v1"
    records = [r for t in at_peer for norm, lv in (("none", 1.0), ("weight", 0.9), ("batch", 0.3))
               for r in _at_level(t, norm, lv)]  # fmt: skip
    records += [
        r for norm, lv in (("none", 0.2), ("weight", 0.9), ("batch", 0.3)) for r in _at_level(below, norm, lv)
    ]
    records += _arms(TOYS[:3], {"none": 0.5, "weight": 0.9, "batch": 0.3})
    grouped = {t: [r for r in records if r["config"]["task"] == t] for t in (*at_peer, below, TOYS[0])}

    def by_arm(recs: list[dict]) -> dict[str, list[dict]]:
        return {n: [r for r in recs if r["config"]["norm"] == n] for n in ("none", "weight", "batch")}

    grades = {t: peer_grade(by_arm(recs)) for t, recs in grouped.items()}
    assert grades == {**dict.fromkeys(at_peer, "at peer"), below: "below peer", TOYS[0]: NO_REFERENCE}
    (head, *_), tables, notes = _decide(registry, records)
    cells = [c.cell for c in head.cells]
    assert not any(c.startswith(below) for c in cells)
    assert [c for c in cells if c.endswith("(no reference)")] == [f"{t}/ppo (no reference)" for t in TOYS[:3]]
    assert len(head.tasks) == 6 and {c.grade for c in head.cells} == {"at peer", NO_REFERENCE}
    assert any(below in n and "below peer" in n for n in notes)
    at_peer_row = next(r for r in tables[0].rows if r[0] == "cells at peer only")
    assert at_peer_row[1] == "3"


# -- sensitivity and insufficiency ---------------------------------------------------------------------------------
def test_leave_one_task_out_flags_a_verdict_one_task_decides():
    """Six agreeing tasks decide at 5% (2/64); without any one, five cannot (2/32): decided by one task. Seven
    agreeing tasks stay supported without any one of them: no flag."""
    registry = load_registry("v3")
    for k, flagged in ((6, True), (7, False)):
        records = _arms(TOYS[:k], {"weight": 0.8, "batch": 0.2})
        (head, *_), tables, _ = _decide(registry, records)
        assert head.verdict == report_stats.SUPPORTED
        loto = [r for r in tables[0].rows if r[0].startswith("without Toy")]
        assert len(loto) == k
        assert all((DECIDED_BY_ONE_TASK in r[3]) == flagged for r in loto)
        assert (DECIDED_BY_ONE_TASK in tables[0].title) == flagged


def test_without_v2_cells_leaves_out_cells_holding_v2_run_ids():
    registry = load_registry("v3")
    records = _arms(TOYS[:7], {"weight": 0.8, "batch": 0.2})
    v2 = frozenset(r["run_id"] for r in records if r["config"]["task"] in TOYS[:2])
    _, tables, _ = _decide(registry, records, v2_ids=v2)
    row = next(r for r in tables[0].rows if r[0] == "without v2 cells")
    assert row[1] == "5" and row[3].startswith(report_stats.INSUFFICIENT)


def test_insufficient_below_min_tasks_and_when_the_exact_test_cannot_reach_the_holm_level(tmp_path):
    """4 tasks: fewer than min_tasks (5). 5 tasks in a Holm family of 3: the first's level is 0.05/3 and the
    smallest p-value 2/32 = 0.0625 is above it, so all agreeing is not enough (it needs 7); at 7 tasks the first
    is decided."""
    family = [{"name": f"h{i}", "x": "WN", "y": "BN", "family": "three"} for i in range(3)]
    registry = _registry(tmp_path, [_claim([{"name": "lone", "x": "WN", "y": "BN", "family": "headline"},
                                            *family])])  # fmt: skip
    four = _decide(registry, _arms(TOYS[:4], {"weight": 0.8, "batch": 0.2}))[0]
    assert four[0].verdict == report_stats.INSUFFICIENT and four[0].needs_tasks == 5
    five = _decide(registry, _arms(TOYS[:5], {"weight": 0.8, "batch": 0.2}))[0]
    assert [h.verdict for h in five[1:]] == [report_stats.INSUFFICIENT] * 3
    assert (
        five[1].holm.level == pytest.approx(0.05 / 3) and five[1].needs_tasks == tasks_needed(0.05 / 3) == 7
    )
    assert five[0].verdict == report_stats.INSUFFICIENT and five[0].needs_tasks == 6  # 2/32 > 0.05
    seven = _decide(registry, _arms(TOYS[:7], {"weight": 0.8, "batch": 0.2}))[0]
    assert seven[1].verdict == report_stats.SUPPORTED and seven[1].needs_tasks is None


def test_non_inferiority_uses_the_registry_margin(tmp_path):
    registry = _registry(tmp_path, [_claim([
        {"name": "WN not worse", "x": ["weight"], "y": ["none"], "family": "headline", "test": "non_inferiority"},
        {"name": "WN better", "x": ["weight"], "y": ["none"], "family": "other"}])])  # fmt: skip
    # ties in every cell: P = 0.5, above 0.5 - 0.07 (non-inferior) but not above 0.5 + 0.07 (superior)
    records = _arms(TOYS[:7], {"weight": 0.5, "none": 0.5}, seeds=4)
    (ni, sup), _, _ = _decide(registry, records)
    assert ni.verdict == report_stats.SUPPORTED and sup.verdict != report_stats.SUPPORTED


# -- the loader, the driver, the rules comparison -------------------------------------------------------------------
def test_registry_v3_loads_and_a_bad_field_is_refused_by_name(tmp_path):
    registry = load_registry()
    assert (registry.version, registry.method.decider, registry.method.min_tasks) == (3, "sign_flip", 5)
    assert (
        registry.peer_gate.headline_cells == ("at peer", "no reference")
        and registry.matrix.rows[0] == "on-policy"
    )
    assert registry.claim("C7").headline.test == "non_inferiority" and registry.claim("C5").both_good
    assert registry.claim("C1").hypotheses[4].x.designs and registry.claim("C8").heldout_tolerance == 0.1
    assert registry.defaults.rope == registry.method.margins.equivalence
    raw = yaml.safe_load(REGISTRY_FILE.read_text())
    for mutate, field in (
        (lambda r: r["method"].update(min_taks=5), "method.min_taks"),
        (lambda r: r["peer_gate"].update(grades=["at peer", "near peer"]), "peer_gate.grades.1"),
        (lambda r: r["arm_sets"].update(BN={"first_off": ["batch"]}), "arm_sets.BN"),
        (lambda r: r["claims"][0]["hypotheses"][0].update(test="superior"), "claims.0.hypotheses.0.test"),
        (lambda r: r["designs"].update(SAC=["weight"]), "designs"),
        (lambda r: r["arm_sets"].update(BN={"members": ["batch"], "not_in": {"algo": "sac"}}), "arm_sets.BN"),
        (lambda r: r["arm_sets"].update(BN={"first_of": ["batch"], "members": ["batch"]}), "arm_sets.BN"),
    ):
        bad = copy.deepcopy(raw)
        mutate(bad)
        path = tmp_path / f"bad{field}.yaml"
        path.write_text(yaml.safe_dump(bad, sort_keys=False))
        with pytest.raises(UserError) as err:
            load_registry(path)
        assert any(p.startswith(field) for p in err.value.problems), (field, err.value.problems)


def test_the_report_decides_v3_comparisons_over_tasks_and_names_its_registry():
    registry = load_registry("v3")
    records = _arms(TOYS[:6], {"weight": 0.8, "batch": 0.2})
    results = {r.claim: r for r in analyze(Inputs(records=records), reps=REPS, registry=registry)}
    c1 = results["C1"]
    assert c1.verdict == report_stats.SUPPORTED and c1.headline.decided and len(c1.headline.tasks) == 6
    assert DECIDED_BY_ONE_TASK in c1.notes[0]  # five tasks cannot decide at 5%
    table = next(t for t in c1.tables if t.title.startswith("C1 sensitivity of the headline"))
    at_peer = next(row for row in table.rows if row[0] == AT_PEER_ONLY)
    assert at_peer[1] == "0"  # no cell has a reference, so none is at peer
    assert c1.registry == "version 3, dated 2026-12-06" and "v2 bootstrap (description)" in c1.headline_text
    assert any(t.title.startswith("C1 sensitivity of the headline") for t in c1.tables)
    assert results["C2-GAN"].verdict == "no data"
    split = v3_claims_for(type("R", (), {"claim": "C2", "title": "?"})(), list(results.values()))
    assert [r.claim for r in split] == ["C2-GAN", "C2-GAN-image", "C2-VAE", "C2-diffusion"]


def test_the_readme_table_describes_the_rule_its_registry_used():
    """A v3 payload's table names the sign-flip decider over tasks, Holm and the insufficient rule (never v2's
    bootstrap interval), prints a headline decided over tasks by its own text, and its arm sets with not_in; a
    payload from the v2 registry keeps v2's header."""
    from wnbench.report.readme import HEADER, readme_block

    registry = load_registry("v3")
    head = {"name": "WN > BN", "decider": "sign_flip", "x": list(registry.arm_sets["WN"]),
            "y": list(registry.arm_sets["BN"]), "verdict": "insufficient data", "probability": 0.87,
            "ci_low": 0.4, "ci_high": 1.0, "ci_confidence": 0.95, "direction_counts": [1, 0, 0],
            "text": "P(X > Y) over 3 tasks = 0.870 [unbounded] (sign_flip, 95%; needs 5 tasks to decide)",
            "per_cell": [{"cell": "CartPole-v1/ppo", "metric": "final_return", "median_difference": [1, 0, 2],
                          "seeds": 5, "higher_is_better": True}]}  # fmt: skip
    payload = {"registry": registry.model_dump(mode="json"), "records": 1, "inputs": ["x"],
               "claims": [{"claim": "C1", "title": "WN beats BN", "verdict": "insufficient data", "headline": head}]}  # fmt: skip
    block = readme_block(payload)
    assert "exact sign-flip test over tasks, Holm within each family; insufficient below 5 tasks" in block
    assert "then cells, then runs" not in block and "interval above 0.5" not in block
    assert "Verdicts by the v3 rules (registry version 3, dated 2026-12-06)" in block
    assert "WN > BN: P(X > Y) over 3 tasks = 0.870 [unbounded]" in block
    assert (
        "BN = first of (batch[bn_mode=running], batch), not in cells with algo in {sac, td3, crossq}" in block
    )
    v2 = readme_block({**payload, "registry": load_registry("v2").model_dump(mode="json")})
    assert " | ".join(HEADER) in v2 and "Verdicts by the v2 rules (registry version 2" in v2
