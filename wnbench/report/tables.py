"""The report's tables: medians, diagnostics, hypotheses, per cell, IQM, peers, anchors, throughput,
seed spread, and a user's runs against a reference."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import stats
from .cells import (
    DIAGNOSTICS,
    FINAL_MECHANISMS,
    PEER_LEVEL,
    arm_label_of,
    diagnostic_value,
    is_scored,
    metric_of,
    peer_arm_runs,
    peer_checks,
    raw_score,
    stage_of,
    throughput,
    unmeasured_diagnostic,
)
from .results import STAGE_SUFFIX, ClaimResult, HypothesisResult, Table, fmt_value

NONE = "none"


# -- tables ------------------------------------------------------------------------------------------------------------

_ORDER = ["none", "batch", "batch_renorm", "layer", "group", "weight", "weight_ddi", "weight+meanonly",
          "weight_meanonly", "spectral"]  # fmt: skip


def norm_order(norm: str) -> tuple[int, str]:
    """Sort key: the usual norm order (none, batch, ..., spectral), options after their kind, unknowns last."""
    base = norm.split("[", 1)[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), norm)


def median_table(cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]], title: str) -> Table:
    """Median raw headline metric per cell and norm (diverged runs counted as such), with run counts."""
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        metric = next(filter(None, (metric_of(r) for recs in by_norm.values() for r in recs)), None)
        row = [cell, metric[0] if metric else "—"]
        for norm in norms:
            recs = [r for r in by_norm.get(norm, []) if is_scored(r)]
            if not recs or metric is None:
                row.append("—")
                continue
            values = np.array([raw_score(r, metric[0]) for r in recs])
            finite = values[np.isfinite(values)]
            diverged = int((~np.isfinite(values)).sum())
            text = fmt_value(float(np.median(finite))) if finite.size else "diverged"
            row.append(text + (f" ({diverged} div.)" if diverged and finite.size else "") + f" n={len(recs)}")
        rows.append(row)
    return Table(title, ["cell", "metric", *norms], rows)


def diagnostics_table(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Table | None:
    """Per cell and diagnostic: the median over runs of each run's mean over its probe points, per arm."""
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        for key in (*DIAGNOSTICS, *FINAL_MECHANISMS):
            row = [cell, key.removeprefix("diag/")]
            seen = False
            for norm in norms:
                scored = [r for r in by_norm.get(norm, []) if is_scored(r)]
                if scored and all(unmeasured_diagnostic(r, key) for r in scored):
                    row.append("full batch")  # no minibatch sampling: any value is rounding (older records)
                    seen = True
                    continue
                values = np.array([diagnostic_value(r, key) for r in scored])
                values = values[np.isfinite(values)]
                seen |= bool(values.size)
                row.append(f"{fmt_value(float(np.median(values)))} n={values.size}" if values.size else "—")
            if seen:
                rows.append(row)
    if not rows:
        return None
    return Table(
        "Mechanism diagnostics per cell (median over runs of each run's mean over its probe points; "
        "wnbench.rl.diagnostics): ratio_dev = mean |pi_new/pi_old - 1| on the first minibatch of each PPO update "
        "(0 when train and rollout functions agree); grad_noise = tr(Sigma)/|g|^2 over probe minibatches of the "
        "algorithm's size (full batch: the update uses the whole rollout -- A2C, PPO CartPole's 256 = 8 x 32 -- so it "
        "has no minibatch sampling noise); "
        "weight_norm, eff_lr = the critic's hidden weights and their relative change per step (actor_*: the "
        "actor's; generator_*, discriminator_*, encoder_*, decoder_*, denoiser_*: that generative network's, per "
        "epoch); q_bias = mean Q "
        "minus the Monte-Carlo return; active_units = the VAE's latent dimensions whose posterior mean varies over "
        "test data (Burda et al. 2016; 0 = posterior collapse, the decoder ignores z); denoising_loss_test = the "
        "diffusion model's DDPM loss on test points",
        ["cell", "diagnostic", *norms],
        rows,
    )


