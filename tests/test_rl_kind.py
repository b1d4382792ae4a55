"""The ``rl`` run kind through the suite engine: smoke profile end to end, bad RL input refused up front."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest

from wnbench.rl.kind import Params, hyperparam_overrides, run, validate
from wnbench.suite import Budget, Diverged, RunContext, RunSpec, load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["rl.yaml", "rl-lr.yaml", "rl-recurrent.yaml"]


def run_cli(monkeypatch, args: list[str]) -> int:
    """``wnbench ARGS`` in this process (the engine still runs each RL run in its own process)."""
    from wnbench import cli

    monkeypatch.setattr(sys, "argv", ["wnbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code or 0


def rl_spec(
    task: str = "CartPole-v1", algo: str = "ppo", norm: str = "none", steps: int = 512, **params
) -> RunSpec:
    return RunSpec(
        kind="rl",
        task=task,
        algo=algo,
        norm={"name": norm},
        seed=0,
        params=Params(**params),
        budget=Budget(time_limit_s=60, steps=steps),
    )


TINY_PPO = {
    "net_arch": [8],
    "eval_every": 128,
    "eval_episodes": 1,
    "hyperparams": {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1},
}


def test_smoke_profile_runs_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["run", str(ROOT / "suites/rl.yaml"), "--profile", "smoke", "--out", str(out), "--no-wandb"]
    args += ["--workers", "2", "--set", "norms=[none, weight_ddi]"]
    assert run_cli(monkeypatch, args) == 0, capsys.readouterr()
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/record.json")]
    cells = {(r["config"]["algo"], r["config"]["norm"]) for r in records}
    assert {norm for algo, norm in cells if algo == "ppo"} == {"none", "weight_ddi"}
    assert {algo for algo, _ in cells} == {"ppo", "dqn", "sac", "crossq"}  # every family of the smoke profile
    for record in records:
        assert record["status"] == "finished", record["error"]
        metrics = record["metrics"]
        assert math.isfinite(metrics["final_return"]) and metrics["steps_per_s"] > 0
        assert metrics["budget_fraction"] == 1.0 and metrics["stopped_early"] == 0.0
        curve = record["curves"]["eval/mean_return"]
        assert (
            curve["step"][0] == 0
            and curve["step"][-1] == metrics["total_steps"] == record["config"]["budget"]["steps"]
        )
        assert len(curve["step"]) >= 3
        assert any(name.startswith("train/") for name in record["curves"])  # SB3's logger reached the curves
        assert (out / "runs" / record["run_id"] / "rl_record.json").is_file()
        assert "diag/weight_norm" in record["curves"]  # mechanism diagnostics reach the record's curves
        if record["config"]["algo"] == "ppo":
            assert "diag/ratio_dev" in record["curves"]
    ddi = [r for r in records if r["config"]["norm"] == "weight_ddi"]
    assert all(r["metrics"]["ddi_layers"] > 0 for r in ddi)


BAD_RL_SUITE = """
name: bad-rl
claims: [C1]
profiles:
  default:
    kind: rl
    norms: [none]
    seeds: 1
    budget: {steps: 100}
    grids:
      - {tasks: [CartPol-v1], algos: [ppo]}
      - {tasks: [Pendulum-v1], algos: [dqn]}
      - {tasks: [wnbench/CartPoleNoVel-v1], algos: [recurrentppo], norms: [weight, batch_renorm]}
      - {tasks: [CartPole-v1], algos: [ppo], params: {learning_rate: fast}}
"""


def test_bad_rl_input_exits_2_listing_each_problem_at_its_yaml_path(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text(BAD_RL_SUITE)
    out = tmp_path / "out"
    assert run_cli(monkeypatch, ["run", str(suite), "--out", str(out), "--no-wandb"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    expected = [
        "profiles.default.grids[0].tasks[0]: env 'CartPol-v1': not a registered gymnasium id; closest registered ids: CartPole-v1",
        "profiles.default.grids[1].algos[0]: algo 'dqn' cannot act in env 'Pendulum-v1'",
        "profiles.default.grids[2].norms[1]: norm 'batch_renorm' cannot go into recurrentppo's LSTM",
        "profiles.default.grids[3].params.learning_rate",
    ]  # fmt: skip
    for message in expected:
        assert message in err, f"{message!r} not in:\n{err}"
    assert "grids[2].norms[0]" not in err  # weight is fine in an LSTM
    assert not list(out.glob("runs/*/record.json"))  # nothing ran


CRITIC_MODE_SUITE = """
name: bad-critic-mode
claims: [C1]
profiles:
  default:
    kind: rl
    seeds: 1
    budget: {steps: 100}
    grids:
      - {tasks: [CartPole-v1], algos: [ppo], norms: [{name: batch, critic_mode: eval}]}
      - tasks: [Pendulum-v1]
        algos: [sac]
        norms: [{name: weight, critic_mode: eval}, {name: batch, critic_mode: eval}]
