"""Norm factory 3: the projection mechanism and the kinds built on it (forced_weight, nap, hyperspherical)."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn

from wnbench.norms import (
    MPSiLU,
    NormError,
    ProjectedLinear,
    SphereScaler,
    attach_projection,
    attached_projections,
    make_norm,
    mp_silu,
    norm_state_buffers,
    project_,
    projected_modules,
)

NEW_KINDS = ["forced_weight", "forced_weight_mp", "nap", "hyperspherical", "forced_weight+layer"]
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.05),
}


def _net(kind: str) -> nn.Sequential:
    norm = make_norm(kind)
    return nn.Sequential(
        norm.conv2d(3, 8, 3, 1, 1), norm.activation(nn.ReLU),
        norm.conv_transpose2d(8, 6, 4, 2, 1), norm.activation(nn.ReLU),
        nn.Flatten(), norm.linear(6 * 8 * 8, 16), norm.activation(nn.ReLU),
        norm.linear(16, 2, normalize=False),
    )  # fmt: skip


def _layer_norms(m) -> torch.Tensor:
    """Per-row norms (forced, sphere) or the one tensor norm (nap), as the kind promises them."""
    w = m.weight.detach()
    return w.norm().reshape(1) if m.mode == "initial" else m.row_norms(w).flatten()


def _train(net: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int = 0) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 3, 4, 4, generator=gen), torch.randn(16, 2, generator=gen)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (net(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_after_optimizer_steps_every_projected_layer_has_the_promised_norm(kind, opt_name):
    torch.manual_seed(0)
    net = _net(kind)
    layers = projected_modules(net)
    assert len(layers) == 3 and not isinstance(net[-1], ProjectedLinear)  # output layer stays plain
    promised = [m.promised_norm() for m in layers]
    opt = OPTIMIZERS[opt_name](net.parameters())
    attach_projection(opt, net)
    before = [m.weight.detach().clone() for m in layers]
    losses = _train(net, opt, 12)
    assert losses[-1] < losses[0]
    for m, p, w0 in zip(layers, promised, before, strict=True):
        assert not torch.equal(m.weight.detach(), w0)  # the weights did move
        assert torch.allclose(_layer_norms(m), torch.full_like(_layer_norms(m), p), rtol=1e-5, atol=1e-5)
    expected = {"forced": [math.sqrt(3 * 9), math.sqrt(8 * 16), math.sqrt(384)], "sphere": [1.0] * 3}
    if layers[0].mode in expected:
        assert promised == pytest.approx(expected[layers[0].mode])


def test_without_the_hook_the_norms_drift_so_the_test_above_can_fail():
    torch.manual_seed(0)
    net = _net("hyperspherical")
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    _train(net, opt, 5)
    drift = max((_layer_norms(m) - 1).abs().max().item() for m in projected_modules(net))
    assert drift > 1e-3
    assert project_(net) == 3
    assert all(torch.allclose(_layer_norms(m), torch.ones(1), atol=1e-5) for m in projected_modules(net))


def test_attach_projection_is_idempotent_and_removable():
    net = _net("forced_weight")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls = []
    for m in projected_modules(net):
        original = m.project_
        m.project_ = lambda original=original: (calls.append(1), original())
    first = attach_projection(opt, net)
    assert attach_projection(opt, net) is first and attached_projections(opt) == 1
    _train(net, opt, 1)
    assert len(calls) == 3  # three layers, projected once each per step
    first.remove()
    assert attached_projections(opt) == 0
    _train(net, opt, 1)
    assert len(calls) == 3
    second = attach_projection(opt, net)
    assert second is not first and attached_projections(opt) == 1
    with pytest.raises(TypeError, match="torch optimizer"):
        attach_projection(object(), net)  # type: ignore[arg-type]


def test_projection_leaves_adams_moments_as_they_were():
    torch.manual_seed(0)
    net = _net("forced_weight")
    twin = copy.deepcopy(net)
    opt, opt_twin = torch.optim.Adam(net.parameters(), lr=0.05), torch.optim.Adam(twin.parameters(), lr=0.05)
    attach_projection(opt, net)
    _train(net, opt, 1)
    _train(twin, opt_twin, 1)  # same first gradient (the forward does not see the stored scale)
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(opt.state[p]["exp_avg"], opt_twin.state[q]["exp_avg"])
        assert torch.equal(opt.state[p]["exp_avg_sq"], opt_twin.state[q]["exp_avg_sq"])


@pytest.mark.parametrize("make", [lambda k: k.linear(5, 7), lambda k: k.conv2d(3, 4, 3, 1, 1)])
def test_forced_weight_output_does_not_change_when_the_stored_weight_is_rescaled(make):
    torch.manual_seed(0)
    layer = make(make_norm("forced_weight", learned_gain=True))
    x = torch.randn(4, 5) if isinstance(layer, ProjectedLinear) else torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        layer.gain.fill_(1.7)
        layer.bias.uniform_(-1, 1)
        out = layer(x)
        scale = torch.rand(layer.weight.shape[0], *[1] * (layer.weight.dim() - 1)) * 10 + 0.1
        layer.weight.mul_(scale)  # per-row and overall rescaling
        assert torch.allclose(layer(x), out, atol=1e-5)
        layer.weight.add_(0.3 * torch.randn_like(layer.weight))  # a change of direction does change it
        assert not torch.allclose(layer(x), out, atol=1e-3)


def test_forced_weight_is_magnitude_preserving_and_mp_silu_keeps_unit_rms():
    torch.manual_seed(0)
    layer = make_norm("forced_weight").linear(256, 256, bias=False)
    x = torch.randn(4096, 256)
    assert layer(x).pow(2).mean().sqrt().item() == pytest.approx(1.0, abs=0.05)
    assert mp_silu(torch.randn(200_000)).pow(2).mean().sqrt().item() == pytest.approx(1.0, abs=0.01)
    net = make_norm("forced_weight", mp=True).mlp(4, [8, 8], 1)
    assert sum(isinstance(m, MPSiLU) for m in net) == 2 and not any(isinstance(m, nn.ReLU) for m in net)
    assert sum(isinstance(m, nn.ReLU) for m in make_norm("forced_weight").mlp(4, [8, 8], 1)) == 2


@pytest.mark.parametrize("shape", [(6, 16), (3, 16, 5, 5)])
def test_hyperspherical_features_have_unit_norm_before_the_scaler(shape):
    torch.manual_seed(0)
    norm = make_norm("hyperspherical")
    block = norm.linear(9, 16) if len(shape) == 2 else norm.conv2d(4, 16, 3, 1, 1)
    x = torch.randn(shape[0], 9) if len(shape) == 2 else torch.randn(3, 4, 5, 5)
    assert isinstance(block.norm, SphereScaler) and block.layer.bias is not None  # SimbaV2's input shift
    with torch.no_grad():
        block.layer.bias.zero_()  # the sphere property holds for W x + b; checked here without it
    with torch.no_grad():
        block.norm.scaler.uniform_(0.2, 3.0)
        out = block(x)
    scale = (block.norm.scaler * block.norm.forward_scale).detach()
    unscaled = out / (scale if len(shape) == 2 else scale.view(1, -1, 1, 1))
    norms = torch.linalg.vector_norm(unscaled, dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    # the scaler starts at sqrt(features): unit-RMS features going into the nonlinearity
    fresh = norm.linear(9, 16)
    assert fresh(x if len(shape) == 2 else torch.randn(6, 9)).pow(2).mean().sqrt().item() == pytest.approx(
        1.0
    )


def test_nap_keeps_each_layers_weight_norm_at_its_initial_value():
    torch.manual_seed(0)
    net = _net("nap")
    layers = projected_modules(net)
    initial = [m.weight.detach().norm().item() for m in layers]
    assert all(isinstance(m.weight, nn.Parameter) and m.bias is not None for m in layers)
    assert [float(m.target_norm) for m in layers] == pytest.approx(initial, rel=1e-6)
    # LayerNorm before each nonlinearity: GroupNorm(1, C) = LN over (C, H, W) for convs, LayerNorm for linears
    assert [type(b.norm) for b in (net[0], net[2], net[5])] == [nn.GroupNorm, nn.GroupNorm, nn.LayerNorm]
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    attach_projection(opt, net)
    for _ in range(3):
        _train(net, opt, 4)
        now = [m.weight.detach().norm().item() for m in layers]
        assert now == pytest.approx(initial, rel=1e-5)
    # different layers keep different norms (one per layer, not one for all)
    assert len({round(v, 4) for v in initial}) == 3


def test_nap_target_norm_follows_the_network_into_a_target_copy():
    net = make_norm("nap").mlp(4, [8], 1)
    target = make_norm("nap").mlp(4, [8], 1)
    sources, dests = norm_state_buffers(net), norm_state_buffers(target)
    assert any(b is net[0].layer.target_norm for b in sources)
    with torch.no_grad():
        for s, d in zip(sources, dests, strict=True):
            d.copy_(s)
        target.load_state_dict(net.state_dict())
    assert float(target[0].layer.target_norm) == float(net[0].layer.target_norm)


@pytest.mark.parametrize(
    ("spec", "part"),
    [("nap+batch", "nap"), ("hyperspherical+layer", "hyperspherical"), ("weight+nap", "nap"),
     ("forced_weight+weight", "two weight reparameterizations")],
)  # fmt: skip
def test_nonsense_compositions_are_refused_naming_the_part(spec, part):
    with pytest.raises(NormError, match=part):
        make_norm(spec)


@pytest.mark.parametrize("kind", ["forced_weight", "nap", "hyperspherical"])
def test_new_kinds_refuse_an_lstm_and_need_no_data_dependent_init(kind):
    norm = make_norm(kind)
    with pytest.raises(NormError, match=f"norm '{kind}' cannot go into a recurrent layer"):
        norm.lstm(3, 4)
    net = norm.mlp(3, [5], 1)
    before = copy.deepcopy(net.state_dict())
    assert norm.initialize(net, torch.randn(4, 3)) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_forced_weight_composes_with_an_activation_norm():
    block = make_norm("forced_weight+batch").linear(4, 6)
    assert isinstance(block.layer, ProjectedLinear) and block.layer.bias is None  # BN absorbs the bias
    assert isinstance(block.norm, nn.BatchNorm1d)
    assert make_norm("forced_weight", mp=True).label == "forced_weight_mp"


@pytest.mark.parametrize(
    ("norm", "message"),
    [("nap+batch", "norms\\[0\\]: norm 'nap\\+batch': part 'nap'"),
     ("hyperspherical+layer", "norms\\[0\\]: norm 'hyperspherical\\+layer': part 'hyperspherical'")],
)  # fmt: skip
def test_a_suite_with_an_unsupported_combination_exits_2_naming_the_part(
    tmp_path, monkeypatch, capsys, norm, message
):
    import sys

    from wnbench import cli

    suite = tmp_path / "bad.yaml"
    suite.write_text(
        "name: bad\nclaims: [C2]\nprofiles:\n  smoke:\n    kind: gen\n"
        f"    norms: ['{norm}', forced_weight]\n    seeds: 1\n    budget: {{time_limit_s: 60, steps: 2}}\n"
        "    grids:\n      - {tasks: [ring8], algos: [gan]}\n"
    )
    monkeypatch.setattr(
        sys, "argv", ["wnbench", "run", str(suite), "--dry-run", "--no-wandb", "--out", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert re.search(message, err) and "Traceback" not in err
    assert "norms[1]" not in err  # forced_weight is accepted


# -- the fast WN-LSTM ---------------------------------------------------------------------------------------------
def _torch_wn_lstm(lstm: nn.LSTM) -> nn.LSTM:
    """The WN-LSTM as it was: torch's parametrization on every weight (reference)."""
    from torch.nn.utils import parametrizations

    for name in [n for n in lstm._flat_weights_names if n.startswith("weight_")]:
        parametrizations.weight_norm(lstm, name=name, dim=0)
    return lstm