def hypotheses_table(hypotheses: Sequence[HypothesisResult], title: str) -> Table:
    rows = []
    for h in hypotheses:
        rows.append(
            [
                h.name + STAGE_SUFFIX.get(h.stage, ""),
                h.family,
                h.statistic_text,
                "—" if h.nominal is None else str(h.nominal),
                h.direction_text,
                h.basis if h.statistical else "—",
                h.verdict,
            ]
        )
    return Table(
        title,
        ["hypothesis", "family", "aggregate (Holm-level CI)", "95% CI before Holm", "direction", "cells, runs",
         "verdict"],
        rows,
    )  # fmt: skip


def per_cell_table(h: HypothesisResult) -> Table:
    unit = "raw units"
    rows = []
    for c in h.cells:
        better = "higher" if c.higher_is_better else "lower"
        rows.append(
            [
                c.cell,
                f"{c.metric} ({better} better)",
                f"{fmt_value(c.median_x)} (n={c.runs_x})",
                f"{fmt_value(c.median_y)} (n={c.runs_y})",
                f"{fmt_value(c.median_difference.point)} [{fmt_value(c.median_difference.low)}, "
                f"{fmt_value(c.median_difference.high)}]",
                str(c.probability),
                c.cell_verdict,
            ]
        )
    stage = STAGE_SUFFIX.get(h.stage, "")
    return Table(
        f"{h.claim} {h.name}{stage} per cell: X = {{{', '.join(h.x)}}}, Y = {{{', '.join(h.y)}}}; "
        f"{h.direction_text}",
        ["cell", "metric", "median X", "median Y", f"median X − Y [95% CI] ({unit})", "P(X > Y) [95% CI]",
         "cell (95%, uncorrected)"],
        rows,
    )  # fmt: skip


def iqm_table(iqm: Mapping[str, stats.Estimate], anchors: Mapping[str, str]) -> Table:
    rows = [[n, str(e)] for n, e in sorted(iqm.items(), key=lambda kv: norm_order(kv[0]))]
    minmax = [c for c, a in anchors.items() if a.startswith("min-max")]
    mark = (
        f"; *min-max* in {len(minmax)} of {len(anchors)} cells" if minmax else "; fixed anchors in every cell"
    )
    return Table(
        f"IQM of normalized score [95% CI: tasks, cells, runs resampled]{mark}", ["norm", "IQM"], rows
    )


