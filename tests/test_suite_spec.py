"""Suite files: grid expansion, precedence of parameters, run identity, and the bad-suite corpus (exit 2, no traceback)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from wnbench.errors import UserError
from wnbench.suite import load_suite, parse_overrides, run_id_of

ROOT = Path(__file__).resolve().parents[1]
BAD_SUITES = sorted((ROOT / "tests" / "bad_suites").glob("*.yaml"))


def write_suite(folder: Path, body: str) -> Path:
    """A suite file in ``folder`` with a configs/ beside it holding the toy config."""
    (folder / "configs" / "toy").mkdir(parents=True, exist_ok=True)
    (folder / "configs" / "toy" / "regression.yaml").write_text("lr: 0.05\nbatch_size: 32\nnoise: 0.2\n")
    path = folder / "suite.yaml"
    path.write_text(body)
    return path


GRID_SUITE = """
name: grid
claims: [C5]
profiles:
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [none, batch, {name: group, groups: 4}]
    config: toy/regression.yaml
    params: {batch_size: 16}
    sweep: {lr: [0.001, 0.01], noise: [0.0, 0.5]}
    seeds: [3, 7]
    budget: {time_limit_s: 30, steps: 20}
    grids:
      - {}
      - {tasks: [regression_wide], sweep: {lr: [0.3]}, seeds: 1}
"""


def test_grid_expands_to_the_cartesian_product_with_parameters_in_precedence_order(tmp_path):
    suite = load_suite(write_suite(tmp_path, GRID_SUITE))
    first = [r for r in suite.runs if r.task == "regression"]
    second = [r for r in suite.runs if r.task == "regression_wide"]
    assert len(first) == 3 * 2 * 2 * 2  # norms x lr x noise x seeds
    assert len(second) == 3 * 1 * 2 * 1  # grid item overrides lr and seeds
    assert {r.seed for r in first} == {3, 7} and {r.seed for r in second} == {0}
    assert {r.params["lr"] for r in first} == {0.001, 0.01}  # sweep beats the config file's 0.05
    assert {r.params["batch_size"] for r in suite.runs} == {16}  # params beat the config file
    assert {r.norm_label for r in suite.runs} == {"none", "batch", "group[groups=4]"}
    assert len({r.run_id for r in suite.runs}) == len(suite.runs)
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.run_id) for r in suite.runs)


def test_run_ids_are_stable_and_depend_on_what_changes_results_only(tmp_path):
    path = write_suite(tmp_path, GRID_SUITE)
    ids = [r.run_id for r in load_suite(path).runs]
    assert ids == [r.run_id for r in load_suite(path).runs]
    # the time limit is an execution budget, not part of the result: same ids
    assert ids == [r.run_id for r in load_suite(path, overrides={"budget.time_limit_s": 99}).runs]
    # steps and hyperparameters change results: new ids
    assert not set(ids) & {r.run_id for r in load_suite(path, overrides={"budget.steps": 21}).runs}
    assert run_id_of({"a": 1, "b": [1, 2]}) == run_id_of({"b": [1, 2], "a": 1})


def test_set_overrides_parse_yaml_scalars_and_apply_to_every_grid(tmp_path):
    assert parse_overrides(["params.lr=1e-3", "seeds=2", "params.hidden=[8, 8]", "params.fault=nan"]) == {
        "params.lr": 1e-3,
        "seeds": 2,
        "params.hidden": [8, 8],
        "params.fault": "nan",
    }
    suite = load_suite(write_suite(tmp_path, GRID_SUITE), overrides={"seeds": 1, "sweep.lr": [0.02]})
    assert {r.seed for r in suite.runs} == {0}
    assert {r.params["lr"] for r in suite.runs} == {0.02}
    with pytest.raises(UserError) as err:
        load_suite(write_suite(tmp_path, GRID_SUITE), overrides={"params.lr": -1, "sweep": {}})
    assert "--set params.lr: Input should be greater than 0 (got -1)" in err.value.render()
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_overrides(["lr"])


@pytest.mark.parametrize(
    ("name", "profile"), [("smoke", "smoke"), ("smoke", "default"), ("toy_cpu", "default")]
)
def test_toy_suites_in_the_repository_are_valid(name, profile):
    suite = load_suite(ROOT / "suites" / f"{name}.yaml", profile)
    assert suite.runs and {r.kind for r in suite.runs} == {"toy"}


def _corpus_case(path: Path) -> tuple[str | None, list[str]]:
    text = path.read_text()
    profile = re.findall(r"^# profile: (\S+)", text, re.M)
    return (profile[0] if profile else None), re.findall(r"^# expect: (.+)$", text, re.M)


@pytest.mark.parametrize("path", BAD_SUITES, ids=[p.stem for p in BAD_SUITES])
def test_bad_suite_exits_2_listing_the_problem_with_its_yaml_path(path, monkeypatch, capsys):
    from wnbench import cli

    profile, expected = _corpus_case(path)
    assert expected, f"{path.name} lacks an '# expect:' line"
    argv = ["wnbench", "run", str(path), "--dry-run"] + (["--profile", profile] if profile else [])
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for message in expected:
        assert message in err, f"{message!r} not in:\n{err}"


def test_bad_suite_through_the_real_cli_has_no_traceback():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "wnbench"),
            "run",
            str(ROOT / "tests/bad_suites/several_problems.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid suite (2 problems)" in result.stderr


@pytest.fixture
def probe_kind(tmp_path, monkeypatch):
    """Register run kind ``probe`` backed by a module written to ``tmp_path`` (source given by the test)."""
    from wnbench.suite import kinds

    def register(source: str, *, identity: bool = False) -> tuple[Path, str]:
        module = f"probe_kind_{tmp_path.name.replace('-', '_')}"
        (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setitem(
            kinds._KINDS,
            "probe",
            kinds.RunKind(
                "probe", f"{module}:Params", f"{module}:run", None, f"{module}:identity" if identity else None
            ),
        )
        suite = tmp_path / "probe.yaml"
        suite.write_text(
            "name: probe\nclaims: [C5]\nprofiles:\n  default: {kind: probe, tasks: [t], algos: [a], "
            "norms: [none, batch], sweep: {x: [1, 2]}, seeds: 2}\n"
        )
        return suite, module

    return register


def test_a_kind_module_that_fails_to_import_is_a_clear_error_at_load(probe_kind):
    path, module = probe_kind("raise RuntimeError('boom: missing licence file')\n")
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert err.value.problems == [
        f"profiles.default.kind: run kind 'probe': importing {module} failed: "
        "RuntimeError: boom: missing licence file"
    ]


PROBE_WITH_IDENTITY = """
from pydantic import BaseModel, ConfigDict
calls = []
class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = 0
def identity(spec):
    calls.append((spec.norm["name"], spec.params.x))
    return {"table": {"x": spec.params.x, "scale": SCALE, "nan": float("nan")}}
