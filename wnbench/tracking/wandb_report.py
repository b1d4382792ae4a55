"""A W&B Report per claim: heading, verdict, and curves/bars of the claim's suites grouped by normalisation.

    sections = [ClaimSection("C1", "WN beats BN in noise-sensitive RL", "**Verdict:** ...", ("rl",),
                             ("eval/mean_return",), ("final_return",))]
    report = build_report(sections, project="wnbench", entity=None, title="wnbench", description="...")
    print(publish_report(report, mode=options.mode))   # online: the URL; offline/disabled: what to do instead

The sections come from the claims registry: :func:`wnbench.report.wandb_sections` builds one per claim whose
registry entry has ``wandb`` panels (curves, finals) and whose suites have runs, so a new claim gets its section
from its entry alone. This module stays generic (it knows no claim), as ``tracking/`` sits below ``report/``.

Runs are selected by W&B group (= suite name, ``Group IN suites``) and grouped by ``config.norm``, so each norm is
one line / bar, its band the spread over seeds (``GROUP_BAND``). A section that names its cells (task, algorithm)
gets one heading and panel grid per cell, its run set also filtered on ``config.task`` and ``config.algo``, so no
panel mixes tasks (CartPole returns beside Pendulum's would compare nothing). Building and validating a report touches no
network: ``wandb_workspaces`` only calls the W&B API when a report has no entity (its default), when a run set
with entity and project is serialised (project-id look-up) and on ``save()``. Hence ``entity=None`` gives the
report ``OFFLINE_ENTITY`` (replaced by the logged-in user's entity on an online publish), and ``report_spec``
validates with run-set entities blanked. ``wandb_workspaces`` is imported lazily (~1-2 s).

Mine vs reference (``build_report(..., reference_tag="reference")``, ``wnbench report MINE --reference R --wandb``):
every panel grid holds two run sets over the same suites and cell, "mine" (runs without the tag) and "reference"
(runs with it: the published records written by ``wnbench wandb-export``, :mod:`wnbench.tracking.export`), both
grouped by ``config.norm``, so each panel shows every arm of your runs beside the same arm of the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from wandb_workspaces.reports.v2 import Report

__all__ = [
    "GROUP_AGG",
    "GROUP_BAND",
    "GROUP_KEY",
    "OFFLINE_ENTITY",
    "ClaimSection",
    "build_report",
    "publish_report",
    "report_spec",
]

#: Entity written into a report built with ``entity=None``: ``Report()`` would otherwise ask the W&B API for the
#: default entity on construction. Only for offline validation; ``publish_report`` online replaces it.
OFFLINE_ENTITY = "wnbench-offline-placeholder"
#: Config key runs are grouped by: one line / bar per normalisation label.
GROUP_KEY = "norm"
#: How a group's runs (seeds x tasks) are aggregated, and the band drawn around it ("minmax", "stddev", "stderr").
GROUP_AGG = "mean"
GROUP_BAND = "stddev"
_PANEL_W, _PANEL_H = 12, 8  # two panels per row in W&B's 24-column grid


@dataclass(frozen=True)
class ClaimSection:
    """One claim's part of the report: its verdict and the W&B groups (suites) whose runs back it."""

    claim: str  # "C1"
    title: str  # "WN beats BN in noise-sensitive RL"
    verdict_markdown: str  # verdict, P(WN>BN) [CI], tasks x seeds
    suites: tuple[str, ...]  # W&B groups (suite names) whose runs this claim uses
    curve_metrics: tuple[str, ...] = ()  # line plots vs step, e.g. ("eval/mean_return",)
    final_metrics: tuple[str, ...] = ()  # summary metrics as bar plots, e.g. ("final_return",)
    cells: tuple[tuple[str, str], ...] = ()  # (task, algo) per panel grid; () = one grid over all runs

    @property
    def heading(self) -> str:
        return f"{self.claim}: {self.title}" if self.title else self.claim


def _wr() -> tuple[Any, Any]:
    """Import ``wandb_workspaces`` (reports v2 and its filter expressions) on first use: it is slow and optional."""
    try:
        import wandb_workspaces.reports.v2 as wr
        from wandb_workspaces import expr
    except ImportError as err:
        raise RuntimeError(
            "W&B reports need the wandb-workspaces package (`pip install wandb-workspaces`); "
            f"it could not be imported: {err}"
        ) from err
    return wr, expr


