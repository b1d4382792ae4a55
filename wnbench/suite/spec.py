"""Suite files: YAML -> validated grid -> the list of fully resolved runs, every problem reported with its YAML path.

A suite file (see ``suites/smoke.yaml``)::

    name: smoke                      # W&B group, default output folder
    claims: [C5]                     # ids from the claims registry (wnbench/report/registry.yaml); W&B job_type
    profiles:                        # `--profile` picks one; default: "default" if present, else the first
      default:
        kind: toy                    # a registered run kind (wnbench.suite.kinds)
        tasks: [regression]          # or {id: regression, config: ..., params: {...}} per task
        algos: [mlp]                 # model / algorithm names the kind knows
        norms: [none, batch, weight_ddi, {name: group, groups: 4}]   # wnbench.norms.make_norm names/options
        config: toy/regression.yaml  # under configs/; may use {kind} {task} {algo}; a list merges in order
        params: {steps: 200}         # overrides the config file
        sweep: {lr: [0.001, 0.01]}   # cartesian product over the listed values
        seeds: 3                     # a count (0..n-1) or a list
        budget: {time_limit_s: 60, steps: 300}   # also cpus, gpus: what a Ray task reserves per run
        tune: {sweep: {lr: [0.001, 0.01]}, seeds: 3}   # optional: tune per (cell, norm) on seeds 1000+, then
                                     # run the choice on `seeds` (wnbench.suite.tuning)
        grids:                       # optional: several grids sharing the fields above (each may override any)
          - {tasks: [regression_wide], sweep: {lr: [0.003]}}

Parameters of a run, lowest precedence first: config file(s), task config, ``params``, task ``params``, ``sweep``
value, ``--set`` override. ``--set key=value`` takes a dotted path into the profile (``params.lr=0.1``,
``seeds=1``, ``budget.steps=50``; values parsed as YAML scalars) and applies to every grid of the profile.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wnbench.errors import UserError

from .kinds import Budget, RunSpec, get_kind, json_safe

__all__ = ["ResolvedRun", "Suite", "load_suite", "parse_overrides", "registered_claims", "run_id_of"]
DEFAULT_TIME_LIMIT_S = 3600.0
#: Sanity bounds, checked arithmetically before a grid is expanded (a typo such as ``seeds: 1000000000`` must be
#: refused at once, not hang the expansion).
MAX_RUNS = 100_000
MAX_SEEDS = 10_000


class _BudgetModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_limit_s: float = Field(DEFAULT_TIME_LIMIT_S, gt=0)
    steps: int | None = Field(None, ge=1)
    cpus: float = Field(
        1.0, gt=0, description="Ray: CPUs to reserve per run (the local pool runs one per worker)"
    )
    gpus: float = Field(0.0, ge=0, description="Ray: GPUs to reserve per run")


class _GridFields(BaseModel):
    """Fields of one grid (all optional here: a profile may spread them over ``grids``)."""

    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    tasks: list[Any] | None = None
    algos: list[str] | None = None
    norms: list[Any] | None = None
    config: str | list[str] | None = None
    params: dict[str, Any] | None = None
    sweep: dict[str, list[Any]] | None = None
    seeds: Any = None
    budget: _BudgetModel | None = None
    tune: dict[str, Any] | None = None  # a tuning stage (wnbench.suite.tuning)


class _ProfileModel(_GridFields):
    grids: list[dict[str, Any]] | None = None


class _SuiteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    claims: list[str] = Field(min_length=1)
    description: str = ""
    profiles: dict[str, dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class ResolvedRun:
    """One run as the engine ships it to a worker: plain JSON-able data plus its stable id."""

    run_id: str
    suite: str
    claims: tuple[str, ...]
    kind: str
    task: str
    algo: str
    norm: dict[str, Any]
    norm_label: str
    seed: int
    params: dict[str, Any]
    budget: dict[str, Any]
    resolved: dict[str, Any] | None = None  # the kind's ``identity`` hook's result (part of the run id)
    stage: str = "eval"  # "tune" / "tuned" in a grid with a tuning stage (wnbench.suite.tuning)
    tuning: dict[str, Any] | None = None  # tune: the grid and keys; tuned: the choice and what it came from

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.task}/{self.algo}/{self.norm_label}/seed{self.seed}"

    @property
    def time_limit_s(self) -> float:
        return float(self.budget["time_limit_s"])

    def config(self) -> dict[str, Any]:
        """The record's ``config`` block (and the W&B run config)."""
        config = {
            "kind": self.kind,
            "task": self.task,
            "algo": self.algo,
            "norm": self.norm_label,
            "norm_spec": self.norm,
            "seed": self.seed,
            "params": self.params,
            "budget": self.budget,
            "resolved": self.resolved,
        }
        if self.stage != "eval":
            config.update(stage=self.stage, tuning=self.tuning)
        return config

    def to_spec(self) -> RunSpec:
        """Rebuild the kind's typed :class:`RunSpec` (in the worker, or for ``validate`` hooks)."""
        model = get_kind(self.kind).params_model()
        return RunSpec(
            kind=self.kind,
            task=self.task,
            algo=self.algo,
            norm=dict(self.norm),
            seed=self.seed,
            params=model(**self.params),
            budget=Budget(time_limit_s=self.time_limit_s, steps=self.budget.get("steps")),
            suite=self.suite,
            claims=self.claims,
        )