"""


def test_critic_mode_where_it_means_nothing_exits_2_naming_the_norm(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text(CRITIC_MODE_SUITE)
    out = tmp_path / "out"
    assert run_cli(monkeypatch, ["run", str(suite), "--out", str(out), "--no-wandb"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    ppo = [line for line in lines if "grids[0].norms[0]" in line]
    assert ppo and "critic_mode" in ppo[0] and "PPO, A2C" in ppo[0] and "no such pass" in ppo[0], err
    weight = [line for line in lines if "grids[1].norms[0]" in line]
    assert weight and "'weight' has no option 'critic_mode'" in weight[0], err
    assert "grids[1].norms[1]" not in err  # batch statistics in SAC: a valid arm
    assert not list(out.glob("runs/*/record.json"))


@pytest.mark.parametrize(
    "spec,field,words",
    [
        (rl_spec(task="Pendulm-v1", algo="sac"), "task", ["Pendulum-v1"]),
        (rl_spec(task="Pendulum-v1", algo="dqn"), "algo", ["dqn", "Pendulum-v1", "Discrete"]),
        (
            rl_spec(task="wnbench/CartPoleNoVel-v1", algo="recurrentppo", norm="batch_renorm"),
            "norm",
            ["LSTM"],
        ),
        (rl_spec(norm="group", net_arch=[30, 30]), "norm", ["30"]),
        (rl_spec(hyperparams={"n_stepz": 8}), "params.hyperparams.n_stepz", ["not a PPO argument"]),
    ],
    ids=["unknown-env", "dqn-on-box", "batch-stat-lstm", "group-width", "unknown-hyperparameter"],
)
def test_validate_names_the_field_and_the_reason(spec, field, words):
    (message,) = validate(spec)
    assert message.startswith(f"{field}: ")
    assert all(word in message for word in words), message


def test_good_specs_pass_validation_for_every_algorithm_family():
    assert validate(rl_spec()) == []
    assert validate(rl_spec(task="Pendulum-v1", algo="crossq", norm="weight_ddi", net_arch=[64, 64])) == []
    assert validate(rl_spec(task="wnbench/CartPoleNoVel-v1", algo="recurrentppo", norm="layer")) == []


def test_learning_rate_sweep_scales_the_configured_schedule():
    # configs/rl/ppo.yaml CartPole-v1 has lin_0.001: a swept rate keeps the linear decay; SAC's constant stays so.
    assert hyperparam_overrides("ppo", "CartPole-v1", Params(learning_rate=3e-3)) == {
        "learning_rate": "lin_0.003"
    }
    assert hyperparam_overrides("sac", "Pendulum-v1", Params(learning_rate="3e-3")) == {
        "learning_rate": 0.003
    }
    with pytest.raises(ValueError, match="positive"):
        Params(learning_rate=-1e-3)


def test_every_profile_of_the_rl_suites_validates():
    import yaml

    for name in SUITES:
        profiles = yaml.safe_load((ROOT / "suites" / name).read_text())["profiles"]
        assert {"smoke", "default", "paper", "full"} <= set(profiles), name
        for profile in profiles:
            suite = load_suite(ROOT / "suites" / name, profile, run_kind_checks=profile == "default")
            assert suite.runs and suite.kinds == ["rl"]


def test_run_stops_before_its_deadline_with_a_final_evaluation(tmp_path):
    ctx = RunContext(run_id="t", run_dir=tmp_path, seed=0, deadline=time.time() + 12)
    metrics = run(rl_spec(steps=200_000, **TINY_PPO), ctx)
    assert metrics["stopped_early"] == 1.0 and metrics["budget_fraction"] < 0.5
    assert ctx.curves["eval/mean_return"]["step"][-1] == metrics["total_steps"]
    assert time.time() < ctx.deadline


def test_divergence_becomes_the_engines_diverged(tmp_path, monkeypatch):
    from wnbench.rl import kind
    from wnbench.rl.train import RunDiverged

    def diverging(*args, **kwargs):
        raise RunDiverged("diverged: parameter 'x' is not finite at step 640", 640)

    monkeypatch.setattr(kind, "train_rl", diverging)
    ctx = RunContext(run_id="t", run_dir=tmp_path, seed=0, deadline=float("inf"))
    with pytest.raises(Diverged) as err:
        run(rl_spec(**TINY_PPO), ctx)
    assert err.value.step == 640


def test_run_identity_follows_the_zoo_config_the_run_reads(tmp_path, monkeypatch):
    """Editing configs/rl/<algo>.yaml must change the run id (so resume reruns), and the id must be stable."""
    import shutil

    import wnbench.rl.hyperparams as hyperparams

    configs = tmp_path / "rl"
    shutil.copytree(hyperparams.CONFIG_DIR, configs)
    monkeypatch.setattr(hyperparams, "CONFIG_DIR", configs)
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        "name: ident\nclaims: [C1]\nprofiles:\n  p:\n    kind: rl\n    tasks: [CartPole-v1]\n    algos: [ppo]\n"
        "    norms: [none]\n    seeds: 1\n    budget: {time_limit_s: 60, steps: 1000}\n"
    )

    def ids() -> list[str]:
        return [r.run_id for r in load_suite(suite_file, profile="p").runs]

    first = ids()
    assert ids() == first
    ppo = configs / "ppo.yaml"
    ppo.write_text(ppo.read_text().replace("ent_coef: 0.0", "ent_coef: 0.01", 1))
    assert ids() != first
