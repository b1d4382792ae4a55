"""Norm policies: the norm's layers sit where they should, recurrent refusals, bn_mode, DDI, CNN trunk."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib.common.torch_layers import BatchRenorm1d
from torch import nn
from torch.nn.utils import parametrize

from wnbench.norms import (
    BatchNormLSTM,
    LayerNormLSTM,
    MeanOnlyBatchNorm,
    NormError,
    SequenceBatchNorm,
    WNConv2d,
    WNLinear,
    available_norms,
    make_norm,
    spectral_norm_modules,
)
from wnbench.norms.projected import MPSiLU, ProjectedMixin
from wnbench.norms.weightnorm import WNLSTM
from wnbench.rl.policies import (
    MinAtarCNN,
    NormActorCriticPolicy,
    NormCrossQPolicy,
    NormDQNPolicy,
    NormRecurrentActorCriticPolicy,
    NormSACPolicy,
    NormTD3Policy,
    batch_stat_modules,
    initialize_policy,
    policy_class_for,
)

NORMS = available_norms()
HIDDEN = [32, 32]
BOX_OBS = spaces.Box(-1.0, 1.0, (4,), np.float32)
DISCRETE = spaces.Discrete(3)
BOX_ACT = spaces.Box(-2.0, 2.0, (2,), np.float32)


def lr(_: float) -> float:
    return 1e-3


def norm_markers(module: nn.Module, norm: str) -> int:
    """How many layers in ``module`` carry the given norm kind's signature."""
    kinds = {
        "batch": lambda m: isinstance(m, nn.BatchNorm1d),
        "batch_renorm": lambda m: isinstance(m, BatchRenorm1d),
        "layer": lambda m: isinstance(m, nn.LayerNorm),
        "group": lambda m: isinstance(m, nn.GroupNorm),
        "weight": lambda m: isinstance(m, WNLinear) and not m.ddi,
        "weight_ddi": lambda m: isinstance(m, WNLinear) and m.ddi,
        "weight_meanonly": lambda m: isinstance(m, MeanOnlyBatchNorm),
        "meanonly": lambda m: isinstance(m, MeanOnlyBatchNorm),
        "spectral": lambda m: isinstance(m, nn.Linear) and parametrize.is_parametrized(m, "weight"),
        "forced_weight": lambda m: isinstance(m, ProjectedMixin) and m.mode == "forced",
        "forced_weight_mp": lambda m: isinstance(m, MPSiLU),  # EDM2's mp_silu after each forced-WN layer
        "nap": lambda m: isinstance(m, ProjectedMixin) and m.mode == "initial",
        "hyperspherical": lambda m: isinstance(m, ProjectedMixin) and m.mode == "sphere",
    }
    if norm == "none":  # nothing but plain layers
        return sum(
            isinstance(m, WNLinear | ProjectedMixin | nn.LayerNorm | nn.GroupNorm)
            or bool(batch_stat_modules(m))
            or parametrize.is_parametrized(m)
            for m in module.modules()
        )
    return sum(kinds[norm](m) for m in module.modules())


def is_plain_linear(module: nn.Module) -> bool:
    return type(module) is nn.Linear and not parametrize.is_parametrized(module)


def networks(policy: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module]]:
    """(actor hidden stacks, critic hidden stacks, output layers) of a policy, by class."""
    if isinstance(policy, NormActorCriticPolicy | NormRecurrentActorCriticPolicy):
        return (
            [policy.mlp_extractor.policy_net],
            [policy.mlp_extractor.value_net],
            [policy.action_net, policy.value_net],
        )
    if isinstance(policy, NormDQNPolicy):
        nets = [policy.q_net.q_net, policy.q_net_target.q_net]
        return [], [n[:-1] for n in nets], [n[-1] for n in nets]
    critics = [policy.critic.qf0, policy.critic.qf1]
    if getattr(policy, "critic_target", None) is not None:
        critics += [policy.critic_target.qf0, policy.critic_target.qf1]
    if isinstance(policy, NormTD3Policy):
        actors = [policy.actor.mu[:-2], policy.actor_target.mu[:-2]]
        outputs = [policy.actor.mu[-2], policy.actor_target.mu[-2]]
    else:
        actors, outputs = [policy.actor.latent_pi], [policy.actor.mu, policy.actor.log_std]
    return actors, [c[:-1] for c in critics], outputs + [c[-1] for c in critics]


