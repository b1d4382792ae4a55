"""Sample thumbnails published beside an archive: ``DEST/<suite>.samples/<run_id>.png``.

A generative run writes ``samples.png`` (a scatter of generated against held-out points, or a grid of generated
images) into its run folder, which a published archive does not carry. ``wnbench publish`` keeps one of them per
cell -- the lowest seed's -- as a small palette PNG (at most :data:`THUMBNAIL_SIDE` pixels a side,
:data:`THUMBNAIL_COLOURS` colours: ~12 KB for a 2-D scatter), so that a report built from the committed records alone
still shows each arm's samples (wnbench.report.plots.sample_grids). A cell is the run's config without its seed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SAMPLES_SUFFIX",
    "THUMBNAIL_SIDE",
    "publish_thumbnails",
    "published_thumbnails",
    "restore_thumbnail",
    "samples_dir_of",
    "thumbnail_of",
]

SAMPLES_SUFFIX = ".samples"
THUMBNAIL_SIDE = 256
THUMBNAIL_COLOURS = 32
SAMPLES_FILE = "samples.png"


def samples_dir_of(archive: str | Path) -> Path:
    """``DEST/<suite>.samples`` for ``DEST/<suite>.jsonl.gz``."""
    archive = Path(archive)
    stem = archive.name.split(".jsonl")[0]
    return archive.with_name(stem + SAMPLES_SUFFIX)


def thumbnail_of(archive: str | Path, run_id: str) -> Path | None:
    """The published thumbnail of run ``run_id`` of ``archive``, or None when there is none."""
    path = samples_dir_of(archive) / f"{run_id}.png"
    return path if path.is_file() else None


def published_thumbnails(archive: str | Path) -> dict[str, Path]:
    """Every thumbnail published beside ``archive``, by run id (one listing of its samples folder)."""
    folder = samples_dir_of(archive)
    return {p.stem: p for p in folder.glob("*.png")} if folder.is_dir() else {}


def _cell_key(record: Mapping[str, Any]) -> str:
    config = {k: v for k, v in record["config"].items() if k != "seed"}
    return json.dumps(config, sort_keys=True, default=str)


def _write_thumbnail(source: Path, dest: Path) -> None:
    from PIL import Image  # matplotlib's dependency: imported only when there is a sample to publish

    with Image.open(source) as image:
        small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.LANCZOS)
    handle, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp")
    os.close(handle)
    try:
        small.quantize(THUMBNAIL_COLOURS).save(tmp, "PNG", optimize=True)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish_thumbnails(out_dir: str | Path, archive: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Keep, per cell of ``records`` (the archive's merged records), the thumbnail of its lowest seed that has a
    ``samples.png`` in ``OUT/runs/<run_id>/`` or a thumbnail already published; drop the cell's other thumbnails.
    Returns the number of thumbnails written."""
    out_dir, folder = Path(out_dir), samples_dir_of(archive)
    published = published_thumbnails(archive)
    cells: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("config", {}).get("kind") == "gen":
            cells.setdefault(_cell_key(record), []).append(record)
    written = 0
    for runs in cells.values():
        chosen, source = None, None
        for record in sorted(runs, key=lambda r: (r["config"].get("seed", 0), r["run_id"])):
            local = out_dir / "runs" / record["run_id"] / SAMPLES_FILE
            if record["run_id"] in published or local.is_file():
                chosen, source = record["run_id"], local
                break
        if chosen is None:
            continue
        if chosen not in published:
            folder.mkdir(parents=True, exist_ok=True)
            _write_thumbnail(source, folder / f"{chosen}.png")
            written += 1
        for record in runs:  # a lower seed published later supersedes the cell's earlier thumbnail
            if record["run_id"] != chosen and record["run_id"] in published:
                published[record["run_id"]].unlink()
    return written


def restore_thumbnail(archive: str | Path, run_id: str, out_dir: str | Path) -> bool:
    """Copy run ``run_id``'s published thumbnail to ``OUT/runs/<run_id>/samples.png`` when the run folder has no
    samples.png (``wnbench unpack``): publishing that folder again keeps the cell's thumbnail. True if copied."""
    thumbnail = thumbnail_of(archive, run_id)
    target = Path(out_dir) / "runs" / run_id / SAMPLES_FILE
    if thumbnail is None or target.exists() or not target.parent.is_dir():
        return False
    shutil.copyfile(thumbnail, target)
    return True