def run(spec, ctx):
    return {}
SCALE = 1.5
"""


def test_identity_hook_result_is_part_of_the_run_id_and_of_the_config(probe_kind):
    import importlib

    path, module_name = probe_kind(PROBE_WITH_IDENTITY, identity=True)
    module = importlib.import_module(module_name)
    first = load_suite(path)
    assert len(first.runs) == 8 and len(module.calls) == 4  # once per (norm, params), not per seed
    assert first.runs[0].config()["resolved"] == {"table": {"x": 1, "scale": 1.5, "nan": None}}
    module.SCALE = 2.0  # what the kind reads changed: every run is a different run now
    second = load_suite(path)
    assert not {r.run_id for r in first.runs} & {r.run_id for r in second.runs}
    module.SCALE = 1.5
    assert [r.run_id for r in load_suite(path).runs] == [r.run_id for r in first.runs]


def test_identity_hook_returning_a_process_specific_repr_is_refused(probe_kind):
    path, _ = probe_kind(
        PROBE_WITH_IDENTITY.replace('"scale": SCALE', '"activation": lambda x: x'), identity=True
    )
    with pytest.raises(TypeError, match="changes from process to process"):
        load_suite(path)


def test_a_suite_or_config_file_that_is_not_utf8_is_refused_with_its_path(tmp_path):
    path = write_suite(tmp_path, "name: x\nclaims: [C5]\n# caf\xe9\nprofiles: {}\n")
    path.write_bytes(path.read_text().encode("latin-1"))
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset 26); save it as UTF-8"

    path = write_suite(tmp_path, GRID_SUITE)
    config = tmp_path / "configs" / "toy" / "regression.yaml"
    config.write_bytes(b"lr: 0.05\nnoise: 0.2 # \xff\n")
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert f"profiles.default.config: config file {config}: not UTF-8 text (byte 0xff at offset 22)" in (
        err.value.render()
    )


def test_an_absurd_grid_is_refused_before_it_is_expanded(tmp_path):
    import time

    path = write_suite(tmp_path, GRID_SUITE)
    started = time.process_time()
    with pytest.raises(UserError, match=r"--set seeds: 1,000,000,000 seeds, more than the limit of 10,000"):
        load_suite(path, overrides={"seeds": 10**9})
    big_sweep = {"sweep.lr": [0.1] * 10, "sweep.noise": list(range(100)), "sweep.data_seed": list(range(100))}
    with pytest.raises(
        UserError,
        match=r"asks for 1,200,000 runs, more than the limit of 100,000 \(profiles.default.grids\[0\]: 1 tasks x 1 algos x 3 norms x 100,000 sweep points x 2 seeds = 600,000\)",
    ):
        load_suite(path, overrides={**big_sweep, "seeds": [1, 2]})
    assert time.process_time() - started < 1.0  # nothing was expanded
    # At the limits exactly, the grid is expanded.
    limits = {"seeds": 10_000, "norms": ["none"], "sweep": {}}
    assert len(load_suite(path, overrides=limits).runs) == 2 * 10_000