def _perturbed_wn_lstm():
    torch.manual_seed(0)
    base = nn.LSTM(5, 8, num_layers=2)
    fast, slow = make_norm("weight").wrap_lstm(copy.deepcopy(base)), _torch_wn_lstm(copy.deepcopy(base))
    with torch.no_grad():  # g away from ||v||, the same in both
        for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
            g, _ = fast.wn_parameters(name)
            g.mul_(torch.rand_like(g) + 0.5)
            getattr(slow.parametrizations, name).original0.copy_(g)
    return fast, slow


def test_fast_wn_lstm_matches_torchs_parametrization_in_outputs_and_gradients():
    fast, slow = _perturbed_wn_lstm()
    x, h0 = torch.randn(6, 3, 5), (torch.randn(2, 3, 8), torch.randn(2, 3, 8))
    out_f, (h_f, c_f) = fast(x, h0)
    out_s, (h_s, c_s) = slow(x, h0)
    assert torch.allclose(out_f, out_s, atol=1e-6) and torch.allclose(c_f, c_s, atol=1e-6)
    (out_f.pow(2).sum() + c_f.sum()).backward()
    (out_s.pow(2).sum() + c_s.sum()).backward()
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
        g, v = fast.wn_parameters(name)
        ref = getattr(slow.parametrizations, name)
        assert torch.allclose(g.grad, ref.original0.grad, atol=1e-5)
        assert torch.allclose(v.grad, ref.original1.grad, atol=1e-5)
    assert torch.allclose(fast.bias_hh_l1.grad, slow.bias_hh_l1.grad, atol=1e-5)


