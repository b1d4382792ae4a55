"""Sample thumbnails published beside an archive: one per generative cell (its lowest seed), read back by the report
built from the archive alone."""

from __future__ import annotations

import json

from PIL import Image

from wnbench.report.plots import _samples_image
from wnbench.report.records import _published_records_of
from wnbench.suite.published import export_published, import_published, read_archive
from wnbench.suite.store import write_record
from wnbench.suite.thumbnails import THUMBNAIL_SIDE, publish_thumbnails, samples_dir_of


def _record(run_id: str, norm: str, seed: int, kind: str = "gen") -> dict:
    return {
        "schema": 1, "run_id": run_id, "suite": "toygen", "label": f"{norm}/seed{seed}", "status": "finished",
        "claims": ["C2"], "config": {"kind": kind, "task": "moons", "algo": "vae", "norm": norm, "seed": seed,
                                     "params": {}},
        "metrics": {"energy_distance": 0.01}, "curves": {}, "details": {}, "timings": {}, "error": None,
        "diverged_at_step": None, "started_at": 0, "finished_at": 1, "host": "h", "tracking": {},
        "versions": {}, "wall_time_s": 1.0,
    }  # fmt: skip


def _out_with(tmp_path, runs: list[tuple[str, str, int, bool]]):
    out = tmp_path / "out"
    for run_id, norm, seed, has_samples in runs:
        write_record(out, _record(run_id, norm, seed))
        if has_samples:
            Image.new("RGB", (600, 400), (seed * 40, 10, 200)).save(out / "runs" / run_id / "samples.png")
    ids = [r[0] for r in runs]
    (out / "suite.json").write_text(
        json.dumps({"suite": "toygen", "profile": "p", "claims": ["C2"], "run_ids": ids})
    )
    return out


def test_publish_keeps_each_cells_lowest_seed_as_a_small_thumbnail_that_the_report_finds(tmp_path):
    out = _out_with(tmp_path, [("a1", "none", 1, True), ("a0", "none", 0, True), ("b2", "weight", 2, True),
                               ("b0", "weight", 0, False)])  # fmt: skip
    archive, _, count = export_published(out, tmp_path / "pub")
    folder = samples_dir_of(archive)
    assert count == 4 and folder.name == "toygen.samples"
    # weight's seed 0 has no samples.png: its lowest seed with one stands for the cell
    assert sorted(p.name for p in folder.iterdir()) == ["a0.png", "b2.png"]
    with Image.open(folder / "a0.png") as thumb:
        assert max(thumb.size) == THUMBNAIL_SIDE and thumb.mode == "P"
    records = {r["run_id"]: r for r in _published_records_of(read_archive(archive), [])}
    assert _samples_image(records["a0"]) == folder / "a0.png"
    assert _samples_image(records["a1"]) is None and "_dir" not in records["a1"]


def test_a_lower_seed_published_later_replaces_the_cells_thumbnail(tmp_path):
    out = _out_with(tmp_path, [("b2", "weight", 2, True)])
    archive, _, _ = export_published(out, tmp_path / "pub")
    assert [p.name for p in samples_dir_of(archive).iterdir()] == ["b2.png"]
    out = _out_with(tmp_path, [("b2", "weight", 2, True), ("b0", "weight", 0, True)])
    export_published(out, tmp_path / "pub")
    assert [p.name for p in samples_dir_of(archive).iterdir()] == ["b0.png"]
    # a second publish of the same records writes nothing new
    assert publish_thumbnails(out, archive, [_record("b0", "weight", 0), _record("b2", "weight", 2)]) == 0


def test_rl_runs_get_no_thumbnail(tmp_path):
    archive = tmp_path / "pub" / "toyrl.jsonl.gz"
    out = tmp_path / "out"
    write_record(out, _record("r0", "none", 0, kind="rl"))
    Image.new("RGB", (50, 50)).save(out / "runs" / "r0" / "samples.png")
    assert publish_thumbnails(out, archive, [_record("r0", "none", 0, kind="rl")]) == 0
    assert not samples_dir_of(archive).exists()


def test_unpack_restores_the_thumbnails_so_a_publish_from_there_keeps_them(tmp_path):
    out = _out_with(tmp_path, [("a0", "none", 0, True), ("a1", "none", 1, True)])
    archive, _, _ = export_published(out, tmp_path / "pub")
    fresh = tmp_path / "fresh"
    assert import_published(archive, fresh) == 2
    assert (fresh / "runs" / "a0" / "samples.png").is_file() and not (
        fresh / "runs" / "a1" / "samples.png"
    ).exists()
    again, _, _ = export_published(fresh, tmp_path / "pub2")
    assert [p.name for p in samples_dir_of(again).iterdir()] == ["a0.png"]


def test_sample_grid_rows_leave_out_careless_init_arms_and_cells_with_one_norm(tmp_path):
    from types import SimpleNamespace

    from wnbench.report.plots import sample_grid_rows

    def rec(norm: str, seed: int, image: bool = True, status: str = "finished") -> dict:
        path = tmp_path / f"{norm}-{seed}.png"
        if image:
            Image.new("RGB", (8, 8)).save(path)
        return {**_record(f"{norm}{seed}", norm, seed), "status": status, "_samples": str(path)}

    cells = {
        "moons/vae": {"none": [rec("none", 1), rec("none", 0)], "weight": [rec("weight", 0, status="diverged"),
                      rec("weight", 1)], "weight[init_gain=10]": [rec("weight[init_gain=10]", 0)],
                      "batch": [rec("batch", 0, image=False)]},
        "ring8/vae [hyperparams={}]": {"none": [rec("none", 2)]},  # a superseded baseline: nothing to compare
    }  # fmt: skip
    rows = sample_grid_rows(SimpleNamespace(cell_records=cells))
    assert [cell for cell, _ in rows] == ["moons/vae"]
    assert {norm: seed for norm, (_, seed) in rows[0][1].items()} == {"none": 0, "weight": 1}
