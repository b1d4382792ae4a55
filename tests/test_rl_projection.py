"""Projected kinds in SB3: every projected layer, online and target, holds its norm after every optimizer step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from wnbench.norms import Norm, projected_modules
from wnbench.rl.policies import NormCallback, policy_class_for
from wnbench.rl.projection import _ATTACHED, policy_optimizers

TOL = 1e-5


class UnitRowLinear(nn.Linear):
    """Test-only projected layer: a Linear whose rows are put back on the unit sphere after every step."""

    projects_weights = True

    @torch.no_grad()
    def project_(self) -> None:
        self.weight.div_(self.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))


class UnitRows(Norm):
    """Test-only kind (not registered): hidden layers are :class:`UnitRowLinear`."""

    name = "test_unit_rows"

    def __init__(self) -> None:
        pass

    def _linear(self, in_features, out_features, bias):
        layer = UnitRowLinear(in_features, out_features, bias=bias)
        layer.project_()
        return layer


class ProjectedTrunk(BaseFeaturesExtractor):
    """A one-layer features extractor built by the norm it is given (RecurrentPPO's LSTM refuses these kinds)."""

    accepts_norm = True

    def __init__(self, observation_space, features_dim: int = 8, norm: Norm | None = None) -> None:
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(norm.linear(observation_space.shape[0], features_dim), nn.Tanh())

    def forward(self, observations):
        return self.net(observations)


def off_the_set(layer: nn.Module) -> float:
    """How far ``layer``'s weight is from its norm set: the largest change a projection makes to it."""
    before = layer.weight.detach().clone()
    layer.project_()
    moved = (layer.weight.detach() - before).abs().max().item()
    layer.weight.data.copy_(before)
    return moved


def unit_row_gap(layer: nn.Module) -> float:
    return (layer.weight.detach().norm(dim=1) - 1).abs().max().item()


OFF_POLICY = dict(learning_starts=50, batch_size=16, train_freq=1, gradient_steps=1)
CASES = {
    "ppo": ("CartPole-v1", dict(n_steps=64, batch_size=32, n_epochs=2), {}),
    "a2c": ("CartPole-v1", dict(n_steps=8), {}),
    "dqn": ("CartPole-v1", dict(OFF_POLICY, target_update_interval=20), {}),
    "sac": ("Pendulum-v1", dict(OFF_POLICY), {}),
    "td3": ("Pendulum-v1", dict(OFF_POLICY, policy_delay=2), {}),
    "crossq": ("Pendulum-v1", dict(OFF_POLICY), {}),
    "recurrentppo": (
        "CartPole-v1",
        dict(n_steps=32, batch_size=64, n_epochs=1),
        dict(norm="none", lstm_hidden_size=8, features_extractor_class=ProjectedTrunk,
             features_extractor_kwargs=dict(norm=UnitRows())),
    ),
}  # fmt: skip
TARGETS = {"dqn": ["q_net_target"], "sac": ["critic_target"], "td3": ["critic_target", "actor_target"]}


def make_model(algo: str, norm: Norm | str, optimizer: type[torch.optim.Optimizer], seed: int = 0):
    from wnbench.rl.hyperparams import algorithm_class

    env, algo_kwargs, policy_kwargs = CASES[algo]
    policy_kwargs = {"norm": norm, "net_arch": [16, 16], "optimizer_class": optimizer, **policy_kwargs}
    rate = 3e-3
    if optimizer is torch.optim.SGD:  # momentum SGD at Adam's rate diverges in CrossQ (no target network)
        policy_kwargs["optimizer_kwargs"], rate = dict(momentum=0.9), 1e-3
    return algorithm_class(algo)(policy_class_for(algo), env, seed=seed, learning_rate=rate,
                                 policy_kwargs=policy_kwargs, **algo_kwargs)  # fmt: skip


def record_target_forwards(model, algo: str) -> dict[int, float]:
    """Largest distance from the unit sphere of any target layer's weight, as used in each forward."""
    seen: dict[int, float] = {}
    for name in TARGETS.get(algo, []):
        for layer in projected_modules(getattr(model.policy, name)):

            def hook(module, _inputs, _output):
                seen[id(module)] = max(seen.get(id(module), 0.0), unit_row_gap(module))

            layer.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.SGD], ids=["adam", "sgd"])