def run_id_of(identity: Mapping[str, Any]) -> str:
    """Stable id of a resolved run: sha256 of its sorted-key JSON (not Python's ``hash()``), 16 hex digits."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Suite:
    """A loaded, validated suite profile: its runs in grid order."""

    name: str
    claims: tuple[str, ...]
    profile: str
    path: Path
    runs: list[ResolvedRun] = field(default_factory=list)
    tune_groups: list[Any] = field(default_factory=list)  # wnbench.suite.tuning.TuneGroup, one per tuned cell

    @property
    def kinds(self) -> list[str]:
        return sorted({r.kind for r in self.runs})


# -- helpers ------------------------------------------------------------------------------------------------------


def _path(prefix: str, loc: Sequence[Any]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_error(
    e: Mapping[str, Any], where: str, model: type[BaseModel] | None = None, depth: int = 1
) -> str:
    """One pydantic error as ``path: message`` (unknown keys get the known ones, with a close match first)."""
    loc = list(e["loc"])
    if e["type"] == "extra_forbidden":
        known = list(model.model_fields) if model is not None and len(loc) == depth else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{where}: unknown key{hint}" + (f"; known: {', '.join(known)}" if known else "")
    if e["type"] == "missing":
        return f"{where}: required"
    got = e.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) or got is None else ""
    return f"{where}: {e['msg']}{shown}"


def _pydantic_problems(err: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> list[str]:
    return [_format_error(e, _path(prefix, e["loc"]), model) for e in err.errors()]


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)")


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["params.lr=0.1", "seeds=2"]`` -> ``{"params.lr": 0.1, "seeds": 2}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
            raise UserError(f"--set {pair!r}: expected KEY=VALUE with KEY a dotted path into the profile")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
            if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
                value = float(value)  # YAML 1.1 reads "1e-3" as a string
            out[key] = value
        except yaml.YAMLError as err:
            raise UserError(f"--set {pair!r}: value is not valid YAML ({err})") from err
    return out


#: Run fields ``--only`` can select on (besides ``params.KEY``).
ONLY_FIELDS = ("task", "algo", "norm", "seed")


def _only_value(raw: str) -> Any:
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)
    return value


def _split_top_level(raw: str) -> list[str]:
    """``a,b[x=1,y=2],[1, 2]`` -> ``a``, ``b[x=1,y=2]``, ``[1, 2]``: commas inside brackets belong to the value (a
    norm label such as ``batch[bn_mode=running,placement=pre]``, a YAML list)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(raw):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    return parts


