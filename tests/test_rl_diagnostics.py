"""Mechanism diagnostics: known answers (PPO's first ratio) and no effect on the run they observe."""

from __future__ import annotations

import math

import pytest

from wnbench.rl.train import train_rl

PPO_TINY = dict(hyperparams={"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2}, seed=0,
                total_steps=768, eval_every=256, eval_episodes=1, policy_kwargs={"net_arch": [16, 16]})  # fmt: skip


def _ppo(norm, **extra):
    kw = {**PPO_TINY, "policy_kwargs": {**PPO_TINY["policy_kwargs"], **extra}}
    return train_rl("ppo", "CartPole-v1", norm, **kw)


@pytest.mark.parametrize("norm", ["none", "weight", "layer"])
def test_ppo_first_ratio_is_one_when_train_and_eval_networks_agree(norm):
    record = _ppo(norm)
    assert len(record["diag_ratio_dev"]) == 6  # one per update (768 steps / 128 per rollout)
    assert max(record["diag_ratio_dev"]) < 1e-5


def test_ppo_first_ratio_shows_bns_train_eval_mismatch_and_running_mode_removes_it():
    stock = _ppo("batch")
    assert min(stock["diag_ratio_dev"][1:]) > 1e-3  # running vs minibatch statistics: off before any step
    running = _ppo("batch", bn_mode="running")
    assert max(running["diag_ratio_dev"]) < 1e-5
    as_arm = train_rl("ppo", "CartPole-v1", {"name": "batch", "bn_mode": "running"}, **PPO_TINY)
    assert as_arm["norm"] == "batch[bn_mode=running]"
    assert as_arm["diag_ratio_dev"] == running["diag_ratio_dev"]


def test_diagnostics_do_not_change_the_run():
    kw = dict(hyperparams={"learning_starts": 64, "batch_size": 32}, seed=3, total_steps=300, eval_every=100,
              eval_episodes=1, policy_kwargs={"net_arch": [16, 16]})  # fmt: skip
    observed = train_rl("sac", "Pendulum-v1", "batch", diagnostics=True, **kw)
    plain = train_rl("sac", "Pendulum-v1", "batch", diagnostics=False, **kw)
    assert observed["eval_returns"] == plain["eval_returns"]
    assert not any(k.startswith("diag_") for k in plain)
    points = len(observed["diag_step"])
    assert points == len(observed["eval_steps"]) - 1  # every evaluation point after the untrained one
    assert all(
        len(observed[f"diag_{k}"]) == points for k in ("grad_noise", "weight_norm", "eff_lr", "q_bias")
    )
    finite = [v for v in observed["diag_q_bias"] if math.isfinite(v)]
    assert finite and all(math.isfinite(v) for v in observed["diag_weight_norm"])
    assert math.isfinite(observed["diag_grad_noise"][-1]) and observed["diag_grad_noise"][-1] > 0


def test_gradient_noise_is_not_measured_where_the_update_uses_the_whole_rollout():
    """A PPO minibatch equal to the rollout (2 envs x 64 steps = 128) makes the update's gradient a function of the
    rollout: no sampling noise to measure (NaN points), while 64-sample minibatches of it have some."""
    full = train_rl(
        "ppo",
        "CartPole-v1",
        "weight",
        **{**PPO_TINY, "hyperparams": {**PPO_TINY["hyperparams"], "batch_size": 128}},
    )
    assert full["diag_grad_noise"] and not any(math.isfinite(v) for v in full["diag_grad_noise"])
    assert all(math.isfinite(v) for v in full["diag_weight_norm"])  # the other diagnostics still run
    mini = _ppo("weight")
    assert all(math.isfinite(v) and v > 0 for v in mini["diag_grad_noise"])


def test_actor_weight_growth_is_measured_and_a_projected_actor_keeps_its_norm():
    """The actor's diagnostics: with SimbaV2's unit-norm rows the stored weights' norms stay put (each hidden
    layer of 16 unit rows has norm 4) while the weights move (a positive effective rate); without a norm the
    norms change."""
    kw = dict(hyperparams={"learning_starts": 64, "batch_size": 32}, seed=0, total_steps=400, eval_every=100,
              eval_episodes=1, policy_kwargs={"net_arch": [16, 16]})  # fmt: skip
    sphere = train_rl("sac", "Pendulum-v1", "hyperspherical", **kw)
    assert len(sphere["diag_actor_weight_norm"]) == len(sphere["diag_step"]) >= 3
    assert all(abs(v - 4.0) < 1e-5 for v in sphere["diag_actor_weight_norm"])
    assert all(abs(v - 4.0) < 1e-5 for v in sphere["diag_weight_norm"])
    assert all(v > 0 for v in sphere["diag_actor_eff_lr"][1:])
    plain = train_rl("sac", "Pendulum-v1", "none", **kw)
    norms = plain["diag_actor_weight_norm"]
    assert max(norms) - min(norms) > 1e-3 and all(math.isfinite(v) for v in plain["diag_actor_eff_lr"][1:])


def test_ppo_logs_its_policy_nets_weight_diagnostics_as_curves():
    logged: dict[str, list[float]] = {}

    def log(metrics, _step):
        for key, value in metrics.items():
            logged.setdefault(key, []).append(value)

    record = train_rl("ppo", "CartPole-v1", "weight", log_fn=log, **PPO_TINY)
    assert logged["diag/actor_weight_norm"] == record["diag_actor_weight_norm"]
    assert record["diag_actor_weight_norm"] != record["diag_weight_norm"]  # the policy net, not the value net
    assert all(v > 0 for v in logged["diag/actor_eff_lr"])
