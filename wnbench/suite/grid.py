"""Grid expansion: one merged grid of a suite profile -> its fully resolved runs, appended to the suite; every
problem is listed with the YAML path its value came from (sweep > task > profile > config file), so one pass
reports them all. :func:`wnbench.suite.spec.load_suite` merges the profile, grids and ``--set`` overrides and calls
:func:`expand_grid` once per grid; a tuning stage expands its grids through it as well.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from wnbench.errors import UserError

from .kinds import Budget, RunSpec, get_kind, json_safe
from .spec import (
    ResolvedRun,
    Suite,
    _BudgetModel,
    _deep_merge,
    _format_error,
    _GridFields,
    _norm_dict,
    _origin,
    _path,
    _Problems,
    _read_text,
    _seeds,
    _task_entry,
    run_id_of,
)

__all__ = ["expand_grid"]


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


def expand_grid(
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
        expand_grid(ex.suite, g, o, ex.prefix, ex.configs_root, sink, seen, ex.run_kind_checks, st, info)

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