def peer_table(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Table | None:
    """Each cell's :func:`peer_checks`, in raw units and normalized.

    An RL figure is one run (the zoo's "not a quantitative benchmark", benchmark.md; a point of its agent's
    learning curve; MinAtar's curves are means, read off a figure), so the table shows the median *and* the best
    seed: *at peer level* needs the median; *best seed only* says the single run is within the seeds' spread but the
    typical run is below it. A cell run at a budget below the figure's is graded against the reference's curve
    point near its budget, or, with none, is "no reference at this budget" unless its median already reaches the
    final figure (:mod:`wnbench.report.anchors`). PacGAN's figures are means over trials: the median must reach
    them."""
    rows = []
    sources = []
    for cell, by_arm in cells.items():
        for check in peer_checks(by_arm):
            sources.append(check.single_run)
            rows.append(
                [
                    cell,
                    check.arm,
                    check.metric,
                    f"{check.steps:,.0f} ({check.zoo_steps:,.0f})" if check.zoo_steps else "—",
                    check.source,
                    f"{fmt_value(check.median)} [{fmt_value(check.low)}, {fmt_value(check.best)}] n={check.runs}",
                    f"{check.norm_median:.2f} / {check.norm_best:.2f}",
                    check.status,
                ]
            )
    if not rows:
        return None
    where = " and ".join(
        name
        for name, present in (("published RL figures from rl-baselines3-zoo, its agents' curves and MinAtar", any(sources)),
                              ("PacGAN's tables", not all(sources)))
        if present
    )  # fmt: skip
    scales = [
        text
        for text, present in (("(x - random policy) / (published - random policy) for RL", any(sources)),
                              ("x / published for PacGAN's figures", not all(sources)))
        if present
    ]  # fmt: skip
    return Table(
        f"Baselines against {where} (the peer check before any comparison): the peer arm's median [worst, best] "
        f"over seeds (lower-is-better figures: [max, min]); normalized = {', '.join(scales)}; at peer level = normalized median >= {PEER_LEVEL} for "
        "every figure of the cell",
        ["cell", "peer arm", "metric", "steps (figure's)", "published (its entry)", "median [worst, best]",
         "normalized median / best", "status"],
        rows,
    )  # fmt: skip


#: A generative metric and the record's own floor beside it: (metric, floor key, what the floor is). The floor is a
#: perfect generator's level (real data against real data, measured the same way) or, for the VAE, the trivial
#: model every VAE should beat (independent dimensions fit on the training split; the gain over it is recorded).
FLOORS = (
    ("energy_distance", "energy_distance_floor", "real vs real: test vs validation points"),
    ("fid_classifier", "fid_classifier_floor", "real vs real: training vs test images"),
    ("recognizable_pct", "recognizable_pct_real", "real test digits, same reader"),
    ("modes_covered", "modes_covered_floor", "real digits stacked at random, same reader"),
    ("kl_modes", "kl_modes_floor", "real digits stacked at random, same reader"),
    ("elbo_gain_over_baseline_nats", None, "the independent model (gain 0)"),
)
#: A VAE whose test ELBO beats the independent model by less than this (nats, median over seeds) has learned nothing
#: beyond it: on 2-D data, posterior collapse (the decoder ignores z).
TRIVIAL_GAIN_NATS = 0.01


def floor_table(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Table | None:
    """Each generative cell's peer arm (no norm; BN on StackedMNIST) against the floors its records carry
    (:data:`FLOORS`): a measure of how far the baseline is from a perfect generator, or whether it beats the trivial
    model at all, where no published figure grades it. Empty for RL records (they carry none of these metrics)."""

    def finite(recs: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
        values = np.array([(r.get("metrics") or {}).get(key, np.nan) for r in recs], dtype=float)
        return values[np.isfinite(values)]

    rows = []
    for cell, by_arm in cells.items():
        arm, recs = peer_arm_runs(by_arm)
        for metric, floor_key, what in FLOORS:
            values = finite(recs, metric)
            if not values.size:
                continue
            median = float(np.median(values))
            spread = (
                f"{fmt_value(median)} [{fmt_value(float(values.min()))}, {fmt_value(float(values.max()))}]"
            )
            if floor_key is None:
                floor_text = "0"
                status = (
                    "at the independent model's level (learns nothing beyond it)"
                    if median < TRIVIAL_GAIN_NATS
                    else f"beats it by {fmt_value(median)} nats"
                )
            else:
                floors = finite(recs, floor_key)
                if not floors.size:
                    continue
                floor = float(np.median(floors))
                floor_text = fmt_value(floor)
                status = f"{fmt_value(median - floor)} from the floor"
            rows.append([cell, arm, metric, f"{spread} n={values.size}", floor_text, what, status])
    if not rows:
        return None
    return Table(
        "Generative baselines against their floors (a perfect generator's level, measured the same way; for the "
        "VAE, the independent model it should beat): the peer arm's median [min, max] over seeds, the floor's "
        f"median; a VAE within {TRIVIAL_GAIN_NATS} nats of the independent model has learned nothing beyond it",
        ["cell", "arm", "metric", "median [min, max]", "floor", "floor is", "baseline"],
        rows,
    )


def anchor_table(anchors: Mapping[str, str]) -> Table:
    return Table("Normalization anchors per cell", ["cell", "anchor"], [[c, a] for c, a in anchors.items()])


def throughput_table(cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]]) -> Table:
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        base = [throughput(r)[0] for r in by_norm.get(NONE, [])]
        if not base:
            continue
        ref = float(np.median(base))
        higher = throughput(by_norm[NONE][0])[1]
        row = [cell, "steps per CPU s" if higher else "CPU s per run (inverted)"]
        for norm in norms:
            if norm not in by_norm:
                row.append("—")
                continue
            med = float(np.median([throughput(r)[0] for r in by_norm[norm]]))
            row.append(fmt_value(med / ref if higher else ref / med, 2))
        rows.append(row)
    return Table(
        "Median run throughput relative to no norm (higher is faster)", ["cell", "measure", *norms], rows
    )


def seed_spread_table(result: ClaimResult) -> Table:
    """How much a norm's normalized score varies across seeds (standard deviation per cell, then median)."""
    rows = []
    norms = sorted({n for by in result.cell_scores.values() for n in by}, key=norm_order)
    for norm in norms:
        spreads = [
            float(np.std(by[norm], ddof=1)) for by in result.cell_scores.values() if len(by.get(norm, ())) > 1
        ]
        if spreads:
            rows.append([norm, f"{float(np.median(spreads)):.3f}", f"{max(spreads):.3f}", str(len(spreads))])
    return Table(
        "Spread across seeds (std of normalized score within a cell)",
        ["norm", "median over cells", "largest cell", "cells"],
        rows,
    )


# -- a user's runs against a reference (wnbench report MINE --reference results/published) -----------------------
def _side(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, str, str]:
    """(finite headline values, 'median [min, max] n=', steps text) of one arm's scored records."""
    values = np.array([raw_score(r, metric_of(r)[0]) for r in records if metric_of(r)])
    n = len(values)
    values = values[np.isfinite(values)]
    steps = sorted(
        {int((r.get("metrics") or {}).get("total_steps") or r["config"].get("budget", {}).get("steps") or 0)
         for r in records} - {0}
    )  # fmt: skip
    steps_text = ", ".join(f"{s:,}" for s in steps) or "—"
    if not values.size:
        return values, f"diverged n={n}", steps_text
    text = f"{fmt_value(float(np.median(values)))} [{fmt_value(float(values.min()))}, {fmt_value(float(values.max()))}] n={n}"
    return values, text, steps_text


def reference_table(
    mine: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]]
) -> Table | None:
    """Cell by cell and arm by arm, a user's headline metric beside the reference's: every (suite, task,
    algorithm, arm) that both hold, with each side's budget in steps (a shorter budget is a different cell in
    all but name), the difference of medians in raw units and P(yours > reference) over all pairs of runs."""

    def by_key(
        records: Sequence[Mapping[str, Any]],
    ) -> dict[tuple[str, str, str, str], list[Mapping[str, Any]]]:
        out: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for r in records:
            if is_scored(r) and stage_of(r) == "eval" and metric_of(r) is not None:
                c = r["config"]
                out[(r["suite"], c["task"], c["algo"], arm_label_of(r))].append(r)
        return out

    ours, theirs = by_key(mine), by_key(reference)
    rows = []
    for key in sorted(set(ours) & set(theirs), key=lambda k: (k[0], k[1], k[2], norm_order(k[3]))):
        suite, task, algo, arm = key
        metric, higher = metric_of(ours[key][0])  # type: ignore[misc]
        x, x_text, x_steps = _side(ours[key])
        y, y_text, y_steps = _side(theirs[key])
        if x.size and y.size:
            diff = fmt_value(float(np.median(x) - np.median(y)))
            sign = 1.0 if higher else -1.0
            wins = np.sign(sign * (x[:, None] - y[None, :]))
            prob = f"{float((wins > 0).mean() + 0.5 * (wins == 0).mean()):.2f}"
        else:
            diff = prob = "—"
        rows.append([f"{suite}: {task}/{algo}", arm, metric, f"{x_text} ({x_steps} steps)",
                     f"{y_text} ({y_steps} steps)", diff, prob])  # fmt: skip
    if not rows:
        return None
    return Table(
        "Your runs against the reference, cell by cell (headline metric in raw units; P(yours > reference) is "
        "the share of run pairs where yours is better, ties half)",
        ["cell", "arm", "metric", "yours: median [min, max]", "reference: median [min, max]",
         "median yours − reference", "P(yours > reference)"],
        rows,
    )  # fmt: skip
