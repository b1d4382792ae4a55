"""Math properties of the norm factory's layers (claims C4 and C8 among them)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wnbench.norms import (
    LayerNormLSTM,
    NormError,
    WNConv2d,
    WNConvTranspose2d,
    WNLinear,
    available_norms,
    make_norm,
    weight_norm_modules,
)

ALL_KINDS = available_norms()


def _wn_layers():
    return [
        (WNLinear(6, 5), torch.randn(4, 6), lambda x, w, b: F.linear(x, w, b), 0),
        (WNConv2d(3, 4, 3, 1, 1), torch.randn(2, 3, 5, 5), lambda x, w, b: F.conv2d(x, w, b, 1, 1), 0),
        (
            WNConvTranspose2d(4, 3, 4, 2, 1),
            torch.randn(2, 4, 3, 3),
            lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1),
            1,
        ),
    ]


def _reference_weight(layer, unit_dim: int) -> torch.Tensor:
    dims = [d for d in range(layer.v.dim()) if d != unit_dim]
    norms = layer.v.detach().pow(2).sum(dim=dims, keepdim=True).sqrt()
    return layer.g.detach().reshape(norms.shape) * layer.v.detach() / norms


@pytest.mark.parametrize("case", range(3), ids=["linear", "conv2d", "conv_transpose2d"])
def test_wn_forward_equals_layer_with_normalized_weight(case):
    layer, x, op, unit_dim = _wn_layers()[case]
    with torch.no_grad():  # make g differ from ||v|| so the test sees the reparameterization
        layer.g.mul_(torch.rand_like(layer.g) + 0.5)
    expected = op(x, _reference_weight(layer, unit_dim), layer.bias.detach())
    # grad path (both weight-scaling and output-scaling strategies) and cached no-grad path
    for scale_outputs in (False, True):
        layer.scale_outputs = scale_outputs
        assert torch.allclose(layer(x), expected, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(layer(x), expected, atol=1e-5)
    # per output unit, the effective weight's norm is g
    w = layer.effective_weight().detach()
    dims = [d for d in range(w.dim()) if d != unit_dim]
    assert torch.allclose(w.pow(2).sum(dim=dims).sqrt(), layer.g.detach().reshape(-1), atol=1e-5)


@pytest.mark.parametrize("case", range(3), ids=["linear", "conv2d", "conv_transpose2d"])
def test_wn_gradient_wrt_v_is_orthogonal_to_v(case):
    layer, x, _, unit_dim = _wn_layers()[case]
    for scale_outputs in (False, True):
        layer.zero_grad()
        layer.scale_outputs = scale_outputs
        layer(x).pow(3).sum().backward()
        grad, v = layer.v.grad, layer.v.detach()
        dims = [d for d in range(v.dim()) if d != unit_dim]
        dots = (grad * v).sum(dim=dims)
        scale = grad.pow(2).sum(dim=dims).sqrt() * v.pow(2).sum(dim=dims).sqrt()
        assert grad.abs().sum() > 0
        assert torch.all(dots.abs() <= 1e-5 * scale + 1e-7)


def test_cache_matches_uncached_and_is_invalidated_by_optimizer_step():
    layer = WNLinear(6, 5)
    x = torch.randn(3, 6)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(3):
        with torch.no_grad():
            cached = layer(x)
            cached_again = layer(x)
        uncached = F.linear(x, layer.effective_weight(), layer.bias).detach()
        assert torch.equal(cached, cached_again)
        assert torch.allclose(cached, uncached, atol=1e-6)
        opt.zero_grad()
        layer(x).pow(2).sum().backward()
        opt.step()
        with torch.no_grad():
            assert not torch.allclose(layer(x), cached)  # a stale cache would return the old output


def test_cache_is_invalidated_by_polyak_updates_through_data():
    """SB3 updates target networks through ``.data``, which bypasses version counters."""
    from stable_baselines3.common.utils import polyak_update

    online, target = WNLinear(4, 3), WNLinear(4, 3)
    x = torch.randn(2, 4)
    opt = torch.optim.Adam(online.parameters(), lr=0.1)
    online(x).pow(2).sum().backward()
    opt.step()
    with torch.no_grad():
        stale = target(x)  # fills the target's cache
    polyak_update(online.parameters(), target.parameters(), tau=0.5)
    with torch.no_grad():
        expected = F.linear(x, target.effective_weight(), target.bias)
        assert not torch.allclose(stale, expected)
        assert torch.allclose(target(x), expected, atol=1e-6)


def test_cache_is_invalidated_by_load_state_dict_and_dtype_change():
    layer, other = WNLinear(4, 3), WNLinear(4, 3)
    x = torch.randn(2, 4)
    with torch.no_grad():
        before = layer(x)
        layer.load_state_dict(other.state_dict())
        assert torch.allclose(layer(x), other(x))
        assert not torch.allclose(layer(x), before)
        layer.double()
        assert layer(x.double()).dtype == torch.float64


def test_state_dict_loads_back_with_weights_only(tmp_path):
    norm = make_norm("weight_ddi")
    net = nn.Sequential(norm.conv2d(3, 4, 3), nn.ReLU(), norm.conv_transpose2d(4, 2, 4, 2, 1))
    norm.initialize(net, torch.randn(8, 3, 6, 6))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = nn.Sequential(norm.conv2d(3, 4, 3), nn.ReLU(), norm.conv_transpose2d(4, 2, 4, 2, 1))
    fresh.load_state_dict(state)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(fresh(x), net(x))


def test_ddi_standardizes_every_wn_unit_on_the_init_batch():
    norm = make_norm("weight", ddi=True)
    net = nn.Sequential(
        norm.conv2d(3, 8, 3, 1, 1), nn.ReLU(), norm.conv2d(8, 8, 3, 2, 1), nn.ReLU(),
        nn.Flatten(), norm.linear(8 * 4 * 4, 16), nn.ReLU(), norm.linear(16, 16),
    )  # fmt: skip
    batch = torch.randn(64, 3, 8, 8) * 3 + 1
    assert norm.initialize(net, batch) == 4
    seen = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, o)) for m in weight_norm_modules(net)
    ]
    with torch.no_grad():
        net(batch)
    for h in hooks:
        h.remove()
    assert len(seen) == 4
    for out in seen.values():
        axis = 1
        dims = [d for d in range(out.dim()) if d != axis]
        assert torch.allclose(out.mean(dim=dims), torch.zeros(out.shape[axis]), atol=1e-4)
        assert torch.allclose(out.var(dim=dims, unbiased=False), torch.ones(out.shape[axis]), atol=1e-3)


def test_ddi_raises_when_a_layer_sees_no_data():
    norm = make_norm("weight_ddi")
    model = nn.ModuleDict({"used": norm.linear(3, 4), "unused": norm.linear(3, 4)})
    with pytest.raises(NormError, match="1 of 2 WN layers saw no data"):
        norm.initialize(model, torch.randn(5, 3), forward=lambda m, b: m["used"](b))


def test_c8_wn_with_ddi_matches_batchnorm_on_whitened_input():
    """Claim C8: one layer on whitened input — WN+DDI at init behaves like BN in train mode."""
    torch.manual_seed(1)
    n, d_in, d_out = 4096, 16, 8
    mixing, offset = torch.randn(d_in, d_in), 3.0

    def sample(count: int) -> torch.Tensor:
        return torch.randn(count, d_in) @ mixing + offset

    raw = sample(n)
    mean = raw.mean(0)
    eigval, eigvec = torch.linalg.eigh((raw - mean).T @ (raw - mean) / n)
    zca = eigvec @ torch.diag(eigval.rsqrt()) @ eigvec.T

    def whiten(x: torch.Tensor) -> torch.Tensor:
        return (x - mean) @ zca

    white = whiten(raw)
    norm = make_norm("weight_ddi")
    wn = norm.linear(d_in, d_out)
    norm.initialize(wn, white)
    bn = make_norm("batch").linear(d_in, d_out)
    with torch.no_grad():
        bn.layer.weight.copy_(wn.v)  # same directions; BN's output does not depend on their scale
    bn.train()
    with torch.no_grad():
        # On the init batch: identical up to BN's epsilon.
        assert torch.allclose(wn(white), bn(white), atol=1e-3)
        # On a fresh whitened batch BN re-estimates the statistics WN fixed at init; whitening keeps them close.
        fresh = whiten(sample(512))
        gap = (wn(fresh) - bn(fresh)).abs().mean().item()
        assert gap < 0.1, f"mean |WN+DDI - BN| on a fresh whitened batch = {gap:.3f}"


@pytest.mark.parametrize(
    "kind", ["none", "layer", "group", "weight", "weight_ddi", "batch", "batch_renorm", "weight_meanonly"]
)
def test_c4_batch_companions_change_only_batch_statistic_norms(kind):
    """Claim C4's mechanism: in train mode only batch-statistics norms let companions change sample i."""
    norm = make_norm(kind)
    net = norm.mlp(6, [16, 16], 3)
    x0 = torch.randn(1, 6)
    norm.initialize(net, torch.randn(32, 6))
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    outputs = []
    for _ in range(3):
        net.load_state_dict(state)  # undo running-stat updates: only the companions differ
        with torch.no_grad():
            outputs.append(net(torch.cat([x0, torch.randn(7, 6)]))[0])
    spread = (outputs[0] - outputs[1]).abs().max() + (outputs[0] - outputs[2]).abs().max()
    if norm.uses_batch_statistics:
        assert spread > 1e-3
    else:
        assert spread < 1e-6


