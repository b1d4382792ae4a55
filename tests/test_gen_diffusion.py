"""The diffusion model (wnbench.gen.diffusion): it learns, its sampler's step rule, checkpoints, every norm."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import run_cli

from wnbench.gen.diffusion import ALPHA_BAR_MIN, Diffusion, alpha_bar
from wnbench.gen.metrics import energy_distance
from wnbench.gen.train import build_run, train_gen
from wnbench.norms import projected_modules

ROOT = Path(__file__).resolve().parents[1]
NORMS = ["none", "batch", "layer", "weight", "weight_ddi", "forced_weight", "nap", "hyperspherical"]


def _fit(module: pl.LightningModule, dm, steps: int, tmp_path: Path) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, limit_val_batches=0, default_root_dir=str(tmp_path),
        deterministic=True,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=dm)
    return trainer


def test_schedule_runs_from_data_to_noise():
    t = torch.linspace(0, 1, 101)
    ab = alpha_bar(t)
    assert ab[0] == pytest.approx(1.0) and ab[-1] == pytest.approx(ALPHA_BAR_MIN)
    assert bool((ab[1:] <= ab[:-1]).all())


def test_training_lowers_the_loss_and_the_energy_distance(tmp_path):
    pl.seed_everything(0, verbose=False)
    module, dm, _, _ = build_run("diffusion", "moons", "none", hyperparams={"lr_schedule": "constant"})
    test = dm.tensors("test")[0][:1000]
    loss_before = module.denoising_loss(test, seed=1)
    ed_before = energy_distance(module.sample(1000, seed=2, steps=20), test)
    _fit(module, dm, 300, tmp_path)
    loss_after = module.denoising_loss(test, seed=1)
    ed_after = energy_distance(module.sample(1000, seed=2, steps=20), test)
    assert loss_after < 0.8 * loss_before, (loss_before, loss_after)
    assert ed_after < 0.5 * ed_before, (ed_before, ed_after)


def test_sampler_takes_any_step_count_and_refuses_none(tmp_path):
    module, _, _, _ = build_run("diffusion", "moons", "none", hyperparams={"sample_steps": 10})
    # Continuous time: no step count is fixed by training, so more steps than configured are legitimate.
    for steps in (1, 10, 250):
        x = module.sample(50, seed=0, steps=steps)
        assert x.shape == (50, 2) and torch.isfinite(x).all()
    assert torch.equal(module.sample(50, seed=0), module.sample(50, seed=0, steps=10))
    assert not torch.equal(module.sample(50, seed=0, steps=10), module.sample(50, seed=0, steps=11))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        module.sample(5, seed=0, steps=0)


def test_zero_sampler_steps_is_refused_at_validation(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text(
        "name: bad\nclaims: [C2]\ndescription: x\nprofiles:\n  default:\n    kind: gen\n    seeds: 1\n"
        "    tasks: [moons]\n    algos: [diffusion]\n    norms: [none]\n"
        "    params: {hyperparams: {sample_steps: 0}}\n"
    )
    code, _, err = run_cli(monkeypatch, capsys, "run", str(suite), "--no-wandb", "--out", str(tmp_path / "o"))
    assert code == 2, err
    assert "params.hyperparams.sample_steps" in err and "Traceback" not in err


def test_diffusion_refuses_images():
    from wnbench.gen.kind import Params, validate
    from wnbench.suite.kinds import Budget, RunSpec

    spec = RunSpec(
        kind="gen",
        task="digits",
        algo="diffusion",
        norm={"name": "none"},
        seed=0,
        params=Params(),
        budget=Budget(60),
    )
    assert validate(spec) == [
        "task: the diffusion model takes 2-D points, not images ('digits'); 2-D datasets: ring8, grid25, "
        "swissroll, checkerboard, spirals, moons, pinwheel, circles"
    ]


def test_checkpoint_round_trip_gives_identical_samples(tmp_path):
    pl.seed_everything(0, verbose=False)
    module, dm, _, _ = build_run("diffusion", "pinwheel", "weight_ddi", hyperparams={"sample_steps": 15})
    trainer = _fit(module, dm, 30, tmp_path)
    path = tmp_path / "diffusion.ckpt"
    trainer.save_checkpoint(path)
    loaded = Diffusion.load_from_checkpoint(path)
    assert loaded.norm.label == "weight_ddi" and loaded.sample_steps == 15
    assert torch.equal(loaded.data_mean, module.data_mean) and torch.equal(loaded.data_std, module.data_std)
    assert torch.equal(loaded.sample(300, seed=5), module.sample(300, seed=5))
    assert not torch.equal(loaded.sample(300, seed=6), module.sample(300, seed=5))


@pytest.mark.parametrize("norm", NORMS)
def test_every_norm_trains_and_samples(norm, tmp_path):
    pl.seed_everything(0, verbose=False)
    module, dm, _, extras = build_run("diffusion", "circles", norm, hyperparams={"sample_steps": 5})
    assert extras["norms"] == {"denoiser": norm}
    before = {k: v.clone() for k, v in module.state_dict().items()}
    _fit(module, dm, 5, tmp_path)
    assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    x = module.sample(64, seed=0)
    assert x.shape == (64, 2) and torch.isfinite(x).all()
    if norm == "forced_weight":  # projected after every step (NormMaintained): rows back at norm sqrt(fan_in)
        layers = projected_modules(module.denoiser)
        assert layers
        for layer in layers:
            rows = layer.weight.detach().flatten(1).norm(dim=1)
            torch.testing.assert_close(rows, torch.full_like(rows, layer.weight[0].numel() ** 0.5))


def test_train_gen_reports_the_energy_distance_and_its_floor(tmp_path):
    record = train_gen("diffusion", "ring8", "none", seed=0, max_steps=20, run_dir=tmp_path,
                       hyperparams={"sample_steps": 10})  # fmt: skip
    final = record["final"]
    assert {"energy_distance", "energy_distance_floor", "hq_coverage_pct", "denoising_loss_test"} <= set(
        final
    )
    assert abs(final["energy_distance_floor"]) < 0.01 < final["energy_distance"]
    assert record["train_batches"] == 20 and record["norms"] == {"denoiser": "none"}
    assert (tmp_path / "samples.png").stat().st_size > 1000


def test_smoke_profile_is_valid_and_covers_every_model_on_two_densities():
    from wnbench.suite import load_suite

    suite = load_suite(ROOT / "suites" / "gen-v3.yaml", "smoke", run_kind_checks=True)
    cells = {(r.algo, r.task) for r in suite.runs}
    assert cells == {(m, t) for m in ("gan", "vae", "diffusion") for t in ("ring8", "moons")}
    assert {r.norm_label for r in suite.runs if r.algo == "diffusion"} >= set(NORMS)
    baseline = load_suite(ROOT / "suites" / "gen-v3.yaml", "baseline")
    assert len(baseline.runs) == 8 * 3 * 5 and {r.norm_label for r in baseline.runs} == {"none"}


def test_smoke_profile_runs(tmp_path, monkeypatch, capsys):
    """``wnbench run suites/gen-v3.yaml --profile smoke``: 18 runs, ~35 s wall with 2 workers on 2 idle cores."""
    import json

    from wnbench import cli

    out = tmp_path / "out"
    argv = ["run", str(ROOT / "suites/gen-v3.yaml"), "--profile", "smoke", "--no-wandb", "--workers", "2"]
    monkeypatch.setattr(sys, "argv", ["wnbench", *argv, "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 0, capsys.readouterr()
    records = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/record.json"))]
    assert len(records) == 18
    for record in records:
        metrics = record["metrics"]
        assert record["status"] == "finished", record["error"]
        assert metrics["train_batches"] == 20
        assert abs(metrics["energy_distance_floor"]) < 0.01 and metrics["energy_distance"] > 0, metrics
