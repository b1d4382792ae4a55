"""Claims are registry entries: adding one, its version and date in the pre-registration, a bad registry's exit 2."""

from __future__ import annotations

import json

import pytest
from report_v2_fixtures import (
    REPS,
    _c,
    _cli,
    _records,
    _registry_v2,  # noqa: F401  (autouse: these tests check the v2 rules)
    write_fixture,
)

from wnbench.errors import UserError
from wnbench.report import Inputs, analyze
from wnbench.rl.scoring import EVAL_CURVE


def test_adding_a_claim_is_adding_a_registry_entry(tmp_path):
    from wnbench.report.registry import REGISTRY_V2_FILE, load_registry

    text = REGISTRY_V2_FILE.read_text() + (
        "  - id: C9\n    statement: LN beats BN in RL\n    analysis: comparison\n    suites: [rl]\n"
        "    metric: final return\n    hypotheses:\n      - {name: layer > BN, x: [layer], y: BN, family: extra}\n"
    )
    (tmp_path / "registry.yaml").write_text(text)
    registry = load_registry(tmp_path / "registry.yaml")
    cells = {
        t: {"layer": [10.0, 11, 12], "batch": [0.0, 1, 2], "weight": [5.0, 6, 7]} for t in ("A-v0", "B-v0")
    }
    results = analyze(Inputs(records=_records(cells)), reps=REPS, registry=registry)
    c9 = _c(results, "C9")
    assert c9.verdict == "supported" and c9.headline.y == ("batch", "batch[bn_mode=running]", "batch_renorm")
    assert c9.headline.holm.family_size == 1  # its own family: C1's headline family is not enlarged


def test_a_new_claim_is_one_registry_entry_from_suite_file_to_report_and_wandb(tmp_path, monkeypatch):
    """C9 and C10 in a registry named by WNBENCH_REGISTRY: a suite naming C9 is accepted (refused under the
    built-in registry), and C9 is analyzed, rendered, drawn and given a W&B section as its entry says; C10, with
    no input, prints its entry's how-to-measure line. No code names either id."""
    from wnbench.report import wandb_sections
    from wnbench.report.registry import REGISTRY_V2_FILE
    from wnbench.report.render import write_report
    from wnbench.suite import load_suite

    entries = (
        "  - id: C9\n    statement: LN beats BN in RL\n    analysis: comparison\n    suites: [rl9]\n"
        "    metric: final return\n    figures: [curves, iqm]\n    how_to_measure: Run suites/rl9.yaml.\n"
        "    wandb: {curves: [eval/mean_return], finals: [final_return]}\n"
        "    hypotheses:\n      - {name: layer > BN, x: [layer], y: BN, family: extra}\n"
        "  - id: C10\n    statement: GN beats BN in RL\n    analysis: comparison\n    suites: [rl10]\n"
        "    metric: final return\n    how_to_measure: Run suites/rl10.yaml (not yet written).\n"
        "    hypotheses:\n      - {name: group > BN, x: [group], y: BN, family: extra}\n"
    )
    (tmp_path / "registry.yaml").write_text(REGISTRY_V2_FILE.read_text() + entries)
    (tmp_path / "rl9.yaml").write_text(
        "name: rl9\nclaims: [C9]\nprofiles:\n  default: {kind: toy, tasks: [regression], algos: [mlp], "
        "norms: [layer, batch], seeds: 1, budget: {steps: 10}}\n"
    )
    monkeypatch.delenv("WNBENCH_REGISTRY", raising=False)
    with pytest.raises(UserError) as refused:
        load_suite(tmp_path / "rl9.yaml")
    assert any("unknown claim 'C9'" in p for p in refused.value.problems)
    monkeypatch.setenv("WNBENCH_REGISTRY", str(tmp_path / "registry.yaml"))
    assert load_suite(tmp_path / "rl9.yaml").claims == ("C9",)

    cells = {t: {"layer": [400.0, 420, 450], "batch": [50.0, 60, 70]} for t in ("CartPole-v1", "Acrobot-v1")}
    inputs = Inputs(records=_records(cells, suite="rl9", claims=("C9",)))
    results = analyze(inputs, reps=REPS)  # the registry from WNBENCH_REGISTRY
    assert [r.claim for r in results][-2:] == ["C9", "C10"]
    c9, c10 = _c(results, "C9"), _c(results, "C10")
    assert c9.verdict == "supported" and c9.suites == ["rl9"] and c10.verdict == "no data"
    paths = write_report(results, inputs, tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "## C9 — LN beats BN in RL" in md and "Run suites/rl10.yaml (not yet written)." in md
    assert [f.path for f in c9.figures] == ["figures/c9_curves.png", "figures/c9_iqm.png"]
    assert all((tmp_path / "report" / f.path).stat().st_size > 1000 for f in c9.figures)
    verdicts = json.loads(paths["json"].read_text())
    assert {c["claim"]: c["verdict"] for c in verdicts["claims"]}["C9"] == "supported"
    (section,) = wandb_sections(results)  # C1-C8 have no records here; C10 has neither records nor panels
    assert (section.claim, section.curve_metrics, section.final_metrics) == (
        "C9",
        (EVAL_CURVE,),
        ("final_return",),
    )


def test_the_registry_carries_its_version_and_date_into_the_preregistration(tmp_path):
    from wnbench.report.registry import REGISTRY_V2_FILE, load_registry
    from wnbench.report.render import preregistration_markdown

    registry = load_registry("v2")
    assert (registry.version, registry.date.isoformat()) == (2, "2026-12-03")
    assert preregistration_markdown(registry).startswith("Registry version 2, dated 2026-12-03 (commit ")
    assert "Verdict rule" in preregistration_markdown(registry).split("\n")[0]
    bare = tmp_path / "bare.yaml"
    bare.write_text(REGISTRY_V2_FILE.read_text().replace("version: 2", "").replace("date: 2026-12-03", ""))
    assert preregistration_markdown(load_registry(bare)).startswith("Verdict rule")
    bad = tmp_path / "bad.yaml"
    bad.write_text(REGISTRY_V2_FILE.read_text().replace("figures: [lr]", "figures: [lr, pie]"))
    with pytest.raises(UserError) as err:
        load_registry(bad)
    assert any(p.startswith("claims.4.figures.1:") for p in err.value.problems)


def test_a_bad_registry_exits_2_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims:\n  - id: C1\n    statement: s\n    analysis: magic\n    suites: [rl]\n    metric: m\n"
                   "    hypotheses: [{name: h, x: NOPE, y: [batch], family: f}]\n")  # fmt: skip
    write_fixture(tmp_path / "rl")
    proc = _cli(
        "report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), "--registry", str(bad), cwd=tmp_path
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown arm set 'NOPE'" in proc.stderr
    bad.write_text(bad.read_text().replace("x: NOPE", "x: [weight]"))
    proc = _cli(
        "report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), "--registry", str(bad), cwd=tmp_path
    )
    assert proc.returncode == 2 and "claims.0.analysis" in proc.stderr
