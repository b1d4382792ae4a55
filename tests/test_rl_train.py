"""One RL run: the record, the eval curve, logging through SB3's KVWriter, determinism, divergence, DDI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger

from wnbench.errors import UserError
from wnbench.rl.train import CallbackOutputFormat, RunDiverged, normalized_auc, train_rl

SMALL = {"policy_kwargs": "dict(net_arch=[32, 32])"}


def collect():
    logs: list[tuple[int, dict[str, float]]] = []
    return logs, (lambda metrics, step: logs.append((step, dict(metrics))))


def assert_sound_record(record, total_steps, eval_every):
    steps = record["eval_steps"]
    assert steps[0] == 0 and steps[-1] == record["total_steps"] >= total_steps
    assert all(b > a for a, b in zip(steps, steps[1:], strict=False))
    assert len(steps) >= total_steps // eval_every + 1
    assert record["final_return"] == pytest.approx(np.mean(record["eval_returns"][-3:]))
    assert math.isfinite(record["auc_normalized"])
    assert record["steps_per_s"] > 0 and record["wall_s"] >= record["train_s"] > 0


@pytest.mark.parametrize(
    "algo,env_id,norm,hyperparams",
    [
        ("ppo", "CartPole-v1", "batch", {**SMALL, "n_steps": 64, "n_envs": 2, "batch_size": 64}),  # on-policy
        (
            "sac",
            "Pendulum-v1",
            "weight_ddi",
            {**SMALL, "learning_starts": 100, "batch_size": 32},
        ),  # off-policy
        (
            "recurrentppo",
            "wnbench/CartPoleNoVel-v1",
            "weight",
            {
                "n_steps": 64,
                "n_envs": 2,
                "n_epochs": 2,
                "batch_size": 64,
                "policy_kwargs": "dict(lstm_hidden_size=16, net_arch=[16])",
            },
        ),
    ],
    ids=["on-policy", "off-policy", "recurrent"],
)
def test_short_run_per_algorithm_family(algo, env_id, norm, hyperparams):
    logs, log_fn = collect()
    record = train_rl(
        algo,
        env_id,
        norm,
        hyperparams,
        seed=0,
        total_steps=300,
        eval_every=100,
        eval_episodes=2,
        log_fn=log_fn,
    )
    assert_sound_record(record, 300, 100)
    assert record["norm"] == norm
    keys = {k for _, m in logs for k in m}
    assert "eval/mean_return" in keys
    assert any(k.startswith("train/") for k in keys), keys  # SB3's own records reach log_fn
    eval_points = [(s, m["eval/mean_return"]) for s, m in logs if "eval/mean_return" in m]
    assert eval_points == list(zip(record["eval_steps"], record["eval_returns"], strict=True))


def test_ddi_runs_once_at_the_start_of_training():
    logs, log_fn = collect()
    record = train_rl("ppo", "CartPole-v1", "weight_ddi", {**SMALL, "n_steps": 64, "n_envs": 2, "batch_size": 64}, total_steps=128,
                      eval_every=128, eval_episodes=1, log_fn=log_fn)  # fmt: skip
    assert record["ddi_layers"] == 4  # two hidden layers in the actor and in the critic
    ddi_logs = [(s, m["norm/ddi_layers"]) for s, m in logs if "norm/ddi_layers" in m]
    assert ddi_logs == [(ddi_logs[0][0], 4.0)] and ddi_logs[0][0] <= 128
    plain = train_rl("ppo", "CartPole-v1", "weight", {**SMALL, "n_steps": 64, "n_envs": 2, "batch_size": 64}, total_steps=128,
                     eval_every=128, eval_episodes=1)  # fmt: skip
    assert plain["ddi_layers"] == 0


def test_same_seed_same_curve_other_seed_other_curve():
    spec = dict(
        hyperparams={**SMALL, "n_steps": 64, "n_envs": 2, "batch_size": 64},
        total_steps=256,
        eval_every=128,
        eval_episodes=3,
    )
    first = train_rl("ppo", "CartPole-v1", "layer", seed=5, **spec)
    again = train_rl("ppo", "CartPole-v1", "layer", seed=5, **spec)
    other = train_rl("ppo", "CartPole-v1", "layer", seed=6, **spec)
    assert first["eval_returns"] == again["eval_returns"]
    assert first["eval_returns"] != other["eval_returns"]


def test_diverged_run_raises_with_the_step():
    with pytest.raises(RunDiverged) as info:
        train_rl("ppo", "CartPole-v1", "none", {**SMALL, "n_steps": 64, "n_envs": 2, "batch_size": 64, "learning_rate": 1e30},
                 total_steps=1024, eval_every=128, eval_episodes=1)  # fmt: skip
    assert isinstance(info.value, FloatingPointError)
    assert 0 < info.value.step <= 1024
    assert f"step {info.value.step}" in str(info.value)


def test_invalid_spec_fails_before_training():
    with pytest.raises(UserError) as info:
        train_rl("dqn", "Pendulum-v1", "none", total_steps=100)
    assert any("dqn" in p and "Pendulum-v1" in p for p in info.value.problems)


def test_kvwriter_forwards_numeric_records_and_flags_nonfinite():
    received = []
    writer = CallbackOutputFormat(lambda metrics, step: received.append((step, metrics)))
    logger = Logger(folder=None, output_formats=[writer])
    logger.record("train/loss", 0.5)
    logger.record("train/n_updates", 3, exclude="tensorboard")
    logger.record("rollout/note", "text is skipped")
    logger.dump(step=42)
    assert received == [(42, {"train/loss": 0.5, "train/n_updates": 3.0})]
    assert writer.first_nonfinite is None
    logger.record("train/loss", float("nan"))
    logger.dump(step=50)
    assert writer.first_nonfinite == ("train/loss", 50)


def test_normalized_auc_is_the_time_averaged_return():
    assert normalized_auc([0, 10], [0.0, 10.0]) == pytest.approx(5.0)
    assert normalized_auc([0, 10, 20], [100.0, 100.0, 100.0]) == pytest.approx(100.0)
    assert math.isnan(normalized_auc([0], [1.0]))


@pytest.mark.slow
def test_no_norm_ppo_solves_cartpole():
    record = train_rl("ppo", "CartPole-v1", "none", seed=0, eval_every=10_000, eval_episodes=10)
    assert record["final_return"] >= 475, record["eval_returns"]


@pytest.mark.slow
def test_no_norm_sac_solves_pendulum():
    record = train_rl("sac", "Pendulum-v1", "none", seed=0, eval_every=2_000, eval_episodes=10)
    assert record["final_return"] >= -200, record["eval_returns"]