def test_fast_wn_lstm_cached_path_gives_the_uncached_outputs_and_follows_every_update():
    fast, _ = _perturbed_wn_lstm()
    x = torch.randn(4, 2, 5)

    def uncached():
        with torch.enable_grad():  # weights formed on this call, the cache untouched
            key = fast._cache_key
            out = fast(x)[0].detach()
            assert fast._cache_key == key
            return out

    with torch.no_grad():
        first = fast(x)[0]
        assert fast._cached_flat is not None and torch.allclose(first, uncached(), atol=1e-7)
        cached = fast._cached_flat
        assert torch.equal(fast(x)[0], first) and fast._cached_flat is cached  # reused, not recomputed
    opt = torch.optim.SGD(fast.parameters(), lr=0.5)
    fast(x)[0].sum().backward()
    opt.step()  # in-place update: version counters move
    with torch.no_grad():
        assert not torch.equal(fast(x)[0], first)
        assert torch.allclose(fast(x)[0], uncached(), atol=1e-7)
        g, _ = fast.wn_parameters("weight_hh_l1")
        before = fast(x)[0]
        g.data.mul_(1.5)  # a .data update (SB3's polyak_update style) bypasses the version counter
        assert not torch.equal(fast(x)[0], before) and torch.allclose(fast(x)[0], uncached(), atol=1e-7)


