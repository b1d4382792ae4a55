"""W&B report building: blocks per claim, run-set filters and grouping, offline publish never touches the network."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("wandb_workspaces")

from wnbench.rl.scoring import EVAL_CURVE  # noqa: E402
from wnbench.tracking.wandb_report import (  # noqa: E402
    GROUP_BAND,
    OFFLINE_ENTITY,
    ClaimSection,
    build_report,
    publish_report,
    report_spec,
)

SECTIONS = (
    ClaimSection(
        claim="C1",
        title="WN beats BN in noise-sensitive RL",
        verdict_markdown="**Supported**: P(WN>BN) = 0.81 [0.70, 0.90], 3 tasks x 5 seeds",
        suites=("rl", "rl-lr"),
        curve_metrics=(EVAL_CURVE,),
        final_metrics=("final_return", "auc_normalized"),
    ),
    ClaimSection(
        claim="C6",
        title="WN trains generative models as well as BN",
        verdict_markdown="**Inconclusive**: P(WN>BN) = 0.55 [0.31, 0.77], 2 tasks x 3 seeds",
        suites=("gen",),
        curve_metrics=("elbo_test_nats", "fid_classifier"),
        final_metrics=("elbo_test_nats",),
    ),
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture()
def no_network(monkeypatch):
    """Fail any attempt to reach the W&B API (GraphQL or a connection)."""
    import socket

    import wandb_workspaces.reports.v2.interface as interface

    def refuse(*args, **kwargs):
        raise AssertionError("the W&B API was called")

    monkeypatch.setattr(interface, "_get_api", refuse)
    monkeypatch.setattr(interface, "execute_graphql", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(interface.Report, "save", refuse)


def _report(entity=None):
    return build_report(
        SECTIONS, project="wnbench", entity=entity, title="wnbench claims", description="Claims."
    )


def test_blocks_have_a_heading_verdict_and_grid_per_section(no_network):
    import wandb_workspaces.reports.v2 as wr

    report = _report()
    headings = [b.text for b in report.blocks if isinstance(b, wr.H1)]
    assert headings == [f"{s.claim}: {s.title}" for s in SECTIONS]
    markdown = [b.text for b in report.blocks if isinstance(b, wr.MarkdownBlock)]
    assert all(s.verdict_markdown in markdown for s in SECTIONS)
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert len(grids) == len(SECTIONS)
    for grid, section in zip(grids, SECTIONS, strict=True):
        lines = [p for p in grid.panels if isinstance(p, wr.LinePlot)]
        bars = [p for p in grid.panels if isinstance(p, wr.BarPlot)]
        assert len(grid.panels) == len(section.curve_metrics) + len(section.final_metrics)
        assert [p.y for p in lines] == [[m] for m in section.curve_metrics]
        assert [p.metrics for p in bars] == [[m] for m in section.final_metrics]
        assert all(p.groupby == wr.Config("norm") and p.groupby_rangefunc == GROUP_BAND for p in lines + bars)
        # panels do not overlap: two per row
        assert len({(p.layout.x, p.layout.y) for p in grid.panels}) == len(grid.panels)
        (runset,) = grid.runsets
        assert runset.project == "wnbench"
        assert runset.groupby == ["config.norm"]
        for suite in section.suites:
            assert repr(suite) in runset.filters
        assert "Group" in runset.filters
    # heading, verdict, grid come in that order for each section
    kinds = [type(b).__name__ for b in report.blocks]
    assert kinds == ["MarkdownBlock"] + ["H1", "MarkdownBlock", "PanelGrid"] * len(SECTIONS)


def test_entity_none_uses_placeholder_and_given_entity_reaches_runsets(no_network):
    assert _report().entity == OFFLINE_ENTITY
    report = _report(entity="my-team")
    assert report.entity == "my-team"
    import wandb_workspaces.reports.v2 as wr

    assert {rs.entity for b in report.blocks if isinstance(b, wr.PanelGrid) for rs in b.runsets} == {
        "my-team"
    }


@pytest.mark.parametrize("entity", [None, "my-team"])
def test_spec_serialises_offline_with_filters_and_grouping(no_network, entity):
    report = _report(entity)
    spec = report_spec(report)
    json.dumps(spec)  # plain JSON
    grids = [b for b in spec["spec"]["blocks"] if b["type"] == "panel-grid"]
    assert len(grids) == len(SECTIONS)
    for grid, section in zip(grids, SECTIONS, strict=True):
        (runset,) = grid["metadata"]["runSets"]
        (flt,) = runset["filters"]["filters"]
        assert flt["key"] == {"section": "run", "name": "group"}
        assert flt["op"] == "IN" and flt["value"] == list(section.suites)
        assert runset["grouping"] == [{"section": "config", "name": "norm.value"}]
        panels = grid["metadata"]["panelBankSectionConfig"]["panels"]
        assert [p["viewType"] for p in panels] == ["Run History Line Plot"] * len(section.curve_metrics) + [
            "Bar Chart"
        ] * len(section.final_metrics)
        assert all(p["config"]["groupBy"] == "norm.value" and p["config"]["aggregate"] for p in panels)
    # validation works on a copy: the report keeps its run-set entity for an online save
    assert report.blocks[3].runsets[0].entity == (entity or "")


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_publish_offline_validates_and_does_not_save(no_network, mode):
    message = publish_report(_report(), mode=mode)
    assert "wandb sync" in message and "--wandb" in message
    assert OFFLINE_ENTITY in message  # says the entity is only a placeholder
    assert "\n" not in message
    assert "2 panel grids, 6 panels" in message


def test_publish_rejects_unknown_mode_and_bad_sections(no_network):
    with pytest.raises(ValueError, match="mode"):
        publish_report(_report(), mode="later")
    with pytest.raises(ValueError, match="no suites"):
        build_report(
            [ClaimSection("C9", "t", "v", (), ("m",), ())],
            project="p",
            entity=None,
            title="t",
            description="",
        )


@pytest.mark.parametrize("entity", ["my-team", None])
def test_publish_online_saves_and_returns_url(monkeypatch, entity):
    import wandb
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.reports.v2.interface as interface

    saved = []

    def fake_save(self, draft=False, clone=False):
        grids = [b for b in self.blocks if isinstance(b, wr.PanelGrid)]
        saved.append((self.entity, {rs.entity for g in grids for rs in g.runsets}))
        self.id = "abc123"
        return self

    monkeypatch.setattr(interface.Report, "save", fake_save)
    monkeypatch.setattr(
        interface.Report, "url", property(lambda self: f"https://wandb.ai/{self.entity}/r--{self.id}")
    )
    monkeypatch.setattr(wandb, "Api", lambda: type("Api", (), {"default_entity": "me"})())
    url = publish_report(_report(entity=entity), mode="online")
    expected = entity or "me"  # no entity: the logged-in user's default replaces the placeholder
    assert saved == [(expected, {expected})] and url == f"https://wandb.ai/{expected}/r--abc123"


def test_missing_package_raises_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("wandb_workspaces"):
            raise ImportError("No module named 'wandb_workspaces'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match="wandb-workspaces"):
        _report()


def test_a_section_with_cells_gets_one_grid_per_cell_filtered_on_task_and_algo(no_network):
    """No panel mixes tasks: each (task, algo) cell has its own heading and grid, and its run set is filtered on
    the suites and on config.task and config.algo."""
    import wandb_workspaces.reports.v2 as wr

    cells = (("CartPole-v1", "ppo"), ("Pendulum-v1", "sac"))
    section = ClaimSection("C1", "t", "v", ("rl",), (EVAL_CURVE, "diag/ratio_dev"), ("final_return",), cells)
    report = build_report([section], project="wnbench", entity=None, title="t", description="")
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert [b.text for b in report.blocks if isinstance(b, wr.H2)] == [
        "CartPole-v1 / ppo",
        "Pendulum-v1 / sac",
    ]
    assert len(grids) == 2 and all(len(g.panels) == 3 for g in grids)
    for grid, (task, algo) in zip(grids, cells, strict=True):
        (runset,) = grid.runsets
        assert repr(task) in runset.filters and repr(algo) in runset.filters and "'rl'" in runset.filters
    spec = report_spec(report)
    specs = [b for b in spec["spec"]["blocks"] if b["type"] == "panel-grid"]
    for grid, (task, algo) in zip(specs, cells, strict=True):
        filters = {f["key"]["name"]: f["value"] for f in grid["metadata"]["runSets"][0]["filters"]["filters"]}
        assert filters == {"group": ["rl"], "task": task, "algo": algo}


def test_report_sections_name_the_cells_of_their_records():
    from wnbench.report import Inputs, analyze, wandb_sections

    def rec(task, norm, seed, value):
        return {
            "run_id": f"{task}{norm}{seed}", "suite": "rl", "claims": ["C1"], "status": "finished",
            "config": {"kind": "rl", "task": task, "algo": "ppo", "norm": norm, "norm_spec": {"name": norm},
                       "seed": seed, "params": {}, "budget": {"steps": 10}, "resolved": None},
            "metrics": {"final_return": value}, "curves": {}, "timings": {}, "versions": {}, "schema": 1,
        }  # fmt: skip

    records = [rec(t, n, s, 100.0 + s) for t in ("CartPole-v1", "Acrobot-v1") for n in ("weight", "batch")
               for s in range(3)]  # fmt: skip
    (c1,) = [s for s in wandb_sections(analyze(Inputs(records=records), reps=50)) if s.claim == "C1"]
    assert c1.cells == (("Acrobot-v1", "ppo"), ("CartPole-v1", "ppo"))
    assert "diag/ratio_dev" in c1.curve_metrics
