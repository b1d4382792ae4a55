"""The careless-init arms as the report sees them: the factory's labels are what C6's analysis pairs, comparison
hypotheses never count them for their norm, and the init profiles share their gain-1 runs with the comparison
profiles (same run ids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wnbench.norms import make_norm
from wnbench.report.analyses.init_sensitivity import careless_twins
from wnbench.report.hypotheses import arm_runs
from wnbench.report.registry import canonical, load_registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("arm", "spec"),
    [("weight", {"name": "weight"}), ("weight_ddi", {"name": "weight_ddi"}), ("none", {"name": "none"}),
     ("batch", {"name": "batch"}), ("batch[bn_mode=running]", {"name": "batch", "bn_mode": "running"})],
)  # fmt: skip
def test_factory_labels_are_the_twins_c6_pairs(arm, spec):
    def label(**extra):
        options = {k: v for k, v in spec.items() if k != "name"}
        return canonical(make_norm(spec["name"], **options, **extra).label)

    assert label() == canonical(arm)
    twins = [label(init_gain=0.1), label(init_gain=10)]
    assert careless_twins(arm, twins) == twins
    if spec["name"] == "batch":  # a second changed option is not a twin
        assert careless_twins(arm, [label(init_gain=10, momentum=0.5)]) == []


def test_comparison_hypotheses_do_not_count_careless_runs_for_their_norm():
    values = {"weight": np.array([1.0, 2.0]), "weight[init_gain=10]": np.array([-9.0]),
              "batch[bn_mode=running]": np.array([3.0]), "batch[bn_mode=running,init_gain=0.1]": np.array([-9.0])}  # fmt: skip
    all_arms = load_registry().arms()
    got = arm_runs(values, ["weight", "batch[bn_mode=running]", "batch"], all_arms)
    assert {k: v.tolist() for k, v in got.items()} == {"weight": [1.0, 2.0], "batch[bn_mode=running]": [3.0]}


def test_c6_reads_the_suites_that_hold_the_init_profiles():
    c6 = next(c for c in load_registry().claims if c.id == "C6")
    assert set(c6.suites) == {"rl-v3", "gen-v3"}
    assert any("C6's suites" in a.change for a in load_registry().amendments)


@pytest.mark.parametrize(("suite", "shared_with"), [("gen-v3", ["paper"]), ("rl-v3", ["paper", "baseline"])])
def test_init_profile_shares_its_gain_1_runs(suite, shared_with):
    from wnbench.suite.spec import load_suite

    path = ROOT / "suites" / f"{suite}.yaml"
    init = load_suite(path, "init", run_kind_checks=False)
    planned = {r.run_id for p in shared_with for r in load_suite(path, p, run_kind_checks=False).runs}
    careless = [r for r in init.runs if "init_gain=" in r.norm_label]
    plain = [r for r in init.runs if "init_gain=" not in r.norm_label]
    assert careless and not any(r.run_id in planned for r in careless)
    new_plain = sorted({r.norm_label for r in plain if r.run_id not in planned})
    # gen: all four gain-1 arms are `paper`'s runs; rl: weight_ddi is not an arm of `paper`
    assert new_plain == ([] if suite == "gen-v3" else ["weight_ddi"])
    gains = {r.norm_label.split("init_gain=")[1].rstrip("]") for r in careless}
    assert gains == {"0.1", "10"}


def test_c6_leaves_out_the_cells_bns_not_in_excludes():
    """BN's arm set is `not_in: {algo: [sac, td3, crossq]}` (registry amendment 2026-12-06): a SAC cell counts for
    a hypothesis naming BN in no claim, C6 included; the same cell under PPO does."""
    from wnbench.report.analyses.init_sensitivity import sensitivity_effects

    bn = load_registry().arm_sets["BN"]
    hurt, fine = np.array([10.0, 11.0, 12.0]), np.array([0.0, 1.0, 2.0])
    oriented = {"weight": hurt, "weight[init_gain=10]": fine, "batch": hurt, "batch[init_gain=10]": hurt}
    cells = {"A/sac": oriented, "B/ppo": oriented}
    tasks = {"A/sac": "A", "B/ppo": "B"}
    configs = {"A/sac": [{"algo": "sac"}], "B/ppo": [{"algo": "ppo"}]}
    effects = sensitivity_effects(cells, tasks, ["weight"], bn, configs)
    assert list(effects.tasks) == ["B"]  # the SAC cell is not BN's advocated form
    assert list(sensitivity_effects(cells, tasks, ["weight"], bn).tasks) == [
        "A",
        "B",
    ]  # without configs: both
