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
    BatchNormLSTM,
    LayerNormLSTM,
    NormError,
    NormLSTM,
    SequenceBatchNorm,
    WNConv2d,
    WNConvTranspose2d,
    WNLinear,
    available_norms,
    make_norm,
    norm_state_buffers,
    spectral_norm_modules,
    weight_norm_modules,
)

ALL_KINDS = available_norms()
COMPOSITIONS = ["weight+batch", "weight+layer", "weight+batch_renorm", "spectral+batch", "weight_ddi+group"]


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


@pytest.mark.parametrize("kind", [*ALL_KINDS, *COMPOSITIONS, "batch[pre]", "weight+batch_renorm[pre]"])
def test_every_kind_builds_layers_that_train(kind):
    name, pre = kind.removesuffix("[pre]"), kind.endswith("[pre]")
    if name == "weight_ddi+group":
        norm = make_norm("weight+group", ddi=True, groups=4)
    else:
        norm = make_norm(name, placement="pre") if pre else make_norm(name)
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


@pytest.mark.parametrize(
    "kind", ["none", "weight", "spectral", "layer", "batch", "weight+layer", "weight+batch"]
)
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
    timed = {"time": 0} if isinstance(lstm, NormLSTM) else {}  # per-time-step statistics need the step
    for t in range(7):
        if timed:
            timed["time"] = t
        o, state = lstm(x[t : t + 1], state, **timed)
        steps.append(o)
    assert torch.allclose(torch.cat(steps), out, atol=1e-5)


def _input_term(lstm: nn.LSTM, layer: int, x: torch.Tensor) -> torch.Tensor:
    w, b = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"bias_ih_l{layer}")
    return (x.reshape(-1, x.shape[-1]) @ w.T + b).detach()


def test_lstm_ddi_standardizes_each_layers_input_term_and_keeps_the_recurrent_weights():
    from wnbench.norms.weightnorm import initialize_lstm

    torch.manual_seed(0)
    lstm = make_norm("weight", ddi=True, init_scale=0.5).lstm(3, 8, num_layers=2)
    w_hh = [getattr(lstm, f"weight_hh_l{k}").detach().clone() for k in range(2)]
    x = torch.randn(20, 5, 3) * 0.05 + 2.0  # tiny, off-centre inputs, as masked CartPole observations are
    starts = torch.zeros(20, 5)
    starts[0], starts[9, :2] = 1.0, 1.0  # two of the five sequences restart at step 9
    assert initialize_lstm(lstm, x, starts) == 2
    first = _input_term(lstm, 0, x)
    assert first.mean(0).abs().max() < 1e-4 and (first.std(0, unbiased=False) - 0.5).abs().max() < 1e-4
    # layer 1 is standardized on what layer 0 outputs over the sequences, state zeroed at each start
    bottom = nn.LSTM(3, 8)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    bottom.load_state_dict({f"{n}_l0": getattr(lstm, f"{n}_l0") for n in names})
    with torch.no_grad():
        head, (h, c) = bottom(x[:9])  # steps 0-8, all five sequences from a zero state
        restarted, _ = bottom(x[9:, :2])  # sequences 0-1 start again at step 9
        carried, _ = bottom(x[9:, 2:], (h[:, 2:], c[:, 2:]))  # sequences 2-4 carry their state
    hidden = torch.cat([head, torch.cat([restarted, carried], dim=1)])
    second = _input_term(lstm, 1, hidden)
    assert second.mean(0).abs().max() < 1e-4 and (second.std(0, unbiased=False) - 0.5).abs().max() < 1e-4
    for k in range(2):  # the recurrent weights keep their standard init
        assert torch.equal(getattr(lstm, f"weight_hh_l{k}").detach(), w_hh[k])


def test_a_composed_lstm_with_ddi_is_refused_with_the_reason():
    with pytest.raises(NormError, match="ddi=True.*zero first hidden state"):
        make_norm("weight+layer", ddi=True).lstm(3, 4)
    make_norm("weight+layer").lstm(3, 4)  # without DDI it builds


