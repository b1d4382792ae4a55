"""Bad input in RL suites (issue 34): a task whose package is not installed, and a design comparison whose two arms
differ in task or budget, are refused at validation with exit 2 naming the field; every committed suite still
validates. The packages are installed here, so their absence is simulated by patching the installed-check."""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest
import yaml

import wnbench.rl.tasks as tasks
from wnbench.errors import UserError
from wnbench.suite.designs import _arm_plans, design_comparisons
from wnbench.suite.spec import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))
PROFILES = [(p, name) for p in SUITES for name in yaml.safe_load(p.read_text())["profiles"]]


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``wnbench ARGS`` in this process: (exit code, stderr)."""
    code, _, err = conftest.run_cli(monkeypatch, capsys, *args)
    return code, err


def write_suite(folder: Path, profile: str, claims: str = "[C1]") -> Path:
    path = folder / "suite.yaml"
    path.write_text(f"name: guard\nclaims: {claims}\nprofiles:\n  default:\n{profile}")
    return path


def without(monkeypatch, module: str) -> None:
    """Make ``module`` look not installed to the task checks."""
    real = tasks.package_installed
    monkeypatch.setattr(tasks, "package_installed", lambda name: name != module and real(name))


# -- missing packages -------------------------------------------------------------------------------------------------
MISSING = [
    (
        "MinAtar/Breakout-v1",
        "dqn",
        "minatar",
        "needs the minatar package, which is not installed: pip install minatar",
    ),
    (
        "Hopper-v5",
        "sac",
        "mujoco",
        'needs the mujoco extra, which is not installed: pip install "gymnasium[mujoco]"',
    ),
    (
        "Ant-v5",
        "ppo",
        "mujoco",
        'needs the mujoco extra, which is not installed: pip install "gymnasium[mujoco]"',
    ),
    (
        "LunarLander-v3",
        "dqn",
        "Box2D",
        'needs the box2d extra, which is not installed: pip install "gymnasium[box2d]"',
    ),
    (
        "BipedalWalker-v3",
        "td3",
        "Box2D",
        'needs the box2d extra, which is not installed: pip install "gymnasium[box2d]"',
    ),
]


@pytest.mark.parametrize(("task", "algo", "module", "message"), MISSING, ids=[m[0] for m in MISSING])
def test_task_without_its_package_is_refused_before_any_run_with_the_install_line(
    task, algo, module, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(ROOT)  # configs/rl
    without(monkeypatch, module)
    path = write_suite(
        tmp_path,
        f"    kind: rl\n    tasks: [{'Pendulum-v1' if algo in ('sac', 'td3') else 'CartPole-v1'}, {task}]\n    algos: [{algo}]\n    norms: [none]\n    seeds: 1\n"
        "    budget: {steps: 1000}\n",
    )
    out = tmp_path / "out"
    code, err = run_cli(monkeypatch, capsys, "run", str(path), "--out", str(out), "--no-wandb")
    assert code == 2
    assert "Traceback" not in err
    assert f"profiles.default.tasks[1]: env '{task}': {message}" in err
    assert "tasks[0]" not in err and "(1 problem)" in err  # the classic-control task needs nothing
    assert not list(out.rglob("*.json*"))  # refused before anything ran


def test_same_tasks_validate_when_their_packages_are_installed():
    for task, *_ in MISSING:
        assert tasks.validate_env_id(task) == [], task
    assert tasks.required_package("CartPole-v1") is None
    assert tasks.required_package("wnbench/CartPoleNoVel-v1") is None
    assert tasks.required_package("CarRacing-v3") == "box2d"
    assert tasks.required_package("Walker2d-v5") == "mujoco"


def test_unknown_minatar_id_without_minatar_names_the_ids_and_the_install_line(monkeypatch):
    without(monkeypatch, "minatar")
    (problem,) = tasks.validate_env_id("MinAtar/Breakuot-v1")
    assert problem.startswith(
        "env 'MinAtar/Breakuot-v1': not a MinAtar id; closest MinAtar ids: MinAtar/Breakout-v1"
    )
    assert problem.endswith("(and the minatar package is not installed: pip install minatar)")


# -- design comparisons -----------------------------------------------------------------------------------------------
SAC_CROSSQ = """\
    kind: rl
    seeds: 1
    grids:
      - {{tasks: [MountainCarContinuous-v0], algos: [sac], norms: [none, weight]{sac_budget}}}
      - {{tasks: [MountainCarContinuous-v0], algos: [crossq], norms: [{{name: batch_renorm, placement: pre}}]{cq_budget}}}