def build(policy_cls: type, norm: str, **kwargs):
    if policy_cls is NormActorCriticPolicy:
        return policy_cls(BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, norm=norm, **kwargs)
    if policy_cls is NormDQNPolicy:
        return policy_cls(BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, norm=norm, **kwargs)
    return policy_cls(BOX_OBS, BOX_ACT, lr, net_arch=HIDDEN, norm=norm, **kwargs)


POLICIES = [NormActorCriticPolicy, NormDQNPolicy, NormSACPolicy, NormTD3Policy, NormCrossQPolicy]


@pytest.mark.parametrize("policy_cls", POLICIES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("norm", NORMS)
def test_norm_layers_sit_in_hidden_layers_only(policy_cls, norm):
    policy = build(policy_cls, norm)
    actors, critics, outputs = networks(policy)
    expected = 0 if norm == "none" else len(HIDDEN)
    for net in actors + critics:
        assert norm_markers(net, norm) == expected, net
    for out in outputs:
        assert is_plain_linear(out), out


@pytest.mark.parametrize(
    "policy_cls",
    [NormActorCriticPolicy, NormSACPolicy, NormTD3Policy, NormCrossQPolicy],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("norm", ["batch", "weight", "layer"])
def test_actor_and_critic_switches(policy_cls, norm):
    actor_only = build(policy_cls, norm, norm_critic=False)
    actors, critics, _ = networks(actor_only)
    assert all(norm_markers(n, norm) == len(HIDDEN) for n in actors)
    assert all(norm_markers(n, "none") == 0 for n in critics)
    critic_only = build(policy_cls, norm, norm_actor=False)
    actors, critics, _ = networks(critic_only)
    assert all(norm_markers(n, "none") == 0 for n in actors)
    assert all(norm_markers(n, norm) == len(HIDDEN) for n in critics)


def test_dqn_q_network_follows_the_critic_switch():
    assert norm_markers(build(NormDQNPolicy, "batch", norm_critic=False).q_net, "none") == 0
    assert norm_markers(build(NormDQNPolicy, "batch", norm_actor=False).q_net, "batch") == len(HIDDEN)


def test_crossq_defaults_to_sb3_contribs_network_and_drives_every_batch_stat_layer():
    from sb3_contrib.crossq.policies import CrossQPolicy

    ours = NormCrossQPolicy(BOX_OBS, BOX_ACT, lr, net_arch=HIDDEN)
    stock = CrossQPolicy(BOX_OBS, BOX_ACT, lr, net_arch=HIDDEN)

    def layout(net):
        return [(type(m).__name__, getattr(m, "num_features", getattr(m, "in_features", None)))
                for m in net.modules() if not isinstance(m, nn.Sequential) and not list(m.children())]  # fmt: skip

    # module for module: BatchRenorm on the input and before every linear layer, the output layer included
    assert layout(ours.critic.qf0) == layout(stock.critic.qf0)
    assert layout(ours.actor.latent_pi) == layout(stock.actor.latent_pi)
    assert norm_markers(ours.critic, "batch_renorm") == 2 * (len(HIDDEN) + 1)
    policy = build(NormCrossQPolicy, "batch")
    bns = batch_stat_modules(policy.critic)
    policy.critic.set_bn_training_mode(True)
    assert bns and all(m.training for m in bns)
    policy.critic.set_bn_training_mode(False)
    assert not any(m.training for m in bns)


@pytest.mark.parametrize("norm", ["batch_renorm", "weight_meanonly", "group"])
def test_recurrent_policy_refuses_norms_without_a_recurrent_form(norm):
    with pytest.raises(NormError, match="recurrent"):
        NormRecurrentActorCriticPolicy(BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, lstm_hidden_size=16, norm=norm)


@pytest.mark.parametrize("norm", ["weight", "layer", "spectral", "none", "batch"])
def test_recurrent_policy_puts_the_norm_in_its_lstms(norm):
    policy = NormRecurrentActorCriticPolicy(
        BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, lstm_hidden_size=16, norm=norm
    )
    for lstm in (policy.lstm_actor, policy.lstm_critic):
        if norm == "layer":
            assert isinstance(lstm, LayerNormLSTM)
        elif norm == "batch":  # recurrent BN, statistics shared over time (RecurrentPPO steps one at a time)
            assert isinstance(lstm, BatchNormLSTM)
            assert {m.t_max for m in lstm.modules() if isinstance(m, SequenceBatchNorm)} == {1}
        else:
            assert isinstance(lstm, nn.LSTM)
            assert isinstance(lstm, WNLSTM) == (norm == "weight")
            assert parametrize.is_parametrized(lstm) == (norm == "spectral")
    # the optimizer was rebuilt: it holds exactly the policy's parameters
    optimized = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in policy.parameters()}
    unnormalized_critic = NormRecurrentActorCriticPolicy(
        BOX_OBS, DISCRETE, lr, lstm_hidden_size=16, norm="weight", norm_critic=False
    )
    assert isinstance(unnormalized_critic.lstm_actor, WNLSTM)
    assert not isinstance(unnormalized_critic.lstm_critic, WNLSTM)


def test_bn_mode_running_makes_update_network_equal_rollout_network():
    """With stock SB3 the PPO ratio is not 1 before any update (batch vs running stats); with "running" it is."""
    obs = torch.randn(64, 4) * 3 + 1
    actions = torch.randint(0, 3, (64,))
    gaps = {}
    for mode in ("sb3", "running"):
        policy = build(NormActorCriticPolicy, "batch", bn_mode=mode)
        policy.set_training_mode(False)  # as during rollouts
        with torch.no_grad():
            _, old_log_prob, _ = policy.evaluate_actions(obs, actions)
            policy.set_training_mode(True)  # as in train()
            _, new_log_prob, _ = policy.evaluate_actions(obs, actions)
        gaps[mode] = (new_log_prob - old_log_prob).abs().max().item()
    assert gaps["running"] == 0.0
    assert gaps["sb3"] > 1e-3


def test_bad_bn_mode_is_refused():
    with pytest.raises(ValueError, match="bn_mode"):
        build(NormActorCriticPolicy, "batch", bn_mode="train")


def test_wn_lstm_weights_are_formed_once_per_sequence_pass_with_the_same_outputs():
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    policy = NormRecurrentActorCriticPolicy(
        BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, lstm_hidden_size=16, norm="weight"
    )
    lstm = policy.lstm_actor
    calls = []
    form = lstm._flat  # forms every effective weight of the LSTM
    lstm._flat = lambda: (calls.append(1), form())[1]
    steps, n_seq = 12, 3
    x = torch.randn(n_seq * steps, 4)
    starts = torch.zeros(n_seq * steps)
    starts[5] = 1.0  # an episode start mid-sequence: sb3-contrib steps the LSTM one time step at a time
    h = torch.zeros(1, n_seq, 16)
    out, _ = policy._process_sequence(x, (h, h), starts, lstm)
    assert len(calls) == 1  # once for the whole pass
    calls.clear()
    reference, _ = RecurrentActorCriticPolicy._process_sequence(x, (h, h), starts, lstm)
    assert len(calls) >= steps  # the stock pass forms the weights at every step (or more often)
    assert torch.equal(out, reference)


def test_recurrent_ddi_initializes_lstm_inputs_then_heads_on_carried_state_sequences():
    """The heads see what they see in training: LSTM outputs over sequences, hidden state carried."""
    policy = NormRecurrentActorCriticPolicy(
        BOX_OBS, DISCRETE, lr, net_arch=HIDDEN, lstm_hidden_size=16, norm="weight_ddi"
    )
    rng = np.random.default_rng(0)
    steps, envs = 24, 4
    obs = (rng.normal(0.0, 0.05, size=(steps * envs, 4)) + 0.5).astype(np.float32)  # row t * envs + n
    actions = rng.integers(0, 3, size=steps * envs)
    starts = np.zeros((steps, envs), dtype=np.float32)
    starts[0], starts[11, 1] = 1.0, 1.0
    assert initialize_policy(policy, obs, actions, starts) == 4 + 2  # 2 x 2 head layers, 2 LSTMs
    x = torch.as_tensor(obs).reshape(steps, envs, 4)
    lstm_in = x.reshape(-1, 4) @ policy.lstm_actor.weight_ih_l0.T + policy.lstm_actor.bias_ih_l0
    assert (lstm_in.std(0, unbiased=False) - 1).abs().max() < 1e-3
    zeros = torch.zeros(1, envs, 16)
    with torch.no_grad():  # sb3-contrib's own sequence processing, rows sequence by sequence
        latent, _ = policy._process_sequence(
            x.transpose(0, 1).reshape(-1, 4), (zeros, zeros),
            torch.as_tensor(starts).T.reshape(-1), policy.lstm_actor,
        )  # fmt: skip
        pre = policy.mlp_extractor.policy_net[0](latent)
    assert pre.mean(0).abs().max() < 1e-3
    assert (pre.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_ddi_standardizes_first_layer_on_real_data_and_copies_targets():
    policy = build(NormSACPolicy, "weight_ddi")
    obs = np.random.default_rng(0).normal(2.0, 3.0, size=(256, 4)).astype(np.float32)
    actions = np.random.default_rng(1).uniform(-2, 2, size=(256, 2)).astype(np.float32)
    assert initialize_policy(policy, obs, actions) == 3 * len(HIDDEN)  # actor + two critics
    first = policy.actor.latent_pi[0]
    with torch.no_grad():
        pre = first(torch.as_tensor(obs))
    assert pre.mean(0).abs().max() < 1e-3
    assert (pre.std(0, unbiased=False) - 1).abs().max() < 1e-3
    for (name, p), (_, q) in zip(
        policy.critic.state_dict().items(), policy.critic_target.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), name
    assert initialize_policy(build(NormSACPolicy, "weight"), obs, actions) == 0


def test_minatar_cnn_takes_channels_last_grids_with_the_norm():
    obs_space = spaces.Box(0, 1, (10, 10, 4), bool)
    cnn = MinAtarCNN(obs_space, features_dim=64, norm="weight")
    assert isinstance(cnn.cnn[0], WNConv2d)
    out = cnn(torch.zeros(5, 10, 10, 4, dtype=torch.bool))
    assert out.shape == (5, 64)
    policy = NormDQNPolicy(obs_space, DISCRETE, lr, norm="layer", features_extractor_class=MinAtarCNN)
    assert any(isinstance(m, nn.GroupNorm) for m in policy.q_net.features_extractor.modules())  # LN for convs
    plain = NormDQNPolicy(
        obs_space, DISCRETE, lr, norm="layer", norm_critic=False, features_extractor_class=MinAtarCNN
    )
    assert not any(isinstance(m, nn.GroupNorm | nn.LayerNorm) for m in plain.q_net.modules())


def test_orthogonal_init_reaches_weight_normalized_layers():
    policy = build(NormActorCriticPolicy, "weight")
    layer = policy.mlp_extractor.policy_net[0]
    w = layer.effective_weight().detach()
    # SB3's gain sqrt(2) orthogonal rows: W W^T = 2 I (rows < cols is false here: 32x4 -> columns orthogonal)
    gram = w.T @ w
    assert torch.allclose(gram, 2 * torch.eye(gram.shape[0]), atol=1e-4)


def test_policies_work_through_sb3_policy_kwargs_on_a_real_env():
    from stable_baselines3 import PPO

    model = PPO(NormActorCriticPolicy, gym.make("CartPole-v1"), n_steps=64, batch_size=32, n_epochs=1,
                policy_kwargs=dict(norm={"name": "weight", "ddi": True}, net_arch=HIDDEN), seed=0)  # fmt: skip
    model.learn(128)
    assert model.policy.norm.label == "weight_ddi"
    assert norm_markers(model.policy.mlp_extractor, "weight_ddi") == 2 * len(HIDDEN)
    _ = make_norm  # the factory is the only source of norms


def test_target_critic_receives_batch_renorm_statistics():
    """SB3 copies only ``running_*`` buffers to target networks; NormCallback adds batch renorm's ``ra_*``."""
    from stable_baselines3 import SAC

    from wnbench.rl.policies import NormCallback

    def target_gap(callback):
        model = SAC(NormSACPolicy, "Pendulum-v1", learning_starts=50, batch_size=16, seed=0,
                    policy_kwargs=dict(norm="batch_renorm", net_arch=[16, 16]))  # fmt: skip
        model.learn(80, callback=callback)
        online = batch_stat_modules(model.critic)[0].ra_mean
        target = batch_stat_modules(model.critic_target)[0].ra_mean
        assert online.abs().sum() > 0  # the online statistics did move
        return (online - target).abs().max().item()

    assert target_gap(None) > 0  # stock SB3: the target keeps its initial statistics
    assert target_gap(NormCallback()) == 0.0


def test_running_mode_statistics_move_only_through_the_refresh():
    """In bn_mode="running" updates never touch the statistics; NormCallback refreshes them per rollout."""
    from stable_baselines3 import PPO

    from wnbench.rl.policies import NormCallback

    def running_mean_after(callback):
        model = PPO(NormActorCriticPolicy, "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, seed=0,
                    policy_kwargs=dict(norm="batch", bn_mode="running", net_arch=[16]))  # fmt: skip
        model.learn(64, callback=callback)
        return batch_stat_modules(model.policy)[0].running_mean.abs().sum().item()

    assert running_mean_after(None) == 0.0
    assert running_mean_after(NormCallback()) > 0.0


def test_running_mode_refresh_feeds_a_recurrent_policy_its_rollout_as_sequences():
    """The refresh passes RecurrentPPO's rollout with the hidden state carried: the hidden-to-hidden BN then sees
    non-zero inputs (a one-step, zero-state pass would give it W_hh 0 = 0 only, leaving its running mean at 0)."""
    from sb3_contrib import RecurrentPPO

    from wnbench.rl.policies import refresh_batch_stats

    model = RecurrentPPO(NormRecurrentActorCriticPolicy, "CartPole-v1", n_steps=16, batch_size=32, n_epochs=1,
                         seed=0, policy_kwargs=dict(norm="batch", bn_mode="running", net_arch=[16],
                                                    lstm_hidden_size=8))  # fmt: skip
    model.learn(32)  # no callback: in running mode the updates leave the statistics alone
    recurrent = [m for m in model.policy.lstm_actor.modules() if isinstance(m, BatchNormLSTM)][0].cells[0]
    assert recurrent.norm_hh.running_mean.abs().sum().item() == 0.0
    assert refresh_batch_stats(model)
    assert recurrent.norm_hh.running_mean.abs().sum().item() > 0.0
    assert recurrent.norm_ih.running_mean.abs().sum().item() > 0.0


def _target_sigmas_seen_in_forward(model, target_name: str) -> list[float]:
    """sigma of every SN layer's effective weight, as used in the target's last forward pass."""
    seen: dict[int, float] = {}
    layers = spectral_norm_modules(getattr(model.policy, target_name))
    assert layers

    def hook(module, _inputs, _output):
        with torch.no_grad():
            seen[id(module)] = torch.linalg.matrix_norm(module.weight, 2).item()

    for layer in layers:
        layer.register_forward_hook(hook)
    return layers, seen


@pytest.mark.parametrize(
    ("algo", "env", "target", "kwargs"),
    [
        ("sac", "Pendulum-v1", "critic_target", dict(learning_starts=50, batch_size=32)),
        ("td3", "Pendulum-v1", "actor_target", dict(learning_starts=50, batch_size=32)),
        ("dqn", "CartPole-v1", "q_net_target", dict(learning_starts=50, batch_size=32, train_freq=1,
                                                     target_update_interval=20, learning_rate=3e-3)),
    ],
)  # fmt: skip
def test_spectral_norm_holds_in_target_networks_after_training(algo, env, target, kwargs):
    from stable_baselines3 import DQN, SAC, TD3

    from wnbench.rl.policies import NormCallback

    algo_cls = {"sac": SAC, "td3": TD3, "dqn": DQN}[algo]
    model = algo_cls(policy_class_for(algo), env, seed=0, policy_kwargs=dict(norm="spectral", net_arch=[16, 16]),
                     **kwargs)  # fmt: skip
    layers, seen = _target_sigmas_seen_in_forward(model, target)
    initial = [layer.parametrizations.weight.original.detach().clone() for layer in layers]
    model.learn(200, callback=NormCallback())
    assert len(seen) == len(layers)
    assert all(abs(sigma - 1) < 0.02 for sigma in seen.values()), seen
    # the target's weights really moved (polyak or hard copies), so the check is not of the initial weights
    moved = [
        (layer.parametrizations.weight.original - w0).abs().max().item()
        for layer, w0 in zip(layers, initial, strict=True)
    ]
    assert min(moved) > 1e-3, moved