def test_lstm_ddi_leaves_lstms_built_without_ddi_alone():
    from wnbench.norms.weightnorm import initialize_lstm

    for lstm in (make_norm("weight").lstm(3, 4), make_norm("none").lstm(3, 4)):
        before = {k: v.clone() for k, v in lstm.state_dict().items()}
        assert initialize_lstm(lstm, torch.randn(6, 2, 3)) == 0
        assert all(torch.equal(before[k], v) for k, v in lstm.state_dict().items())


def test_weight_normalized_lstm_reparameterizes_each_gate_unit():
    lstm = make_norm("weight").lstm(4, 6)
    g, v = lstm.wn_parameters("weight_hh_l0")
    with torch.no_grad():
        g.mul_(2.0)
    w = lstm.weight_hh_l0
    assert torch.allclose(w.norm(dim=1), g.detach().reshape(-1), atol=1e-5)
    assert torch.allclose(
        w / w.norm(dim=1, keepdim=True), v.detach() / v.detach().norm(dim=1, keepdim=True), atol=1e-5
    )


@pytest.mark.parametrize("kind", ["batch_renorm", "weight_meanonly", "group", "meanonly"])
def test_norms_without_a_recurrent_form_refuse_an_lstm(kind):
    with pytest.raises(
        NormError,
        match="cannot go into a recurrent layer.*recurrent-capable norms: none, batch, layer, weight",
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


# -- compositions (norm specs of three parts) ----------------------------------------------------------
def test_weight_plus_batch_is_batchnorm_of_a_wn_layer_with_weight_g_v_over_norm_v():
    torch.manual_seed(0)
    layer = make_norm("weight+batch").linear(6, 5)
    wn, bn = layer.layer, layer.norm
    assert isinstance(wn, WNLinear) and wn.bias is None  # BN's mean subtraction absorbs the bias
    with torch.no_grad():
        wn.g.mul_(torch.rand_like(wn.g) + 0.5)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(32, 6) * 3 + 1
    w = _reference_weight(wn, 0)
    reference = nn.BatchNorm1d(5)
    reference.load_state_dict(bn.state_dict())
    assert torch.allclose(layer(x), reference(x @ w.T), atol=1e-5)
    # and the same with running statistics in eval mode
    layer.eval(), reference.eval()
    assert torch.allclose(layer(x), reference(x @ w.T), atol=1e-5)


@pytest.mark.parametrize("name", ["batch", "weight+batch_renorm", "layer"])
def test_pre_placement_normalizes_every_layer_input_including_the_observation(name):
    torch.manual_seed(0)
    net = make_norm(name, placement="pre", eps=1e-8).mlp(4, [16, 16], 1)  # eps off: exact moments
    inputs = []
    linear_types = (nn.Linear, WNLinear)
    hooks = [
        m.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
        for m in net.modules()
        if isinstance(m, linear_types)
    ]
    x = torch.randn(256, 4) * torch.tensor([10.0, 0.5, 3.0, 1.0]) + 5  # far from standardized
    net.train()
    net(x)
    for h in hooks:
        h.remove()
    assert len(inputs) == 3  # two hidden layers and the output layer, each fed a normalized input
    for seen in inputs:
        if name == "layer":  # per sample over features
            assert torch.allclose(seen.mean(dim=1), torch.zeros(len(seen)), atol=1e-4)
            assert torch.allclose(seen.var(dim=1, unbiased=False), torch.ones(len(seen)), atol=1e-2)
        else:  # per feature over the batch (batch renorm starts as plain BN)
            assert torch.allclose(seen.mean(dim=0), torch.zeros(seen.shape[1]), atol=1e-4)
            assert torch.allclose(seen.var(dim=0, unbiased=False), torch.ones(seen.shape[1]), atol=2e-2)


def test_pre_placement_matches_sb3_contrib_crossq_layout():
    from sb3_contrib.common.torch_layers import BatchRenorm1d
    from stable_baselines3.common.torch_layers import create_mlp

    stock = create_mlp(5, 1, [32, 32], nn.ReLU, pre_linear_modules=[BatchRenorm1d])
    ours = make_norm("batch_renorm", placement="pre").mlp(5, [32, 32], 1)
    flat = [m for m in ours.modules() if not isinstance(m, nn.Sequential)]
    assert [type(m) for m in flat] == [type(m) for m in stock]
    assert [getattr(m, "num_features", getattr(m, "in_features", None)) for m in flat] == [
        getattr(m, "num_features", getattr(m, "in_features", None)) for m in stock
    ]


@pytest.mark.parametrize("name", ["weight+layer", "weight+meanonly", "weight+batch"])
def test_ddi_in_a_composition_standardizes_what_the_activation_norm_receives(name):
    torch.manual_seed(0)
    norm = make_norm(name, ddi=True)
    net = norm.mlp(6, [32, 32])
    received = []
    for m in net.modules():
        if isinstance(m, WNLinear):
            m.register_forward_hook(lambda m, a, out: received.append(out))
    x = torch.randn(512, 6) * 4 + 2
    assert norm.initialize(net, x) == 2
    assert len(received) == 2
    for out in received:  # every unit's pre-activation has variance 1; zero mean when the WN layer has a bias
        assert torch.allclose(out.var(dim=0, unbiased=False), torch.ones(out.shape[1]), atol=1e-3)
        if name == "weight+layer":
            assert torch.allclose(out.mean(dim=0), torch.zeros(out.shape[1]), atol=1e-4)


def test_weight_meanonly_is_the_composition_with_ddi_and_keeps_its_name():
    norm = make_norm("weight_meanonly")
    assert norm.name == "weight+meanonly" and norm.options()["ddi"] is True
    assert norm.label == "weight_meanonly"
    assert make_norm("weight+meanonly", ddi=True).label == "weight_meanonly"
    assert make_norm("weight+meanonly").label == "weight+meanonly"
    assert make_norm("weight+batch_renorm", placement="pre").label == "weight+batch_renorm[placement=pre]"
    assert make_norm("none+batch").label == "batch" and make_norm("weight+none").label == "weight"
    assert make_norm("batch+weight").label == "weight+batch"  # either order, one canonical name


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("batch+layer", {}, "norm 'batch\\+layer': two activation norms \\(batch, layer\\)"),
        ("weight+spectral", {}, "two weight reparameterizations \\(weight, spectral\\)"),
        ("spectral+batch", {"ddi": True}, "takes option 'ddi'.*'ddi' is an option of 'weight'"),
        ("weight+bacth", {}, "unknown part 'bacth' \\(did you mean 'batch'\\?\\)"),
        ("weight+batch+layer", {}, "a composition is"),
        ("weight", {"placement": "pre"}, "places an activation norm, and 'weight' has none"),
        ("batch", {"placement": "before"}, "'placement' must be one of post, pre"),
        ("spectral", {"layers": "first"}, "'layers' must be one of all, last_hidden"),
    ],
)
def test_impossible_compositions_name_the_part(name, options, message):
    with pytest.raises(NormError, match=message):
        make_norm(name, **options)


