"""The ``init_gain`` norm option (careless init, registry v3 C6): its math, where it is applied, its refusals."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from wnbench.norms import NormError, WNLinear, make_norm
from wnbench.norms.init_gain import apply_init_gain

GAINS = [10.0, 0.1]


def _net(spec: str, gain: float, seed: int = 0, **options) -> nn.Sequential:
    torch.manual_seed(seed)
    return make_norm(spec, **options, **({"init_gain": gain} if gain != 1 else {})).mlp(6, [16, 16], 3)


def _hidden_weights(net: nn.Module) -> list[torch.Tensor]:
    """Effective weights of the hidden layers (WN: g v/||v||; else the Linear's weight), in order."""
    out = []
    for m in net.modules():
        if isinstance(m, WNLinear):
            out.append(m.effective_weight().detach().clone())
        elif isinstance(m, nn.Linear) and m.out_features == 16:
            out.append(m.weight.detach().clone())
    return out


def _output_layer(net: nn.Sequential) -> nn.Linear:
    return net[-1]


@pytest.mark.parametrize("gain", GAINS)
def test_wn_without_ddi_scales_the_effective_weight_by_the_gain(gain):
    plain, careless = _net("weight", 1), _net("weight", gain)
    assert apply_init_gain(careless) == 2 and apply_init_gain(careless) == 0  # once per layer
    for w1, wg in zip(_hidden_weights(plain), _hidden_weights(careless), strict=True):
        torch.testing.assert_close(wg, gain * w1)
    torch.testing.assert_close(_output_layer(careless).weight, _output_layer(plain).weight)  # not the head


@pytest.mark.parametrize("gain", GAINS)
def test_wn_with_ddi_keeps_the_output_on_the_init_batch_while_v_scales(gain):
    x = torch.randn(256, 6, generator=torch.Generator().manual_seed(1))
    plain, careless = _net("weight_ddi", 1), _net("weight_ddi", gain)
    make_norm("weight_ddi").initialize(plain, x)
    make_norm("weight_ddi", init_gain=gain).initialize(
        careless, x
    )  # the gain comes first, then DDI sets g, b
    torch.testing.assert_close(careless(x), plain(x), rtol=1e-4, atol=1e-5)
    layers = [
        (a, b) for a, b in zip(plain.modules(), careless.modules(), strict=True) if isinstance(a, WNLinear)
    ]
    assert len(layers) == 2
    for a, b in layers:
        torch.testing.assert_close(b.v.norm(dim=1), gain * a.v.norm(dim=1))
        torch.testing.assert_close(b.g, a.g, rtol=1e-4, atol=1e-6)  # set from data: the gain left no trace


@pytest.mark.parametrize("gain", GAINS)
@pytest.mark.parametrize("options", [{}, {"bn_mode": "running"}])
def test_bn_output_in_train_mode_is_unchanged_while_the_layer_weight_scales(gain, options):
    x = torch.randn(256, 6, generator=torch.Generator().manual_seed(2))
    # eps 1e-10: BN removes the scale exactly up to its eps (at the default 1e-5 and gain 0.1 the first layer's
    # pre-activation variance, ~3e-3, is within 0.2% of eps' reach: outputs then differ by up to ~1%)
    plain, careless = _net("batch", 1, eps=1e-10, **options), _net("batch", gain, eps=1e-10, **options)
    apply_init_gain(careless)
    plain.train(), careless.train()
    torch.testing.assert_close(careless(x), plain(x), rtol=1e-4, atol=1e-5)
    for w1, wg in zip(_hidden_weights(plain), _hidden_weights(careless), strict=True):
        torch.testing.assert_close(wg, gain * w1)  # what moves is the effective learning rate
    bn = [m for m in careless.modules() if isinstance(m, nn.BatchNorm1d)]
    assert bn and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in bn)  # gamma is not a weight


def test_gain_one_and_no_option_are_the_same_norm_label_and_layers():
    assert make_norm("weight", init_gain=1).label == "weight"
    assert make_norm("weight_ddi", init_gain=10).label == "weight_ddi[init_gain=10]"
    assert (
        make_norm("batch", bn_mode="running", init_gain=0.1).label == "batch[bn_mode=running,init_gain=0.1]"
    )
    assert make_norm("none", init_gain=10).label == "none[init_gain=10]"
    assert apply_init_gain(_net("none", 1)) == 0
    assert apply_init_gain(_net("none", 10)) == 2


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10", True, None])
def test_bad_gain_is_a_norm_error_naming_the_option(bad):
    with pytest.raises(NormError, match="'init_gain' must be a finite number > 0"):
        make_norm("weight", init_gain=bad)


def test_recurrent_layers_refuse_a_gain():
    with pytest.raises(NormError, match="init_gain"):
        make_norm("weight", init_gain=10).lstm(4, 8)