"""


def test_design_arms_at_the_same_budget_validate_whether_it_comes_from_the_config_or_budget_steps(tmp_path):
    # SAC at the zoo's n_timesteps (50k, configs/rl/sac.yaml) meets CrossQ at budget.steps 50000: one design cell
    suite = load_suite(
        write_suite(tmp_path, SAC_CROSSQ.format(sac_budget="", cq_budget=", budget: {steps: 50000}"))
    )
    assert {r.algo for r in suite.runs} == {"sac", "crossq"}


def test_design_arms_at_different_budgets_are_refused_naming_budget_steps_and_both_arms(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(ROOT)
    path = write_suite(tmp_path, SAC_CROSSQ.format(sac_budget="", cq_budget=", budget: {steps: 40000}"))
    code, err = run_cli(monkeypatch, capsys, "run", str(path), "--dry-run")
    assert code == 2 and "Traceback" not in err
    assert (
        "profiles.default.budget.steps: design comparison C1 'off-policy designs: SAC + WN > CrossQ' needs "
        "its two arms on the same task and budget: on MountainCarContinuous-v0, design arm sac:weight runs 50,000 "
        "steps (budget.steps unset: the config's n_timesteps) and design arm crossq:batch_renorm[placement=pre] "
        "40,000 steps "
        "(profiles.default.grids[1].budget.steps); give both the same budget.steps"
    ) in err
    assert "sac:none" not in err  # SAC without a norm is in no C1 comparison
    # one budget for every grid (--set applies to all of them) makes it valid
    code, _ = run_cli(monkeypatch, capsys, "run", str(path), "--dry-run", "--set", "budget.steps=2000")
    assert code == 0


def test_design_arm_on_a_task_the_other_arm_lacks_is_refused_naming_tasks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    profile = SAC_CROSSQ.format(sac_budget=", budget: {steps: 2000}", cq_budget=", budget: {steps: 2000}")
    profile = profile.replace(
        "[MountainCarContinuous-v0], algos: [sac]", "[MountainCarContinuous-v0, Pendulum-v1], algos: [sac]"
    )
    code, err = run_cli(monkeypatch, capsys, "run", str(write_suite(tmp_path, profile)), "--dry-run")
    assert code == 2 and "Traceback" not in err
    assert (
        "profiles.default.grids[0].tasks: design comparison C1 'off-policy designs: SAC + WN > CrossQ' needs its two "
        "arms on the same task and budget: design arm sac:weight runs Pendulum-v1 and design arm "
        "crossq:batch_renorm[placement=pre] does not; plan Pendulum-v1 for crossq:batch_renorm[placement=pre] at "
        "2,000 steps or drop it from sac:weight"
    ) in err
    assert "MountainCarContinuous-v0" not in err  # the shared task is fine


def test_one_design_alone_or_a_claim_without_designs_is_no_design_comparison(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    only_sac = (
        "    kind: rl\n    seeds: 1\n    tasks: [Pendulum-v1]\n    algos: [sac]\n    norms: [weight, nap]\n"
    )
    assert len(load_suite(write_suite(tmp_path, only_sac)).runs) == 2
    mismatched = SAC_CROSSQ.format(sac_budget="", cq_budget=", budget: {steps: 40000}")
    with pytest.raises(UserError) as err:
        load_suite(write_suite(tmp_path, mismatched, claims="[C1]"), run_kind_checks=False)
    assert "design comparison C1" in err.value.render()
    assert load_suite(write_suite(tmp_path, mismatched, claims="[C6]"), run_kind_checks=False).runs


# -- committed suites -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "profile"), PROFILES, ids=[f"{p.stem}-{n}" for p, n in PROFILES])
def test_every_committed_profile_passes_the_design_check(path, profile, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_suite(path, profile, run_kind_checks=False).runs  # the kind's own checks: dry runs below


@pytest.mark.parametrize(
    "profile", list(yaml.safe_load((ROOT / "suites/rl-v3.yaml").read_text())["profiles"])
)
def test_rl_v3_profiles_validate_through_the_cli(profile, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code, err = run_cli(monkeypatch, capsys, "run", "suites/rl-v3.yaml", "--profile", profile, "--dry-run")
    assert code in (0, None), err


def test_rl_v3_paper_makes_the_design_comparisons_it_is_checked_for(monkeypatch):
    monkeypatch.chdir(ROOT)
    suite = load_suite(ROOT / "suites/rl-v3.yaml", "paper", run_kind_checks=False)
    comparisons = design_comparisons(suite.claims)
    assert comparisons
    for comparison in comparisons:  # both sides planned: the check is not vacuous on this profile
        assert _arm_plans(suite.runs, comparison.x) and _arm_plans(suite.runs, comparison.y), comparison.name
