"""Figures of a report (matplotlib, Agg): learning curves with interquartile bands, IQM interval estimates and
performance profiles (rliable), learning-rate sensitivity, the noise benchmark, generated-sample grids; which claim
shows which is the registry's ``figures``.

Every function writes one PNG and returns ``True``, or ``False`` when the data for it are missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wnbench.rl.scoring import EVAL_CURVE  # noqa: E402

from . import stats  # noqa: E402
from .cells import is_scored, metric_of, task_of, unmeasured_diagnostic  # noqa: E402
from .registry import is_careless_init  # noqa: E402
from .results import ClaimResult  # noqa: E402
from .tables import norm_order  # noqa: E402

DPI = 110
#: The curve a kind's records plot (first present): RL evaluation return, else the headline metric itself.
CURVE_KEYS = (EVAL_CURVE,)


def _colors(norms: Sequence[str]) -> dict[str, Any]:
    """One distinct colour per arm: tab10 up to ten arms, tab20 up to twenty (the paper profiles run 10-15 arms,
    and a repeated colour made `none` and `weight+meanonly` look alike), then a continuous map."""
    order = sorted(set(norms), key=norm_order)
    if len(order) <= 10:
        cmap = plt.get_cmap("tab10")
        return {n: cmap(i) for i, n in enumerate(order)}
    if len(order) <= 20:
        cmap = plt.get_cmap("tab20")
        return {n: cmap(i) for i, n in enumerate(order)}
    cmap = plt.get_cmap("turbo")
    return {n: cmap(i / (len(order) - 1)) for i, n in enumerate(order)}


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def curve_key(record: Mapping[str, Any]) -> str | None:
    curves = record.get("curves") or {}
    for key in CURVE_KEYS:
        if key in curves:
            return key
    info = metric_of(record)
    return info[0] if info and info[0] in curves else None


def learning_curves(result: ClaimResult, path: Path) -> bool:
    """One panel per cell: median over seeds of the evaluation curve per norm, band = interquartile range."""
    return _curve_panels(
        result, path, curve_key, f"{result.claim}: median over seeds, band = interquartile range"
    )


def diagnostics(result: ClaimResult, key: str, path: Path) -> bool:
    """One diagnostic's curve (``diag/...``, wnbench.rl.diagnostics) per cell that logs it, per norm."""
    name = key.removeprefix("diag/")

    def has(r: Mapping[str, Any]) -> str | None:
        if key not in (r.get("curves") or {}):
            return None
        return None if unmeasured_diagnostic(r, key) else key

    return _curve_panels(
        result, path, has,
        f"{result.claim}: {name} (mechanism diagnostic), median over seeds, band = interquartile range",
        log=name in ("grad_noise", "grad_var") or name.endswith("eff_lr"),
    )  # fmt: skip


