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
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wnbench.errors import UserError

from .kinds import Budget, RunSpec, get_kind

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
    """Read, validate and expand one profile of a suite file. Raises :class:`UserError` listing every problem,
    a design comparison of a named claim whose two arms differ in task or budget among them
    (:mod:`wnbench.suite.designs`)."""
    path = Path(path)
    suite_model = _read_suite_model(path)
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

    suite = Suite(name=suite_model.name, claims=tuple(suite_model.claims), profile=profile, path=path)
    configs_root = _find_configs_root(path.resolve())
    expansions = _merged_grids(path, raw_profile, prefix, dict(overrides or {}), problems)
    _check_grid_size(path, profile, prefix, expansions)
    from .grid import expand_grid  # the grid module builds on this one's models

    seen_ids: set[str] = set()
    where_of: dict[str, Any] = {}  # run id -> the YAML path of a field of the grid that planned it
    for merged, origins, _ in expansions:
        start = len(suite.runs)
        expand_grid(suite, merged, origins, prefix, configs_root, problems, seen_ids, run_kind_checks)
        where = functools.partial(_origin, origins, prefix)
        where_of.update({run.run_id: where for run in suite.runs[start:]})
    from .designs import check_design_comparisons

    check_design_comparisons(suite.runs, suite.claims, where_of, problems)

    if problems:
        raise UserError(
            f"{path}: invalid suite ({len(problems)} problem{'s' * (len(problems) != 1)})", list(problems)
        )
    return suite


def _read_suite_model(path: Path) -> _SuiteModel:
    """The suite file read as UTF-8 YAML and its top level validated (name, claims, profiles)."""
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
        return _SuiteModel(**raw)
    except ValidationError as err:
        raise UserError(f"{path}: invalid suite", _pydantic_problems(err, "", _SuiteModel)) from err


def _merged_grids(
    path: Path, raw_profile: dict[str, Any], prefix: str, overrides: Mapping[str, Any], problems: _Problems
) -> list[tuple[dict[str, Any], dict[str, str], str]]:
    """(merged grid, where each field came from, YAML path) per ``grids`` item (the profile itself without
    ``grids``): profile fields < the item's < ``--set`` overrides. A bad ``grids`` field stops here (exit 2)."""
    grids = raw_profile.get("grids")
    try:
        _ProfileModel(**raw_profile)
    except ValidationError as err:
        # Only `grids` is checked here; every other field is checked (and reported) per grid by expand_grid.
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
    return expansions


def registered_claims() -> list[str]:
    """The claim ids a suite may name: those of the claims registry (``$WNBENCH_REGISTRY`` or the built-in one),
    read on first use so that importing the suite machinery stays light. A claim the registry split (v3: C2 into
    C2-GAN, C2-VAE, ...) may still be named: its records count for every part (report ``cells.tagged_for``)."""
    from wnbench.report.registry import load_registry

    ids = load_registry().ids
    return ids + sorted({i.split("-")[0] for i in ids if "-" in i} - set(ids))


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