@pytest.mark.parametrize("algo", list(CASES))
def test_every_projected_layer_holds_its_norm_online_and_in_targets(algo, optimizer):
    model = make_model(algo, UnitRows(), optimizer)
    layers = projected_modules(model.policy)
    assert layers
    initial = [layer.weight.detach().clone() for layer in layers]
    seen = record_target_forwards(model, algo)
    model.learn(160, callback=NormCallback())
    assert max(unit_row_gap(layer) for layer in layers) < TOL
    # the optimizers really moved every layer (targets through polyak or hard copies), so the check is not of init
    moved = [
        (layer.weight.detach() - w0).abs().max().item() for layer, w0 in zip(layers, initial, strict=True)
    ]
    assert min(moved) > 1e-3, moved
    if algo in TARGETS:  # targets are used on the sphere in every forward, after polyak or a hard copy
        assert len(seen) == sum(len(projected_modules(getattr(model.policy, t))) for t in TARGETS[algo])
        assert max(seen.values()) < TOL, seen


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_without_the_projection_hooks_weights_and_targets_leave_the_sphere(algo):
    """The control: the same training with the hooks removed drifts far off the set, online and in targets."""
    model = make_model(algo, UnitRows(), torch.optim.Adam)
    for handle in _ATTACHED.pop(model.policy):
        handle.remove()
    seen = record_target_forwards(model, algo)
    model.learn(160)  # no NormCallback either
    assert max(unit_row_gap(layer) for layer in projected_modules(model.policy)) > 1e-2
    assert max(seen.values()) > 1e-3


def test_optimizers_are_found_on_the_policy_and_its_networks():
    sac = make_model("sac", UnitRows(), torch.optim.Adam)
    assert {id(o) for o in policy_optimizers(sac.policy)} == {
        id(sac.actor.optimizer),
        id(sac.critic.optimizer),
    }
    ppo = make_model("ppo", UnitRows(), torch.optim.Adam)
    assert [id(o) for o in policy_optimizers(ppo.policy)] == [id(ppo.policy.optimizer)]


def test_attaching_again_replaces_the_hooks_instead_of_adding_some():
    model = make_model("sac", UnitRows(), torch.optim.Adam)
    before = {id(o): len(o._optimizer_step_post_hooks) for o in policy_optimizers(model.policy)}
    model.learn(60, callback=NormCallback())
    model.learn(60, callback=NormCallback(), reset_num_timesteps=False)
    after = {id(o): len(o._optimizer_step_post_hooks) for o in policy_optimizers(model.policy)}
    assert after == before == {k: 1 for k in before}
    target_layer = projected_modules(model.policy.critic_target)[0]
    assert len(target_layer._forward_pre_hooks) == 1


@pytest.mark.parametrize("norm", ["forced_weight", "nap", "hyperspherical"])
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_registered_projected_kinds_hold_their_norm_and_survive_save_and_load(tmp_path, algo, norm):
    """The norms' own kinds: on their sets after training (online and target), and a saved model, loaded, gives
    identical actions and values."""
    from wnbench.rl.hyperparams import algorithm_class

    model = make_model(algo, norm, torch.optim.Adam)
    model.learn(160, callback=NormCallback())
    layers = projected_modules(model.policy)
    assert layers and max(off_the_set(layer) for layer in layers) < TOL
    for layer in layers:  # the kinds' promised norms, per row or of the whole tensor
        norms = layer.weight.detach().norm() if layer.mode == "initial" else layer.row_norms()
        assert torch.allclose(norms, torch.full_like(norms, layer.promised_norm()), rtol=TOL, atol=0)
    model.save(tmp_path / "model.zip")
    loaded = algorithm_class(algo).load(tmp_path / "model.zip")
    obs = np.stack([model.observation_space.sample() for _ in range(32)])
    assert np.array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    obs_t = torch.as_tensor(obs)
    with torch.no_grad():
        if algo == "ppo":
            same = torch.equal(model.policy.predict_values(obs_t), loaded.policy.predict_values(obs_t))
        else:
            actions = model.policy.actor(obs_t, deterministic=True)
            same = all(
                torch.equal(a, b)
                for net in ("critic", "critic_target")
                for a, b in zip(
                    getattr(model.policy, net)(obs_t, actions),
                    getattr(loaded.policy, net)(obs_t, actions),
                    strict=True,
                )  # fmt: skip
            )
    assert same
    assert len(projected_modules(loaded.policy)) == len(layers)
    assert sum(len(o._optimizer_step_post_hooks) for o in policy_optimizers(loaded.policy)) >= 1