def test_spectral_norm_keeps_largest_singular_value_near_one():
    norm = make_norm("spectral", n_power_iterations=1)
    layer = norm.linear(32, 24)
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(7.0)
    layer.train()
    for _ in range(30):  # power iteration converges over forward passes
        layer(torch.randn(4, 32))
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    assert abs(sigma.item() - 1.0) < 0.02


def test_group_norm_rejects_group_count_that_does_not_divide_channels():
    with pytest.raises(NormError, match="3 groups do not divide 16 channels"):
        make_norm("group", groups=3).conv2d(4, 16, 3)
    layer = make_norm("group", groups=4).linear(4, 16)
    assert layer.norm.num_groups == 4


def test_unknown_norm_and_option_name_the_known_ones():
    with pytest.raises(ValueError, match="unknown norm 'wieght'.*known: none, batch"):
        make_norm("wieght")
    with pytest.raises(ValueError, match="did you mean 'weight'"):
        make_norm("wieght")
    with pytest.raises(ValueError, match="norm 'weight' has no option 'groups'; options: ddi, init_scale"):
        make_norm("weight", groups=2)


def test_cli_turns_unknown_norm_into_exit_code_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "wnbench.cli", "bench", "noise", "--norms", "none,wieght", "--out", "unused"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "unknown norm 'wieght'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) <= 3


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_builds_layers_that_train(kind):
    norm = make_norm(kind)
    net = nn.Sequential(
        norm.conv2d(3, 8, 3, 1, 1), nn.ReLU(), norm.conv_transpose2d(8, 8, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), norm.linear(8 * 8 * 8, 16), nn.ReLU(), norm.linear(16, 2, normalize=False),
    )  # fmt: skip
    x = torch.randn(6, 3, 4, 4)
    norm.initialize(net, x)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = (net(x) - 1).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert isinstance(net[-1], nn.Linear)  # output layers stay plain