def test_fast_wn_lstm_step_by_step_with_cached_weights_gives_the_same_gradients():
    fast, _ = _perturbed_wn_lstm()
    twin = copy.deepcopy(fast)
    x = torch.randn(5, 3, 5)
    whole, _ = fast(x)
    whole.sum().backward()
    with twin.cached_weights():
        state, outs = None, []
        for t in range(5):
            o, state = twin(x[t : t + 1], state)
            outs.append(o)
        torch.cat(outs).sum().backward()
    assert twin._grad_cache is None  # dropped on exit: the next call forms the weights afresh
    for (name, p), q in zip(fast.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_fast_wn_lstm_keeps_ddi_and_moves_devices_and_dtypes():
    from wnbench.norms.weightnorm import WNLSTM, initialize_lstm

    lstm = make_norm("weight", ddi=True).lstm(3, 4)
    assert isinstance(lstm, WNLSTM) and initialize_lstm(lstm, torch.randn(6, 2, 3)) == 1
    double = lstm.double()
    out, _ = double(torch.randn(2, 1, 3, dtype=torch.float64))
    assert out.dtype == torch.float64
    assert not hasattr(lstm, "parametrizations")


@pytest.mark.parametrize("kind", ["nap", "hyperspherical"])
def test_feature_normalizing_kinds_see_their_inputs_magnitude(kind):
    """normalize(W c x) = normalize(W x) for c > 0: without a bias (SimbaV2's input shift, NaP's unconstrained
    bias) a first layer is blind to how far a 2-D point is from the origin. With the bias trained away from zero
    the layer tells x from 3x, as LayerNorm after a biased layer does."""
    torch.manual_seed(0)
    block = make_norm(kind).linear(2, 16)
    x = torch.randn(8, 2)
    with torch.no_grad():
        block.layer.bias.uniform_(-1, 1)
        assert (block(x) - block(3 * x)).abs().max().item() > 0.1
        block.layer.bias.zero_()
        assert (
            block(x) - block(3 * x)
        ).abs().max().item() < 1e-3  # the blindness the bias removes (LN eps aside)