def test_spectral_on_the_last_hidden_layer_only():
    net = make_norm("spectral", layers="last_hidden").mlp(4, [8, 8, 8], 2)
    assert len(spectral_norm_modules(net)) == 1
    assert spectral_norm_modules(net)[0] is net[4]
    both = make_norm("spectral+layer", layers="last_hidden").mlp(4, [8, 8], 2)
    assert len(spectral_norm_modules(both)) == 1
    assert sum(isinstance(m, nn.LayerNorm) for m in both.modules()) == 2  # LN stays on every layer


def test_spectral_norm_in_eval_mode_follows_weights_changed_through_data():
    """A target network (eval mode forever) that receives polyak updates keeps sigma = 1."""
    torch.manual_seed(0)
    online = make_norm("spectral").mlp(8, [32, 32], 1)
    target = make_norm("spectral").mlp(8, [32, 32], 1)
    target.load_state_dict(online.state_dict())
    target.eval()
    opt = torch.optim.Adam(online.parameters(), lr=3e-2)
    x = torch.randn(64, 8)
    for _ in range(200):
        opt.zero_grad()
        (online(x) - 3).pow(2).mean().backward()
        opt.step()
        with torch.no_grad():  # SB3's polyak_update writes through .data and copies norm state
            for p, tp in zip(online.parameters(), target.parameters(), strict=True):
                tp.data.mul_(0.95).add_(p.data, alpha=0.05)
            for b, tb in zip(norm_state_buffers(online), norm_state_buffers(target), strict=True):
                tb.data.copy_(b.data)
        target(x)
    for layer in spectral_norm_modules(target):
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), 2)
        assert abs(sigma.item() - 1) < 0.02
    # eval mode stays a pure function while the weights do not change
    with torch.no_grad():
        assert torch.equal(target(x), target(x))