def select_runs(suite: Suite, only: Sequence[str]) -> Suite:
    """Keep the runs that match every ``FIELD=V1,V2`` filter (``task``, ``algo``, ``norm`` as the run label
    prints it, ``seed`` as integers, or ``params.KEY`` compared as YAML values): one slice of a profile, with the same run ids, so its
    records resume and publish with the rest. Tuning groups go with their runs. A bad filter, or one that selects
    nothing, is a :class:`UserError`."""
    if not only:
        return suite
    filters: list[tuple[str, list[Any]]] = []
    for pair in only:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not raw.strip():
            raise UserError(f"--only {pair!r}: expected FIELD=VALUE[,VALUE...]")
        if key not in ONLY_FIELDS and not (key.startswith("params.") and len(key) > len("params.")):
            raise UserError(
                f"--only {pair!r}: unknown field {key!r}; use {', '.join(ONLY_FIELDS)} or params.KEY"
            )
        try:
            values = [
                _only_value(v) if key.startswith("params.") else v.strip() for v in _split_top_level(raw)
            ]
        except yaml.YAMLError as err:
            raise UserError(f"--only {pair!r}: value is not valid YAML ({err})") from err
        if key == "seed":
            if not all(re.fullmatch(r"-?\d+", v) for v in values):
                raise UserError(f"--only {pair!r}: seeds must be integers")
            values = [int(v) for v in values]
        filters.append((key, values))

    def field_of(run: ResolvedRun, key: str) -> Any:
        if key.startswith("params."):
            return run.params.get(key.removeprefix("params."))
        return run.norm_label if key == "norm" else getattr(run, key)

    def keep(run: ResolvedRun) -> bool:
        return all(field_of(run, key) in values for key, values in filters)

    runs = [r for r in suite.runs if keep(r)]
    if not runs:
        seen = {key: sorted({str(field_of(r, key)) for r in suite.runs}) for key, _ in filters}
        raise UserError(
            f"--only {' '.join(only)}: selects none of the {len(suite.runs)} runs of {suite.name}/{suite.profile}",
            [
                f"{key}: the profile has {', '.join(v[:12])}{' ...' if len(v) > 12 else ''}"
                for key, v in seen.items()
            ],
        )
    ids = {r.run_id for r in runs}
    suite.runs = runs
    suite.tune_groups = [g for g in suite.tune_groups if ids.intersection(g.run_ids)]
    return suite