# -- where it is applied: an SB3 policy after SB3's own init, a generative model before DDI --------------------------
def _ppo(norm) -> object:
    from stable_baselines3 import PPO

    from wnbench.rl.policies import NormActorCriticPolicy

    torch.manual_seed(0)
    return PPO(NormActorCriticPolicy, "CartPole-v1", policy_kwargs={"norm": norm, "net_arch": [16, 16]},
               seed=0, n_steps=64, batch_size=64, device="cpu")  # fmt: skip


@pytest.mark.parametrize("gain", GAINS)
def test_sb3_policy_gets_the_gain_after_its_orthogonal_init(gain):
    plain = _ppo({"name": "weight"}).policy
    careless = _ppo({"name": "weight", "init_gain": gain}).policy
    w1, wg = _hidden_weights(plain.mlp_extractor), _hidden_weights(careless.mlp_extractor)
    assert len(w1) == 4
    for a, b in zip(w1, wg, strict=True):
        torch.testing.assert_close(b, gain * a)
    # SB3's orthogonal init (gain sqrt 2 for the extractor) ran first: the careless layers' singular values are
    # gain * sqrt(2), which scaling before that init would have erased
    for w in wg[1:2]:
        s = torch.linalg.svdvals(w)
        torch.testing.assert_close(s, torch.full_like(s, gain * np.sqrt(2)), rtol=1e-4, atol=1e-5)
    for head in ("action_net", "value_net"):  # output heads keep their init
        torch.testing.assert_close(getattr(careless, head).weight, getattr(plain, head).weight)


def test_sb3_policy_with_ddi_gets_the_gain_before_the_data_init():
    from wnbench.rl.policies import initialize_policy

    obs = np.random.default_rng(0).normal(size=(128, 4)).astype(np.float32)
    acts = np.random.default_rng(1).integers(0, 2, size=128)
    plain = _ppo("weight_ddi").policy
    careless = _ppo({"name": "weight_ddi", "init_gain": 10}).policy
    initialize_policy(plain, obs, acts), initialize_policy(careless, obs, acts)
    x = torch.as_tensor(obs)
    with torch.no_grad():
        torch.testing.assert_close(careless.mlp_extractor.forward_actor(x), plain.mlp_extractor.forward_actor(x),
                                   rtol=1e-4, atol=1e-5)  # fmt: skip
    v1 = [m.v.norm() for m in plain.modules() if isinstance(m, WNLinear)]
    vg = [m.v.norm() for m in careless.modules() if isinstance(m, WNLinear)]
    torch.testing.assert_close(torch.stack(vg), 10 * torch.stack(v1))


def test_dqn_target_network_is_scaled_alike():
    from stable_baselines3 import DQN

    from wnbench.rl.policies import NormDQNPolicy

    model = DQN(NormDQNPolicy, "CartPole-v1", policy_kwargs={"norm": {"name": "none", "init_gain": 10}},
                learning_starts=10, buffer_size=100, seed=0, device="cpu")  # fmt: skip
    online, target = model.policy.q_net.state_dict(), model.policy.q_net_target.state_dict()
    assert all(torch.equal(online[k], target[k]) for k in online)


@pytest.mark.parametrize("gain", GAINS)
def test_gen_model_gets_the_gain_in_its_initialize_path(gain):
    from wnbench.gen.vae import VAE

    def vae(norm):
        torch.manual_seed(0)
        return VAE(
            (2,), encoder_norm=norm, decoder_norm=norm, latent_dim=2, likelihood="gaussian", hidden=(16, 16)
        )

    plain, careless = vae(make_norm("weight")), vae(make_norm("weight", init_gain=gain))
    x = torch.randn(64, 2)
    plain.data_dependent_init(x), careless.data_dependent_init(x)  # run on the first training batch
    for net in ("encoder", "decoder"):
        for a, b in zip(
            _hidden_weights(getattr(plain, net)), _hidden_weights(getattr(careless, net)), strict=True
        ):
            torch.testing.assert_close(b, gain * a)
        torch.testing.assert_close(getattr(careless, net)[-1].weight, getattr(plain, net)[-1].weight)


def test_bad_gain_in_a_suite_exits_2_naming_the_field(tmp_path, monkeypatch, capsys):
    from wnbench import cli

    suite = tmp_path / "bad.yaml"
    suite.write_text(
        "name: bad-gain\nclaims: [C6]\nprofiles:\n  p:\n    kind: gen\n    seeds: 1\n    budget: {steps: 2}\n"
        "    grids:\n      - {tasks: [moons], algos: [vae], norms: [none, {name: weight, init_gain: -1}]}\n"
    )
    monkeypatch.setattr(sys, "argv", ["wnbench", "run", str(suite), "--dry-run"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "norms[1]" in err and "'init_gain' must be a finite number > 0" in err


def test_wnbench_norms_lists_the_option_with_an_example(monkeypatch, capsys):
    from conftest import run_cli

    code, out, _ = run_cli(monkeypatch, capsys, "norms")
    assert (
        code in (0, None)
        and "init_gain" in " ".join(out.split())
        and "weight[init_gain=10]" in out.replace("\n", "")
    )