def test_norm_state_buffers_hold_every_kind_of_norm_state():
    names = {
        "batch": {"running_mean", "running_var"},
        "batch_renorm": {"ra_mean", "ra_var"},
        "weight_meanonly": {"running_mean"},
        "spectral": {"_u", "_v"},
    }
    for kind, expected in names.items():
        net = make_norm(kind).mlp(3, [4])
        found = {n.rsplit(".", 1)[-1] for n, b in net.named_buffers() if b.is_floating_point()}
        assert expected <= found, kind
        assert len(norm_state_buffers(net)) == len(found)


# -- recurrent batch norm (Cooijmans et al. 2017) ---------------------------------------------------
def test_bn_lstm_keeps_statistics_per_time_step():
    torch.manual_seed(0)
    lstm = make_norm("batch", t_max=4).lstm(3, 5)
    assert isinstance(lstm, BatchNormLSTM)
    bns = [m for m in lstm.modules() if isinstance(m, SequenceBatchNorm)]
    assert len(bns) == 3  # input-to-hidden, hidden-to-hidden, cell
    x = torch.randn(4, 64, 3) * torch.arange(1, 5).view(4, 1, 1).float() + torch.arange(4).view(4, 1, 1)
    lstm.train()
    out, _ = lstm(x)
    stats = lstm.cells[0].norm_ih.running_mean
    assert stats.shape == (4, 20)
    # inputs drift over time, so each step's statistics differ
    assert all(not torch.allclose(stats[t], stats[t + 1], atol=1e-3) for t in range(3))
    # in train mode every step is standardized by its own minibatch statistics (before gamma/beta)
    pre = lstm.cells[0].ih(x)
    normed = (lstm.cells[0].norm_ih(pre, 0) - lstm.cells[0].norm_ih.bias) / lstm.cells[0].norm_ih.weight
    assert torch.allclose(normed.mean(dim=1), torch.zeros(4, 20), atol=1e-4)


def test_bn_lstm_runs_past_t_max_and_reuses_the_last_statistics():
    torch.manual_seed(0)
    lstm = make_norm("batch", t_max=3).lstm(2, 4)
    lstm.train()
    out, _ = lstm(torch.randn(10, 8, 2))
    assert out.shape == (10, 8, 4) and torch.isfinite(out).all()
    lstm.eval()
    bn = lstm.cells[0].norm_c
    step_late = torch.randn(8, 4)
    assert torch.equal(bn(step_late, 7), bn(step_late, 2))  # beyond t_max: slot t_max - 1
    assert not torch.equal(bn(step_late, 0), bn(step_late, 2))


def test_bn_lstm_state_dict_round_trips_with_weights_only(tmp_path):
    torch.manual_seed(0)
    lstm = make_norm("weight+batch", t_max=5).lstm(3, 4)
    lstm.train()
    lstm(torch.randn(6, 8, 3))
    path = tmp_path / "bn_lstm.pt"
    torch.save(lstm.state_dict(), path)
    fresh = make_norm("weight+batch", t_max=5).lstm(3, 4)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    lstm.eval(), fresh.eval()
    x = torch.randn(6, 2, 3)
    assert torch.equal(lstm(x)[0], fresh(x)[0])