def _apply_overrides(grid: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    grid = copy.deepcopy(grid)
    for key, value in overrides.items():
        node = grid
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return grid


def _find_configs_root(suite_path: Path) -> Path:
    for folder in [suite_path.parent, *suite_path.parent.parents]:
        if (folder / "configs").is_dir():
            return folder / "configs"
    return Path.cwd() / "configs"


def _norm_dict(entry: Any) -> dict[str, Any]:
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
        return dict(entry)
    raise ValueError(f"expected a norm name or a mapping with 'name', got {entry!r}")


def _task_entry(entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
        unknown = sorted(set(entry) - {"id", "config", "params"})
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in task; keys: id, config, params"
            )
        if "params" in entry and not isinstance(entry["params"], Mapping):
            raise ValueError("task 'params' must be a mapping")
        return entry["id"], dict(entry)
    raise ValueError(f"expected a task id or a mapping with 'id', got {entry!r}")


def _seeds(value: Any) -> list[int]:
    if isinstance(value, bool):
        raise ValueError(f"expected a seed count or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"need at least one seed, got {value}")
        return list(range(value))
    if isinstance(value, list):
        if not value:
            raise ValueError("need at least one seed, got an empty list")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
            raise ValueError(f"seeds must be integers, got {value!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds repeat: {value!r}")
        return list(value)
    raise ValueError(f"expected a seed count or a list of seeds, got {value!r}")


class _Problems(list):
    def add(self, where: str, message: str) -> None:
        line = f"{where}: {message}"
        if line not in self:
            self.append(line)


# -- loading --------------------------------------------------------------------------------------------------------


def load_suite(
    path: str | Path,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    run_kind_checks: bool = True,
) -> Suite:
    """Read, validate and expand one profile of a suite file. Raises :class:`UserError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"suite file not found: {path}")
    try:
        text = _read_text(path)
    except ValueError as err:  # not UTF-8
        raise UserError(f"{path}: {err}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a suite file is a YAML mapping (name, claims, profiles)")
    try:
        suite_model = _SuiteModel(**raw)
    except ValidationError as err:
        raise UserError(f"{path}: invalid suite", _pydantic_problems(err, "", _SuiteModel)) from err
    problems = _Problems()
    known = registered_claims()
    for i, claim in enumerate(suite_model.claims):
        if claim not in known:
            problems.add(f"claims[{i}]", f"unknown claim {claim!r}; known: {', '.join(known)}")

    profiles = suite_model.profiles
    if profile is None:
        profile = "default" if "default" in profiles else next(iter(profiles))
    if profile not in profiles:
        raise UserError(f"{path}: profile '{profile}' does not exist; profiles: {', '.join(profiles)}")
    prefix = f"profiles.{profile}"
    raw_profile = profiles[profile]
    if not isinstance(raw_profile, dict):
        raise UserError(f"{path}: invalid suite", [f"{prefix}: a profile is a mapping of grid fields"])

    overrides = dict(overrides or {})
    suite = Suite(name=suite_model.name, claims=tuple(suite_model.claims), profile=profile, path=path)
    configs_root = _find_configs_root(path.resolve())

    grids = raw_profile.get("grids")
    try:
        _ProfileModel(**raw_profile)
    except ValidationError as err:
        # Only `grids` is checked here; every other field is checked (and reported) per grid below.
        grid_errors = [e for e in err.errors() if e["loc"][0] == "grids"]
        for e in grid_errors:
            problems.add(*_format_error(e, _path(prefix, e["loc"]), _ProfileModel).split(": ", 1))
        if grid_errors:
            raise UserError(f"{path}: invalid suite", list(problems)) from err
    base = {k: v for k, v in raw_profile.items() if k != "grids"}
    expansions = []
    for g, item in enumerate(grids or [{}]):
        item_prefix = f"{prefix}.grids[{g}]" if grids else prefix
        origins = {key: item_prefix for key in item}
        merged = _apply_overrides(_deep_merge(base, item), overrides)
        origins.update({key: f"--set {key}" for key in overrides})
        expansions.append((merged, origins, item_prefix))
    _check_grid_size(path, profile, prefix, expansions)
    seen_ids: set[str] = set()
    for merged, origins, _ in expansions:
        _expand_grid(suite, merged, origins, prefix, configs_root, problems, seen_ids, run_kind_checks)

    if problems:
        raise UserError(
            f"{path}: invalid suite ({len(problems)} problem{'s' * (len(problems) != 1)})", list(problems)
        )
    return suite


def registered_claims() -> list[str]:
    """The claim ids a suite may name: those of the claims registry (``$WNBENCH_REGISTRY`` or the built-in one),
    read on first use so that importing the suite machinery stays light."""
    from wnbench.report.registry import load_registry

    return load_registry().ids


def _read_text(path: Path) -> str:
    """A suite or config file's text; ``ValueError`` naming the first bad byte when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8"
        ) from None


def _count(value: Any) -> int:
    """How many entries a grid field contributes to the product (1 for a malformed one: validation reports it)."""
    return len(value) if isinstance(value, list | dict) and value else 1


def _check_grid_size(path: Path, profile: str, prefix: str, expansions: list[tuple[dict, dict, str]]) -> None:
    """Refuse absurd grids from their field lengths alone, before anything is expanded."""
    sizes = []
    for grid, origins, _ in expansions:
        seeds = grid.get("seeds")
        n_seeds = seeds if isinstance(seeds, int) and not isinstance(seeds, bool) else _count(seeds)
        if n_seeds > MAX_SEEDS:
            where = _origin(origins, prefix, "seeds")
            raise UserError(f"{path}: {where}: {n_seeds:,} seeds, more than the limit of {MAX_SEEDS:,}")
        sweep = grid.get("sweep")
        points = math.prod(_count(v) for v in sweep.values()) if isinstance(sweep, dict) else 1
        factors = [_count(grid.get(key)) for key in ("tasks", "algos", "norms")] + [points, max(n_seeds, 1)]
        sizes.append((math.prod(factors), factors))
    total = sum(size for size, _ in sizes)
    if total > MAX_RUNS:
        biggest = max(range(len(sizes)), key=lambda i: sizes[i][0])
        size, factors = sizes[biggest]
        names = ("tasks", "algos", "norms", "sweep points", "seeds")
        product = " x ".join(f"{n:,} {name}" for n, name in zip(factors, names, strict=True))
        raise UserError(
            f"{path}: profile '{profile}' asks for {total:,} runs, more than the limit of {MAX_RUNS:,} "
            f"({expansions[biggest][2]}: {product} = {size:,}); split it into smaller profiles"
        )


def _origin(origins: Mapping[str, str], prefix: str, dotted: str) -> str:
    """YAML path of a field: from ``--set``, a ``grids[i]`` item, or the profile itself."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key not in origins:
            key = re.sub(r"\[\d+\]$", "", key)  # "norms[0]" comes from wherever "norms" does
        if key in origins:
            where = origins[key]
            if where.startswith("--set"):
                return where
            return where + "." + dotted
    return prefix + "." + dotted


@dataclass
class _Expansion:
    """What every step of one grid's expansion shares: where runs go, where problems go, how paths are named."""

    suite: Suite
    origins: dict[str, str]
    prefix: str
    configs_root: Path
    problems: _Problems
    seen_ids: set[str]
    run_kind_checks: bool
    stage: str = "eval"
    tuning: dict[str, Any] | None = None

    def where(self, dotted: str) -> str:
        return _origin(self.origins, self.prefix, dotted)


@dataclass
class _Hooks:
    """A kind's validate and identity hooks, and their results per (task, algo, norm, params): run once, not per
    seed."""

    validate: Callable[[RunSpec], Sequence[str] | None] | None
    identity: Callable[[RunSpec], Mapping[str, Any]] | None
    checked: dict[str, dict[str, Any] | None] = field(default_factory=dict)


def _expand_grid(
    suite: Suite,
    grid: dict[str, Any],
    origins: dict[str, str],
    prefix: str,
    configs_root: Path,
    problems: _Problems,
    seen_ids: set[str],
    run_kind_checks: bool,
    stage: str = "eval",
    tuning: dict[str, Any] | None = None,
) -> None:
    """Validate one merged grid and append its runs (task x algo x sweep point x norm x seed) to ``suite.runs``;
    every problem goes to ``problems`` with its YAML path, so one pass lists them all. An evaluation grid with a
    ``tune`` section also plans its tuning stage."""
    ex = _Expansion(suite, origins, prefix, configs_root, problems, seen_ids, run_kind_checks, stage, tuning)
    model = _grid_model(grid, ex)
    seeds = _grid_seeds(model, ex)
    kind, params_model = _grid_kind(model, ex)
    norms = _grid_norms(model, ex)
    tasks = _grid_tasks(model, ex)
    if params_model is None or not seeds:
        return
    hooks = _grid_hooks(kind, ex)
    if hooks is None:
        return
    budget = (model.budget or _BudgetModel()).model_dump()
    for t, task_id, task_extra in tasks:
        for a, algo in enumerate(model.algos or []):
            base_params, config_sources = _base_params(model, t, task_id, task_extra, algo, ex)
            for combo in _sweep_combos(model.sweep or {}):
                params_json = _point_params(
                    model, t, task_extra, base_params, config_sources, combo, params_model, ex
                )
                if params_json is None:
                    continue
                for norm_index, (norm_spec, norm_label) in enumerate(norms):
                    field_where = {"task": ex.where(f"tasks[{t}]"), "algo": ex.where(f"algos[{a}]"),
                                   "norm": ex.where(f"norms[{norm_index}]")}  # fmt: skip
                    identity = {"kind": model.kind, "task": task_id, "algo": algo, "norm": norm_spec, "seed": None,
                                "params": params_json, "steps": budget["steps"]}  # fmt: skip
                    _add_runs(identity, norm_label, seeds, budget, params_model, hooks, field_where, ex)
    if stage == "eval" and model.tune is not None:
        _plan_tune(grid, seeds, ex)


def _grid_model(grid: dict[str, Any], ex: _Expansion) -> _GridFields:
    """The grid's fields validated; an invalid field is listed and left out, so the valid ones are still checked."""
    invalid: set[str] = set()
    try:
        model = _GridFields(**grid)
    except ValidationError as err:
        for e in err.errors():
            ex.problems.add(*_format_error(e, ex.where(_path("", e["loc"])), _GridFields).split(": ", 1))
            invalid.add(str(e["loc"][0]))
        # Go on with the valid fields, so one run of `wnbench run` lists every problem.
        model = _GridFields(
            **{k: v for k, v in grid.items() if k not in invalid and k in _GridFields.model_fields}
        )
    for required in ("kind", "tasks", "algos", "norms", "seeds"):
        if getattr(model, required) is None and required not in invalid:
            ex.problems.add(ex.where(required), "required")
    for listed in ("tasks", "algos", "norms"):
        if getattr(model, listed) == []:
            ex.problems.add(ex.where(listed), "must list at least one entry")
    for key, values in (model.sweep or {}).items():
        if not values:
            ex.problems.add(ex.where(f"sweep.{key}"), "must list at least one value")
    return model


def _grid_seeds(model: _GridFields, ex: _Expansion) -> list[int]:
    if model.seeds is None:
        return []
    try:
        return _seeds(model.seeds)
    except ValueError as err:
        ex.problems.add(ex.where("seeds"), str(err))
        return []


def _grid_kind(model: _GridFields, ex: _Expansion) -> tuple[Any, type[BaseModel] | None]:
    """The run kind and its params model; ``(None, None)`` when the kind is missing or unknown."""
    if model.kind is None:
        return None, None
    try:
        kind = get_kind(model.kind)
        return kind, kind.params_model()
    except UserError as err:
        ex.problems.add(ex.where("kind"), str(err))
        return None, None


def _grid_norms(model: _GridFields, ex: _Expansion) -> list[tuple[dict[str, Any], str]]:
    """(norm spec, label) per valid ``norms`` entry, each built once by the norm factory to check it."""
    from wnbench.norms import NormError, make_norm

    norms: list[tuple[dict[str, Any], str]] = []
    for i, entry in enumerate(model.norms or []):
        try:
            spec = _norm_dict(entry)
            options = {k: v for k, v in spec.items() if k != "name"}
            norms.append((spec, make_norm(spec["name"], **options).label))
        except (NormError, ValueError, TypeError) as err:
            ex.problems.add(ex.where(f"norms[{i}]"), str(err))
    return norms


def _grid_tasks(model: _GridFields, ex: _Expansion) -> list[tuple[int, str, dict[str, Any]]]:
    """(index, task id, its extra fields) per valid ``tasks`` entry."""
    tasks: list[tuple[int, str, dict[str, Any]]] = []
    for i, entry in enumerate(model.tasks or []):
        try:
            task_id, extra = _task_entry(entry)
            tasks.append((i, task_id, extra))
        except ValueError as err:
            ex.problems.add(ex.where(f"tasks[{i}]"), str(err))
    return tasks


def _grid_hooks(kind: Any, ex: _Expansion) -> _Hooks | None:
    """The kind's hooks (validate only with ``run_kind_checks``); ``None`` when its identity hook cannot load."""
    validate = kind.validate_function() if ex.run_kind_checks else None
    try:
        identity = kind.identity_function()
    except UserError as err:
        ex.problems.add(ex.where("kind"), str(err))
        return None
    return _Hooks(validate, identity)


def _base_params(
    model: _GridFields, t: int, task_id: str, task_extra: Mapping[str, Any], algo: str, ex: _Expansion
) -> tuple[dict[str, Any], dict[str, str]]:
    """One (task, algo)'s parameters before the sweep: config files < profile ``params`` < the task's ``params``;
    and the config file each config parameter came from."""
    fmt = {"kind": model.kind, "task": task_id, "algo": algo}
    config_params: dict[str, Any] = {}
    config_sources: dict[str, str] = {}
    config_entries = [("config", model.config)] + [(f"tasks[{t}].config", task_extra.get("config"))]
    for field_name, value in config_entries:
        for c, rel in enumerate([value] if isinstance(value, str) else (value or [])):
            field_path = field_name if isinstance(value, str) else f"{field_name}[{c}]"
            loaded = _load_config(rel, fmt, ex.configs_root, ex.where(field_path), ex.problems)
            config_params = _deep_merge(config_params, loaded)
            config_sources.update({k: f"{ex.configs_root.name}/{rel.format(**fmt)}" for k in loaded})
    base = _deep_merge(_deep_merge(config_params, model.params or {}), task_extra.get("params") or {})
    return base, config_sources


#: One sweep point: ((sweep key, (index in its list, value)), ...).
SweepCombo = tuple[tuple[str, tuple[int, Any]], ...]


def _sweep_combos(sweep: Mapping[str, Sequence[Any]]) -> list[SweepCombo]:
    """Every point of the sweep's product, each value with its index (for YAML paths); one empty point without."""
    if not sweep:
        return [()]
    return [
        tuple(zip(sweep, combo, strict=True))
        for combo in itertools.product(*[list(enumerate(v)) for v in sweep.values()])
    ]


def _point_params(
    model: _GridFields,
    t: int,
    task_extra: Mapping[str, Any],
    base_params: Mapping[str, Any],
    config_sources: Mapping[str, str],
    combo: SweepCombo,
    params_model: type[BaseModel],
    ex: _Expansion,
) -> dict[str, Any] | None:
    """A sweep point's parameters validated by the kind, as JSON data; ``None`` with the problems listed at the
    YAML path each bad value came from."""
    params = _deep_merge(base_params, {key: value for key, (_, value) in combo})
    try:
        return params_model(**params).model_dump(mode="json")
    except ValidationError as err:
        sources = {
            "sweep": {key: ex.where(f"sweep.{key}") + f"[{i}]" for key, (i, _) in combo},
            "task": {key: ex.where(f"tasks[{t}].params.{key}") for key in task_extra.get("params") or {}},
            "profile": {key: ex.where(f"params.{key}") for key in model.params or {}},
            "config": {key: f"{src}: {key}" for key, src in config_sources.items()},
        }
        for e in err.errors():
            ex.problems.add(*_param_error(e, sources, ex.where, params_model).split(": ", 1))
        return None


def _add_runs(
    identity: dict[str, Any],
    norm_label: str,
    seeds: Sequence[int],
    budget: Mapping[str, Any],
    params_model: type[BaseModel],
    hooks: _Hooks,
    field_where: Mapping[str, str],
    ex: _Expansion,
) -> None:
    """One run per seed of a (task, algo, norm, params) identity, after the kind's hooks checked it once; a run
    id already planned is not added twice."""
    if ex.stage == "tune":  # never the id of an evaluation run
        identity["stage"] = ex.stage
    resolved = _checked_identity(identity, seeds[0], budget, params_model, hooks, field_where, ex)
    if hooks.identity is not None:
        identity["resolved"] = resolved
    for seed in seeds:
        run = ResolvedRun(
            run_id=run_id_of({**identity, "seed": seed}),
            suite=ex.suite.name,
            claims=ex.suite.claims,
            kind=identity["kind"],
            task=identity["task"],
            algo=identity["algo"],
            norm=identity["norm"],
            norm_label=norm_label,
            seed=seed,
            params=identity["params"],
            budget=dict(budget),
            resolved=resolved,
            stage=ex.stage,
            tuning=ex.tuning,
        )
        if run.run_id not in ex.seen_ids:
            ex.seen_ids.add(run.run_id)
            ex.suite.runs.append(run)


def _checked_identity(
    identity: Mapping[str, Any],
    seed: int,
    budget: Mapping[str, Any],
    params_model: type[BaseModel],
    hooks: _Hooks,
    field_where: Mapping[str, str],
    ex: _Expansion,
) -> dict[str, Any] | None:
    """The kind's validate and identity hooks on one (task, algo, norm, params), run once and remembered: problems
    listed, then the identity hook's resolved settings (``None`` without the hook or after a problem)."""
    key = run_id_of(identity)
    if key in hooks.checked:
        return hooks.checked[key]
    # params as the run process will see them: rebuilt from their JSON form
    hook_spec = RunSpec(
        kind=identity["kind"], task=identity["task"], algo=identity["algo"], norm=dict(identity["norm"]), seed=seed,
        params=params_model(**identity["params"]), suite=ex.suite.name, claims=ex.suite.claims,
        budget=Budget(time_limit_s=budget["time_limit_s"], steps=budget["steps"]),
    )  # fmt: skip
    hook_problems = list(hooks.validate(hook_spec) or []) if hooks.validate else []
    for message in hook_problems:
        ex.problems.add(*_hook_problem(message, field_where, ex.where))
    resolved = None
    if hooks.identity is not None and not hook_problems:
        resolved = _resolve_identity(hooks.identity, hook_spec, field_where, ex.where, ex.problems)
    hooks.checked[key] = resolved
    return resolved


def _plan_tune(grid: dict[str, Any], seeds: list[int], ex: _Expansion) -> None:
    """The grid's tuning stage (wnbench.suite.tuning), expanding its grids through this same function."""
    from .tuning import plan_tune_stage

    def expand(
        g: dict[str, Any], o: dict[str, str], st: str, info: Any, seen=ex.seen_ids, sink=ex.problems
    ) -> None:
        _expand_grid(ex.suite, g, o, ex.prefix, ex.configs_root, sink, seen, ex.run_kind_checks, st, info)

    plan_tune_stage(ex.suite, grid, ex.origins, ex.where, seeds, ex.problems, expand)


def _resolve_identity(
    hook: Callable[[RunSpec], Mapping[str, Any]],
    spec: RunSpec,
    field_where: Mapping[str, str],
    where: Callable[[str], str],
    problems: _Problems,
) -> dict[str, Any] | None:
    """The kind's ``identity`` hook's result as JSON data; a UserError it raises becomes a listed problem."""
    try:
        resolved = hook(spec)
    except UserError as err:
        for message in err.problems or [str(err)]:
            problems.add(*_hook_problem(message, field_where, where))
        return None
    if not isinstance(resolved, Mapping):
        raise TypeError(f"run kind '{spec.kind}': identity() returned {type(resolved).__name__}, not a dict")
    resolved = json_safe(resolved)
    unstable = re.search(r"<[^\"]* at 0x[0-9a-fA-F]+>", json.dumps(resolved))
    if unstable:  # a repr with a memory address would give every process a different run id
        raise TypeError(
            f"run kind '{spec.kind}': identity() returned {unstable.group(0)}, whose repr changes from process "
            "to process; return plain JSON data (strings, numbers, lists, dicts)"
        )
    return resolved


def _param_error(
    error: Mapping[str, Any],
    sources: Mapping[str, Mapping[str, str]],
    where: Callable[[str], str],
    params_model: type[BaseModel],
) -> str:
    """A params validation error at the YAML path its value came from: sweep > task > profile > config file."""
    key = str(error["loc"][0]) if error["loc"] else ""
    location = next(
        (sources[origin][key] for origin in ("sweep", "task", "profile", "config") if key in sources[origin]),
        where(f"params.{key}"),  # not given anywhere (a required parameter), or an unknown one
    )
    sub_path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"][1:])
    return _format_error(error, location + sub_path, params_model)


def _hook_problem(
    message: str, field_where: Mapping[str, str], where: Callable[[str], str]
) -> tuple[str, str]:
    """A kind's ``validate`` message ("task: ...", "params.lr: ...") as (YAML path, message)."""
    head, sep, rest = message.partition(": ")
    if sep and head in field_where:
        return field_where[head], rest
    if sep and head.startswith("params."):
        return where(head), rest
    return where("kind"), message


def _load_config(
    rel: str, fmt: Mapping[str, str], root: Path, where: str, problems: _Problems
) -> dict[str, Any]:
    try:
        name = rel.format(**fmt)
    except (KeyError, IndexError, ValueError) as err:
        problems.add(where, f"bad placeholder in {rel!r} ({err}); use {{kind}}, {{task}} or {{algo}}")
        return {}
    file = Path(name) if Path(name).is_absolute() else root / name
    if not file.is_file():
        problems.add(where, f"config file not found: {name} (looked in {root})")
        return {}
    try:
        text = _read_text(file)
    except ValueError as err:  # not UTF-8
        problems.add(where, f"config file {file}: {err}")
        return {}
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        problems.add(where, f"config file {name} is not valid YAML: {err}")
        return {}
    if not isinstance(loaded, dict):
        problems.add(where, f"config file {name} must hold a mapping of parameters")
        return {}
    return loaded
