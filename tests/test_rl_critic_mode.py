"""BN's critic modes: what SB3 SAC/TD3 and sb3-contrib CrossQ do in the critic pass of the actor update, and
``critic_mode`` changing that pass alone (MA-BN's eval mode), CrossQ's joint critic update untouched."""

from __future__ import annotations

import pytest
import torch
from sb3_contrib import CrossQ
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

from wnbench.norms import NormError
from wnbench.rl.batch_stats import batch_stat_modules
from wnbench.rl.policies import NormCrossQPolicy, NormSACPolicy, NormTD3Policy

ALGOS = {"sac": (SAC, NormSACPolicy), "td3": (TD3, NormTD3Policy), "crossq": (CrossQ, NormCrossQPolicy)}
SMALL = dict(learning_starts=40, batch_size=16, train_freq=1, gradient_steps=1, seed=0)


def stat_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    return [b for m in batch_stat_modules(module) for b in m.buffers() if b.is_floating_point()]


def spy_on_critic(critic: torch.nn.Module) -> list[dict]:
    """Record every critic call: method, batch size, whether the actions carry a gradient (they come from the actor),
    the train flags of its batch-statistics layers during the call, and whether the call moved their statistics."""
    calls: list[dict] = []
    layers = batch_stat_modules(critic)
    flags: list[bool] = []
    for layer in layers:
        layer.register_forward_pre_hook(lambda m, _args: flags.append(m.training))

    def spy(method):
        def call(obs, actions):
            before = [b.clone() for b in stat_buffers(critic)]
            flags.clear()
            out = method(obs, actions)
            moved = any(not torch.equal(a, b) for a, b in zip(before, stat_buffers(critic), strict=True))
            calls.append(dict(method=method.__name__, n=len(obs), actor_actions=actions.requires_grad,
                              training=set(flags), moved=moved))  # fmt: skip
            return out

        return call

    critic.forward = spy(critic.forward)
    critic.q1_forward = spy(critic.q1_forward) if hasattr(critic, "q1_forward") else None
    return calls


def actor_and_update_passes(algo: str, critic_mode: str | None, steps: int = 60):
    algo_cls, policy_cls = ALGOS[algo]
    norm = {"name": "batch_renorm", "placement": "pre"} if algo == "crossq" else "batch"
    extra = {} if critic_mode is None else {"critic_mode": critic_mode}
    model = algo_cls(
        policy_cls, "Pendulum-v1", policy_kwargs=dict(norm=norm, net_arch=[16, 16], **extra), **SMALL
    )
    calls = spy_on_critic(model.critic)
    model.learn(steps)
    training_calls = [c for c in calls if c["n"] >= SMALL["batch_size"]]  # acting never calls the critic
    actor = [c for c in training_calls if c["actor_actions"]]
    update = [c for c in training_calls if not c["actor_actions"]]
    assert actor and update
    return actor, update


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_stock_sac_and_td3_run_the_actors_critic_pass_in_train_mode(algo):
    """SB3 puts the whole policy in train mode in train(): the actor's critic pass moves the running statistics."""
    actor, update = actor_and_update_passes(algo, None)
    assert all(c["training"] == {True} and c["moved"] for c in actor)
    assert all(c["training"] == {True} and c["moved"] for c in update)
    if algo == "td3":
        assert {c["method"] for c in actor} == {"q1_forward"}


def test_stock_crossq_runs_a_joint_train_pass_and_the_actors_critic_pass_in_eval_mode():
    actor, update = actor_and_update_passes("crossq", None)
    assert all(c["n"] == 2 * SMALL["batch_size"] and c["training"] == {True} and c["moved"] for c in update)
    assert all(c["n"] == SMALL["batch_size"] and c["training"] == {False} and not c["moved"] for c in actor)


@pytest.mark.parametrize("algo", ["sac", "td3", "crossq"])
def test_eval_mode_runs_only_the_actors_critic_pass_on_running_statistics(algo):
    """MA-BN: the actor's critic pass in eval mode leaves the statistics alone; the critic updates are as stock."""
    actor, update = actor_and_update_passes(algo, "eval")
    assert all(c["training"] == {False} and not c["moved"] for c in actor)
    assert all(c["training"] == {True} and c["moved"] for c in update)