@pytest.mark.parametrize("kind", ["none", "weight", "spectral", "layer"])
def test_recurrent_capable_norms_wrap_an_lstm_with_its_interface(kind):
    norm = make_norm(kind)
    lstm = norm.lstm(5, 8, num_layers=2)
    x, h0 = torch.randn(7, 3, 5), (torch.zeros(2, 3, 8), torch.zeros(2, 3, 8))
    out, (h, c) = lstm(x, h0)
    assert out.shape == (7, 3, 8) and h.shape == c.shape == (2, 3, 8)
    out.sum().backward()
    # stepping one time step at a time (as RecurrentPPO's rollout does) gives the same result as the whole
    # sequence (in eval mode: spectral norm's power iteration would otherwise move the weights between calls)
    lstm.eval()
    out, _ = lstm(x, h0)
    state, steps = h0, []
    for t in range(7):
        o, state = lstm(x[t : t + 1], state)
        steps.append(o)
    assert torch.allclose(torch.cat(steps), out, atol=1e-5)


def test_weight_normalized_lstm_reparameterizes_each_gate_unit():
    lstm = make_norm("weight").lstm(4, 6)
    g = lstm.parametrizations.weight_hh_l0.original0
    v = lstm.parametrizations.weight_hh_l0.original1
    with torch.no_grad():
        g.mul_(2.0)
    w = lstm.weight_hh_l0
    assert torch.allclose(w.norm(dim=1), g.detach().reshape(-1), atol=1e-5)
    assert torch.allclose(
        w / w.norm(dim=1, keepdim=True), v.detach() / v.detach().norm(dim=1, keepdim=True), atol=1e-5
    )


@pytest.mark.parametrize("kind", ["batch", "batch_renorm", "weight_meanonly", "group"])
def test_norms_without_a_recurrent_form_refuse_an_lstm(kind):
    with pytest.raises(
        NormError, match="cannot go into a recurrent layer.*recurrent-capable norms: none, layer, weight"
    ):
        make_norm(kind).wrap_lstm(nn.LSTM(3, 4))


def test_layer_norm_lstm_normalizes_and_accepts_unbatched_input():
    lstm = LayerNormLSTM(3, 4, batch_first=True)
    out, (h, c) = lstm(torch.randn(2, 5, 3) * 100)
    assert (
        out.shape == (2, 5, 4) and out.abs().max() <= 1.0
    )  # h = o * tanh(LN(c)), bounded whatever the scale
    out1, _ = lstm(torch.randn(5, 3))
    assert out1.shape == (5, 4)


def test_label_names_the_alias_or_the_non_default_options():
    assert make_norm("weight", ddi=True).label == "weight_ddi"
    assert make_norm("group", groups=4).label == "group[groups=4]"
    assert make_norm("batch").label == "batch"