def _curve_panels(result: ClaimResult, path: Path, curve_key: Any, title: str, log: bool = False) -> bool:
    """Panels per cell of the curve ``curve_key(record)`` names (None: the record has none), per norm."""
    cells = {
        c: by for c, by in result.cell_records.items() if any(curve_key(r) for rs in by.values() for r in rs)
    }
    if not cells:
        return False
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    colors = _colors(norms)
    cols = min(3, len(cells))
    rows = -(-len(cells) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, (cell, by_norm) in zip(axes.flat, cells.items(), strict=False):
        key = None
        for norm in sorted(by_norm, key=norm_order):
            runs = [r for r in by_norm[norm] if is_scored(r) and curve_key(r)]
            if not runs:
                continue
            key = curve_key(runs[0])
            grid = np.asarray(max((r["curves"][key]["step"] for r in runs), key=len), dtype=float)
            values = []
            for r in runs:
                steps = np.asarray(r["curves"][key]["step"], dtype=float)
                vals = np.asarray(r["curves"][key]["value"], dtype=float)
                ok = np.isfinite(vals)
                if ok.sum() < 1:
                    continue
                # a run that stopped early (diverged) holds its last value no further: NaN past its end
                interp = np.interp(grid, steps[ok], vals[ok])
                interp[grid > steps[ok].max()] = np.nan
                values.append(interp)
            if not values:
                continue
            stack = np.vstack(values)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(stack, axis=0)
                q25, q75 = np.nanpercentile(stack, [25, 75], axis=0)
            ax.plot(grid, med, color=colors[norm], lw=1.6)
            ax.fill_between(grid, q25, q75, color=colors[norm], alpha=0.18, lw=0)
        ax.set_title(cell, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(key or "")
        if log:
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.grid(alpha=0.3)
    spare = list(axes.flat)[len(cells) :]
    for ax in spare:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[n], lw=2) for n in norms]
    if spare:  # the legend fills the first empty panel rather than a band under the grid
        spare[0].legend(handles, norms, loc="center", ncol=1 + (len(norms) > 6), fontsize=9, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
    else:
        fig.legend(
            handles,
            norms,
            loc="lower center",
            ncol=min(len(norms), 5),
            fontsize=8,
            bbox_to_anchor=(0.5, -0.02),
        )
        fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def iqm_intervals(result: ClaimResult, path: Path, xlabel: str = "IQM of normalized score") -> bool:
    """rliable interval-estimate plot of the per-norm IQM."""
    if not result.iqm:
        return False
    from rliable import plot_utils

    norms = sorted(result.iqm, key=norm_order)
    points = {n: np.array([result.iqm[n].point]) for n in norms}
    intervals = {n: np.array([[result.iqm[n].low], [result.iqm[n].high]]) for n in norms}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, _ = plot_utils.plot_interval_estimates(
            points, intervals, metric_names=["IQM"], algorithms=norms, colors=_colors(norms),
            xlabel=xlabel, subfigure_width=4.5, row_height=0.45,
        )  # fmt: skip
    fig.suptitle(f"{result.claim}: IQM with 95% stratified-bootstrap CI", fontsize=10, y=1.02)
    _save(fig, path)
    return True


def profile_with_band(
    cells: Sequence[np.ndarray],
    taus: np.ndarray,
    reps: int = 300,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score-distribution profile (per cell the fraction of runs above tau, averaged over each task's cells and
    then over tasks: every run counts) and its 95% bootstrap band (tasks, then cells, then runs, as the verdicts'
    intervals; cells, then runs without ``groups``)."""
    rng = np.random.default_rng(seed)
    above = [(c[:, None] > taus[None, :]).mean(axis=0) for c in cells]
    labels = list(groups) if groups is not None else [str(i) for i in range(len(cells))]
    share = {t: labels.count(t) for t in labels}
    point = sum(a / (len(share) * share[t]) for a, t in zip(above, labels, strict=True))
    draws, weights = stats.cell_draws(rng, len(cells), reps, True, groups)
    boot = np.zeros((reps, len(taus)))
    for r in range(reps):
        for i, w in zip(draws[r], weights[r], strict=True):
            if i >= 0:
                c = cells[i]
                boot[r] += w * (c[rng.integers(0, len(c), len(c))][:, None] > taus[None, :]).mean(axis=0)
    return point, np.percentile(boot, [2.5, 97.5], axis=0)


def performance_profiles(result: ClaimResult, path: Path, reps: int = 300) -> bool:
    """Score-distribution performance profiles over the cells every norm ran, all runs, 95% task-level bands
    (rliable's plotting; rliable's own profile needs equal run counts)."""
    scores = result.cell_scores
    norms = sorted({n for by in scores.values() for n in by}, key=norm_order)
    cells = [c for c, by in scores.items() if all(len(by.get(n, ())) >= 1 for n in norms)]
    if not cells or len(norms) < 2:
        return False
    from rliable import plot_utils

    hi = max(1.0, max(float(np.max(scores[c][n])) for c in cells for n in norms))
    lo = min(0.0, min(float(np.min(scores[c][n])) for c in cells for n in norms))
    taus = np.linspace(lo, hi, 41)
    groups = [task_of(result.cell_records[c]) if c in result.cell_records else c for c in cells]
    profiles, cis = {}, {}
    for i, norm in enumerate(norms):
        profiles[norm], cis[norm] = profile_with_band(
            [np.asarray(scores[c][norm]) for c in cells], taus, reps, i, groups
        )
    minmax = [c for c in cells if result.anchors.get(c, "").startswith("min-max")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_utils.plot_performance_profiles(
            profiles, taus, performance_profile_cis=cis, colors=_colors(norms), ax=ax,
            xlabel=r"normalized score $\tau$", ylabel=r"fraction of runs with score $> \tau$",
        )  # fmt: skip
    ax.legend(
        [plt.Line2D([], [], color=_colors(norms)[n]) for n in norms], norms, fontsize=7, loc="lower left"
    )
    mark = f" ({len(minmax)} min-max normalized)" if minmax else " (fixed anchors)"
    ax.set_title(f"{result.claim}: performance profiles over {len(cells)} cells{mark}", fontsize=10)
    _save(fig, path)
    return True


def _median_iqr_line(
    ax: Any, xs: Sequence[float], samples: Sequence[Sequence[float]], color: Any, label: str
) -> None:
    """Median of each x's samples as a marked line, their interquartile range as a band (NaN where none)."""

    def stat(q: float) -> list[float]:
        return [float(np.percentile(v, q)) if len(v) else np.nan for v in samples]

    ax.plot(xs, stat(50), marker="o", color=color, label=label, lw=1.5)
    ax.fill_between(xs, stat(25), stat(75), color=color, alpha=0.15, lw=0)


def lr_sensitivity(result: ClaimResult, path: Path) -> bool:
    """A learning-rate claim: median normalized score against the learning rate per norm, one panel per cell; a dashed line in each
    norm's colour is its own good-range threshold ((1 - tolerance) x its best median, at least the floor share of the cell's best)."""
    curves = result.lr_curves
    if not curves:
        return False
    norms = sorted({n for by in curves.values() for n in by}, key=norm_order)
    colors = _colors(norms)
    fig, axes = plt.subplots(1, len(curves), figsize=(5.4 * len(curves), 3.8), squeeze=False)
    for ax, (cell, by_norm) in zip(axes.flat, curves.items(), strict=False):
        for norm in sorted(by_norm, key=norm_order):
            rates = sorted(by_norm[norm])
            widths = result.cell_scores.get(cell, {}).get(norm)
            width = (
                f", width {float(np.median(widths)):.2f} dec" if widths is not None and len(widths) else ""
            )
            _median_iqr_line(ax, rates, [by_norm[norm][r] for r in rates], colors[norm], f"{norm}{width}")
            threshold = result.lr_thresholds.get(cell, {}).get(norm)
            if threshold is not None and np.isfinite(threshold):
                ax.axhline(threshold, color=colors[norm], ls="--", lw=0.7)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("normalized score")
        ax.set_title(cell, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result.claim}: learning-rate sensitivity (median over seeds, band = IQR; dashed = each norm's "
                 "threshold)", fontsize=10)  # fmt: skip
    _save(fig, path)
    return True


def noise_plot(noise: Mapping[str, Any], path: Path, claim: str) -> bool:
    """The noise benchmark's spread against batch size (the benchmark's own plot, redrawn from its JSON), titled
    with the claim it shows."""
    rows = noise.get("rows") or []
    if not rows:
        return False
    norms = list(dict.fromkeys(r["norm"] for r in rows))
    colors = _colors(norms)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for norm in norms:
        pts = sorted((r["batch_size"], r["relative_spread"]) for r in rows if r["norm"] == norm)
        xs, ys = zip(*pts, strict=True)
        ys = [max(y, 1e-6) for y in ys]  # exact zeros on a log axis
        ax.plot(xs, ys, marker="o", color=colors[norm], label=norm, lw=1.4)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("relative spread (zeros drawn at 1e-6)")
    ax.set_title(f"{claim}: one input's output across batch companions (train mode)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
    return True


def _samples_image(record: dict) -> Path | None:
    candidates = [Path(record["_dir"]) / "samples.png"] if record.get("_dir") else []
    candidates += [Path(record["_samples"])] if record.get("_samples") else []
    return next((image for image in candidates if image.is_file()), None)


def sample_grid_rows(result: ClaimResult) -> list[tuple[str, dict[str, tuple[Path, int]]]]:
    """Per cell, each norm's first finished seed with a samples image. Careless-init arms (``init_gain``) are C6's
    measurement, not a norm's look, and a cell where fewer than two norms have an image compares nothing (a baseline
    at a superseded budget): both are left out, so the grid stays one readable row per task."""
    rows = []
    for cell, by_norm in result.cell_records.items():
        row = {}
        for norm in sorted((n for n in by_norm if not is_careless_init(n)), key=norm_order):
            for r in sorted(by_norm[norm], key=lambda r: r["config"]["seed"]):
                image = _samples_image(r)
                if r["status"] == "finished" and image is not None:
                    row[norm] = (image, r["config"]["seed"])
                    break
        if len(row) >= 2:
            rows.append((cell, row))
    return rows


def sample_grids(result: ClaimResult, path: Path) -> bool:
    """Each generative cell's ``samples.png`` of its first seed (from its run folder, or the thumbnail published beside
    an archive: wnbench.suite.thumbnails), one row per cell, one column per norm (:func:`sample_grid_rows`)."""
    rows = sample_grid_rows(result)
    if not rows:
        return False
    norms = sorted({n for _, row in rows for n in row}, key=norm_order)
    fig, axes = plt.subplots(
        len(rows), len(norms), figsize=(2.2 * len(norms), 2.3 * len(rows)), squeeze=False
    )
    for i, (cell, row) in enumerate(rows):
        for j, norm in enumerate(norms):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if norm in row:
                ax.imshow(plt.imread(row[norm][0]))
            else:
                ax.text(0.5, 0.5, "no run", ha="center", va="center", fontsize=8)
            if i == 0:
                ax.set_title(norm, fontsize=8)
            if j == 0:
                ax.set_ylabel(cell.split(" [")[0], fontsize=8)
    vae = any(cell.split(" [")[0].endswith("/vae") for cell, _ in rows)
    what = (
        "decoder means E[x|z], z from the prior (a point: posterior collapse)" if vae else "generated samples"
    )
    fig.suptitle(f"{result.claim}: {what} (first seed of each cell)", fontsize=10)
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.04, right=0.99, top=1 - 0.75 / height, bottom=0.1 / height, wspace=0.05, hspace=0.2
    )
    _save(fig, path)
    return True


def sweep_plot(result: ClaimResult, param: str, path: Path, title: str) -> bool:
    """Headline metric (raw units, median over seeds, IQR band) against a swept parameter, per norm; one panel
    per (task, algo). Diverged runs are left out of the medians and counted in the legend."""
    panels: dict[str, dict[str, dict[float, list[float]]]] = {}
    diverged: dict[str, dict[str, int]] = {}
    metric_names: dict[str, str] = {}
    for by_norm in result.cell_records.values():
        for norm, records in by_norm.items():
            for r in records:
                value = r["config"]["params"].get(param)
                info = metric_of(r)
                if not isinstance(value, int | float) or info is None or not is_scored(r):
                    continue
                panel = f"{r['config']['task']}/{r['config']['algo']}"
                metric_names[panel] = info[0]
                score = r["metrics"].get(info[0]) if r["status"] == "finished" else None
                if isinstance(score, int | float) and np.isfinite(score):
                    panels.setdefault(panel, {}).setdefault(norm, {}).setdefault(float(value), []).append(
                        score
                    )
                else:
                    diverged.setdefault(panel, {}).setdefault(norm, 0)
                    diverged[panel][norm] += 1
    if not panels:
        return False
    norms = sorted({n for p in panels.values() for n in p}, key=norm_order)
    colors = _colors(norms)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 3.8), squeeze=False)
    for ax, (panel, by_norm) in zip(axes.flat, sorted(panels.items()), strict=False):
        for norm in sorted(by_norm, key=norm_order):
            xs = sorted(by_norm[norm])
            div = diverged.get(panel, {}).get(norm, 0)
            label = norm + (f" ({div} diverged)" if div else "")
            _median_iqr_line(ax, xs, [by_norm[norm][x] for x in xs], colors[norm], label)
        ax.set_xscale("log", base=2 if param == "batch_size" else 10)
        ax.set_xlabel(param)
        ax.set_ylabel(metric_names[panel])
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def matrix_heatmap(matrix: Any, path: Path) -> bool:
    """The practitioner's matrix (:class:`wnbench.report.matrix.Matrix`) as a heatmap: rows x arms coloured by the
    median effect against no norm (RL rows: normalized score; generative rows: P(arm > none) - 0.5), annotated with
    the value and the ★ / ≈ marks; grey where the arm did not run."""
    if matrix is None or not matrix.rows:
        return False
    columns = matrix.columns
    values = np.full((len(matrix.rows), len(columns)), np.nan)
    for i, row in enumerate(matrix.rows):
        for j, column in enumerate(columns):
            if column in row.entries:
                values[i, j] = row.entries[column].median
    limit = max(0.05, float(np.nanmax(np.abs(values))))
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(columns), 0.9 + 0.55 * len(matrix.rows)))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for i, row in enumerate(matrix.rows):
        for j, column in enumerate(columns):
            entry = row.entries.get(column)
            if entry is None:
                continue
            mark = "★" if entry.best else ("≈" if entry.tied else "")
            ax.text(j, i, f"{mark}{entry.median:+.2f}", ha="center", va="center", fontsize=7.5,
                    color="white" if abs(entry.median) > 0.6 * limit else "black")  # fmt: skip
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(matrix.rows)), [row.label for row in matrix.rows], fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="median over tasks, arm − none")
    ax.set_title(
        "Practitioner's matrix (RL: normalized score − none's; generative: P(arm > none) − 0.5)", fontsize=9
    )
    _save(fig, path)
    return True
