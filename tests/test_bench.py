"""The micro-benchmarks measure what they claim to (no timing goals here: those live in bench outputs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from wnbench.bench.models import BENCH_MODELS, TorchWeightNormReference, resolve_norm
from wnbench.bench.noise import measure_noise
from wnbench.bench.overhead import _Subject, measure_overhead, peak_train_memory
from wnbench.errors import UserError


def test_noise_is_zero_without_batch_statistics_and_shrinks_with_batch_size():
    rows = measure_noise(["none", "weight", "batch"], [2, 16, 128], companions=16)
    spread = {(r.norm, r.batch_size): r.relative_spread for r in rows}
    assert all(spread[("none", b)] == 0 and spread[("weight", b)] == 0 for b in (2, 16, 128))
    assert spread[("batch", 2)] > spread[("batch", 16)] > spread[("batch", 128)] > 0


def test_peak_memory_grows_with_the_batch_and_counts_persistent_state():
    spec = BENCH_MODELS["mlp"]
    device = torch.device("cpu")
    small = _Subject(spec, "none", device, seed=0)
    big = _Subject(spec, "none", device, seed=0)
    big.x, big.y = torch.randn(4096, 8), torch.randn(4096, 2)
    small.train_step(), big.train_step()  # optimizer state exists from here on
    params = sum(p.numel() * 4 for p in small.model.parameters())
    small_peak, big_peak = peak_train_memory(small, device), peak_train_memory(big, device)
    assert small_peak >= 3 * params  # parameters + two Adam moments at least
    # activations of a 16x larger batch: 3 hidden activations of 256 floats per extra sample at least
    assert big_peak - small_peak >= (4096 - 256) * 256 * 4 * 2


def test_overhead_rows_are_ratios_to_none_for_every_norm_and_model():
    rows = measure_overhead(["weight", "batch"], ["mlp"], repeats=2, block_seconds=0.005)
    assert [(r.norm, r.model) for r in rows] == [("none", "mlp"), ("weight", "mlp"), ("batch", "mlp")]
    none = rows[0]
    assert none.train_step_ratio == none.act_step_ratio == none.peak_memory_ratio == 1.0
    assert all(r.train_step_ms > 0 and r.act_step_us > 0 and r.peak_memory_mb > 0 for r in rows)


def test_recurrent_rows_time_only_norms_with_a_recurrent_form_per_time_step():
    rows = measure_overhead(
        ["batch", "weight+layer", "batch_renorm", "torch_weight_norm"],
        ["lstm_t16"],
        repeats=1,
        block_seconds=0.002,
    )
    # batch renorm has no recurrent form; the stock-WN reference row is the WN-LSTM as it was (torch's
    # parametrization), timed beside wnbench's cached WNLSTM ("weight")
    assert [r.norm for r in rows] == ["none", "batch", "weight+layer", "torch_weight_norm"]
    assert all(r.steps == 16 for r in rows)
    lstms = {
        n: _Subject(BENCH_MODELS["lstm_t16"], n, torch.device("cpu"), 0).model.lstm
        for n in [*(r.norm for r in rows), "weight"]
    }
    assert {n: type(m).__name__ for n, m in lstms.items()} == {
        "none": "LSTM", "batch": "BatchNormLSTM", "weight+layer": "LayerNormLSTM",
        "torch_weight_norm": "ParametrizedLSTM", "weight": "WNLSTM",
    }  # fmt: skip
    assert hasattr(lstms["torch_weight_norm"], "parametrizations") and not hasattr(
        lstms["none"], "parametrizations"
    )


def test_composed_norm_names_are_benchmarked_and_bad_compositions_refused():
    rows = measure_overhead(["weight+batch_renorm"], ["mlp"], repeats=1, block_seconds=0.002)
    assert [r.norm for r in rows] == ["none", "weight+batch_renorm"]
    with pytest.raises(UserError) as err:
        measure_overhead(["batch+layer"], ["mlp"], repeats=1)
    assert any("--norms: norm 'batch+layer': two activation norms" in p for p in err.value.problems)


def test_reference_row_uses_torch_stock_weight_norm():
    model = BENCH_MODELS["mlp"].build(resolve_norm(TorchWeightNormReference.name))
    parametrized = [m for m in model.modules() if hasattr(m, "parametrizations")]
    assert len(parametrized) == 2  # the two hidden layers; the output layer stays plain


def test_bad_benchmark_arguments_list_every_problem():
    with pytest.raises(UserError) as err:
        measure_overhead(["wieght"], ["mpl"], repeats=1)
    assert any("--norms: unknown norm 'wieght'" in p for p in err.value.problems)
    assert any("--models: unknown model 'mpl'" in p for p in err.value.problems)


def test_bench_noise_cli_writes_json_and_plot(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wnbench.cli", "bench", "noise", "--norms", "none,batch", "--batch-sizes", "2,8",
         "--companions", "4", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "noise.json").read_text())
    assert {r["norm"] for r in data["rows"]} == {"none", "batch"} and data["meta"]["companions"] == 4
    assert (tmp_path / "noise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ddi_benchmark_finds_wn_ddi_equal_to_bn_at_init_and_close_after(tmp_path):
    """Claim C8's figures: the init-batch agreement is BN's epsilon, a fresh batch differs but stays close."""
    from wnbench.bench.ddi import INIT_TOLERANCE, measure_ddi

    rows = measure_ddi(seeds=range(2))
    assert len(rows) == 6
    assert all(r.init_max_abs_diff < INIT_TOLERANCE for r in rows)
    assert all(0 < r.fresh_mean_abs_diff < 0.2 for r in rows)  # BN re-estimates statistics; WN keeps its init


def test_ddi_equivalence_holds_for_a_whitened_layer_in_training_and_stops_without_whitening_or_depth():
    """C8's reach (v3): with BN's weight = WN's v, a whitened single layer stays within the held-out tolerance
    through 100 identical SGD steps while both move far; correlated inputs or a 4-layer stack leave it."""
    from wnbench.bench.ddi import HELDOUT_TOLERANCE, reach_rows

    def after_training(inputs: str, depth: int) -> tuple[float, float]:
        rows = [
            r for s in (0, 1) for r in reach_rows(s, inputs, depth) if (r.train_steps, r.batch) == (100, 512)
        ]
        return max(r.mean_abs_diff for r in rows), min(r.wn_moved for r in rows)

    white_diff, white_moved = after_training("whitened", 1)
    assert white_diff < HELDOUT_TOLERANCE < white_moved
    assert after_training("standardized", 1)[0] > 2 * HELDOUT_TOLERANCE
    assert after_training("whitened", 4)[0] > 2 * HELDOUT_TOLERANCE