def _layout(wr: Any, i: int) -> Any:
    return wr.Layout(x=(i % 2) * _PANEL_W, y=(i // 2) * _PANEL_H, w=_PANEL_W, h=_PANEL_H)


def _grid(
    wr: Any, section: ClaimSection, runsets: Sequence[tuple[str, Any]], *, project: str, entity: str
) -> Any:
    """One panel grid: a line plot per curve metric and a bar plot per final metric, over ``runsets`` (name,
    filters) each grouped by norm."""
    group = wr.Config(GROUP_KEY)
    panels: list[Any] = [
        wr.LinePlot(
            title=metric,
            x="Step",
            y=[metric],
            title_x="step",
            groupby=group,
            groupby_aggfunc=GROUP_AGG,
            groupby_rangefunc=GROUP_BAND,
            layout=_layout(wr, i),
        )
        for i, metric in enumerate(section.curve_metrics)
    ]
    for metric in section.final_metrics:
        panels.append(
            wr.BarPlot(
                title=metric,
                metrics=[metric],  # a bare name in a bar plot reads the run summary
                groupby=group,
                groupby_aggfunc=GROUP_AGG,
                groupby_rangefunc=GROUP_BAND,
                layout=_layout(wr, len(panels)),
            )
        )
    return wr.PanelGrid(
        runsets=[
            wr.Runset(
                entity=entity, project=project, name=name, filters=filters, groupby=[f"config.{GROUP_KEY}"]
            )
            for name, filters in runsets
        ],
        panels=panels,
    )


def _runsets(expr: Any, where: list[Any], name: str, reference_tag: str | None) -> list[tuple[str, Any]]:
    """One run set over ``where``; with a reference tag, "mine" (runs without it) and "reference" (runs with it)."""
    if reference_tag is None:
        return [(name, expr.And(*where))]
    return [
        (f"mine: {name}", expr.And(*where, expr.Tags().notin([reference_tag]))),
        (f"reference: {name}", expr.And(*where, expr.Tags().isin([reference_tag]))),
    ]


def _section_blocks(
    wr: Any, expr: Any, section: ClaimSection, *, project: str, entity: str, reference_tag: str | None = None
) -> list[Any]:
    if not section.suites:
        raise ValueError(f"claim {section.claim}: no suites to select runs from")
    blocks: list[Any] = [wr.H1(text=section.heading)]
    if section.verdict_markdown.strip():
        blocks.append(wr.MarkdownBlock(text=section.verdict_markdown))
    if not section.curve_metrics and not section.final_metrics:
        return blocks
    suites = expr.Metric("Group").isin(list(section.suites))
    if not section.cells:
        runsets = _runsets(expr, [suites], f"{section.claim}: {', '.join(section.suites)}", reference_tag)
        blocks.append(_grid(wr, section, runsets, project=project, entity=entity))
        return blocks
    for task, algo in section.cells:
        blocks.append(wr.H2(text=f"{task} / {algo}"))
        where = [suites, expr.Config("task") == task, expr.Config("algo") == algo]
        runsets = _runsets(expr, where, f"{section.claim}: {task}/{algo}", reference_tag)
        blocks.append(_grid(wr, section, runsets, project=project, entity=entity))
    return blocks


def build_report(
    sections: Sequence[ClaimSection],
    *,
    project: str,
    entity: str | None,
    title: str,
    description: str,
    reference_tag: str | None = None,
) -> Report:
    """Build (not save) a report with one heading, verdict and panel grid per claim; needs no network or login.

    ``reference_tag``: each grid also shows the runs carrying this tag (the exported reference) as a second run
    set, and the first run set leaves them out."""
    wr, expr = _wr()
    blocks: list[Any] = [wr.MarkdownBlock(text=description)] if description.strip() else []
    for section in sections:
        blocks.extend(
            _section_blocks(
                wr, expr, section, project=project, entity=entity or "", reference_tag=reference_tag
            )
        )
    return wr.Report(
        project=project,
        entity=entity or OFFLINE_ENTITY,
        title=title[:128],  # the API's limit
        description=description,
        blocks=blocks,
    )


def _panel_grids(report: Report) -> list[Any]:
    wr, _ = _wr()
    return [b for b in report.blocks if isinstance(b, wr.PanelGrid)]


def report_spec(report: Report) -> dict[str, Any]:
    """The report's JSON view spec, built offline: validates every block without the project-id look-up."""
    offline = copy.deepcopy(report)
    for grid in _panel_grids(offline):
        for runset in grid.runsets:
            runset.entity = ""  # a run set with entity and project is resolved through the W&B API
    return offline._to_model().model_dump(mode="json", by_alias=True, exclude_none=True)


def _counts(report: Report) -> tuple[int, int]:
    grids = _panel_grids(report)
    return len(grids), sum(len(g.panels) for g in grids)


def publish_report(report: Report, *, mode: str) -> str:
    """Online: save the report and return its URL. Offline/disabled: validate it locally, say how to publish."""
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"unknown W&B mode {mode!r}; expected online, offline or disabled")
    report_spec(report)  # fail early, before any upload, on a report the API cannot serialise
    if mode == "online":
        if report.entity == OFFLINE_ENTITY:
            import wandb

            entity = wandb.Api().default_entity
            if not entity:
                raise RuntimeError("W&B report: no entity given and the logged-in user has no default entity")
            report.entity = entity
            for grid in _panel_grids(report):
                for runset in grid.runsets:
                    runset.entity = runset.entity or entity
        report.save()
        return str(report.url)
    grids, panels = _counts(report)
    placeholder = (
        f" (entity is the placeholder {OFFLINE_ENTITY!r}; online it becomes your default entity)"
        if report.entity == OFFLINE_ENTITY
        else ""
    )
    return (
        f"W&B {mode}: report {report.title!r} validated ({grids} panel grids, {panels} panels) but not published"
        f"{placeholder}; upload the runs with `wandb sync OUT/wandb/offline-run-*`, then rerun "
        "`wnbench report ... --wandb` online to publish it."
    )