def test_train_mode_puts_crossqs_actor_pass_on_minibatch_statistics():
    actor, update = actor_and_update_passes("crossq", "train")
    assert all(c["training"] == {True} and c["moved"] for c in actor)
    assert all(c["n"] == 2 * SMALL["batch_size"] and c["training"] == {True} for c in update)


def _crossq_statistics(policy_cls, policy_kwargs: dict, initial: dict | None = None) -> tuple[list, dict]:
    """Running statistics of every batch-statistics layer after a short CrossQ run, and the initial weights."""
    model = CrossQ(policy_cls, "Pendulum-v1", policy_kwargs=dict(net_arch=[16, 16], **policy_kwargs), **SMALL)
    if initial is not None:  # the same network, module for module: start from the same weights
        target = model.policy.state_dict()
        assert [v.shape for v in initial.values()] == [v.shape for v in target.values()]
        model.policy.load_state_dict(dict(zip(target, initial.values(), strict=True)))
    start = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.set_random_seed(0)
    model.learn(90)
    return stat_buffers(model.policy), start


@pytest.mark.parametrize("critic_mode", [None, "eval"])
def test_crossq_joint_pass_statistics_equal_stock_sb3_contrib(critic_mode):
    """The same seed and weights: every running statistic after training equals stock sb3-contrib CrossQ's."""
    from sb3_contrib.crossq.policies import CrossQPolicy

    stock, initial = _crossq_statistics(CrossQPolicy, {})
    extra = {} if critic_mode is None else {"critic_mode": critic_mode}
    ours, _ = _crossq_statistics(NormCrossQPolicy, extra, initial)
    assert len(ours) == len(stock) > 0
    assert all(torch.equal(a, b) for a, b in zip(ours, stock, strict=True))
    different, _ = _crossq_statistics(NormCrossQPolicy, {"critic_mode": "train"}, initial)
    assert not all(torch.equal(a, b) for a, b in zip(different, stock, strict=True))  # the check can fail


@pytest.mark.parametrize(
    ("algo_cls", "policy_kwargs", "says"),
    [
        (PPO, dict(norm="batch", critic_mode="eval"), "no such pass"),
        (A2C, dict(norm="batch", critic_mode="eval"), "no such pass"),
        (DQN, dict(norm="batch", critic_mode="eval"), "no such pass"),
        (SAC, dict(norm="weight", critic_mode="eval"), "batch statistics"),
        (SAC, dict(norm="batch", critic_mode="eval", norm_critic=False), "norm_critic"),
        (TD3, dict(norm="batch", critic_mode="train", bn_mode="running"), "bn_mode"),
    ],
)
def test_critic_mode_where_it_means_nothing_is_refused_naming_the_option(algo_cls, policy_kwargs, says):
    from wnbench.rl.policies import policy_class_for

    env = "Pendulum-v1" if algo_cls in (SAC, TD3) else "CartPole-v1"
    with pytest.raises(NormError, match="critic_mode") as info:
        algo_cls(policy_class_for(algo_cls.__name__), env, policy_kwargs=policy_kwargs)
    assert says in str(info.value)


def test_critic_mode_as_a_norm_option_is_its_own_arm_and_acts_like_the_keyword():
    """{name: batch, critic_mode: eval} carries the mode in the norm (label batch[critic_mode=eval]); the policy
    runs it as with the keyword, and the two must agree when both are given."""
    policy = NormSACPolicy(
        SAC("MlpPolicy", "Pendulum-v1").observation_space,
        SAC("MlpPolicy", "Pendulum-v1").action_space,
        lambda _: 1e-3,
        norm={"name": "batch", "critic_mode": "eval"},
    )
    assert policy.norm.label == "batch[critic_mode=eval]" and policy.critic_mode == "eval"
    assert (
        policy.critic.actor_pass_training is False
        and policy._get_constructor_parameters()["critic_mode"] == "eval"
    )
    with pytest.raises(ValueError, match="contradicts"):
        NormSACPolicy(policy.observation_space, policy.action_space, lambda _: 1e-3,
                      norm={"name": "batch", "critic_mode": "eval"}, critic_mode="train")  # fmt: skip
    with pytest.raises(NormError, match="'weight' has no option 'critic_mode'"):
        NormSACPolicy(policy.observation_space, policy.action_space, lambda _: 1e-3,
                      norm={"name": "weight", "critic_mode": "eval"})  # fmt: skip
