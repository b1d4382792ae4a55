"""Baselines graded against their references (the zoo, PacGAN, generative floors) and generative arms in their cells."""

from __future__ import annotations

import pytest
from report_v2_fixtures import (
    REPS,
    _c,
    _gen_record,
    _record,
    _records,
    _registry_v2,  # noqa: F401  (autouse: these tests check the v2 rules)
)

from wnbench.report import Inputs, analyze, build_report
from wnbench.suite.store import write_record


def test_gen_placement_arms_share_their_cell_and_are_compared_as_arms():
    """The SN-GAN arm (SN on D alone) sits in the same ring8 cell as the both-network norms, under its own label,
    and the mixture headline is hq_coverage_pct (modes covered saturates)."""
    records = []
    for task in ("ring8", "grid25"):
        for seed in range(3):
            records.append(_gen_record(f"{task}-w{seed}", task, "weight", seed, 90.0 + seed))
            records.append(_gen_record(f"{task}-b{seed}", task, "batch", seed, 40.0 + seed))
            records.append(
                _gen_record(f"{task}-sn{seed}", task, "spectral", seed, 95.0 + seed, norm_on="discriminator")
            )
            records.append(
                _gen_record(f"{task}-wd{seed}", task, "weight", seed, 60.0 + seed, norm_on="discriminator")
            )
    c2 = _c(analyze(Inputs(records=records), reps=REPS), "C2")
    assert sorted(c.cell for c in c2.headline.cells) == ["grid25/gan", "ring8/gan"]  # norm_on splits no cell
    assert c2.headline.metric == "hq_coverage_pct"
    assert c2.headline.point == pytest.approx(
        1.0
    )  # weight (both) beats batch; weight@discriminator is not WN
    by_name = {h.name: h for h in c2.hypotheses}
    assert by_name["WN on D > SN on D (the SN-GAN arm)"].point == pytest.approx(0.0)
    assert by_name["WN on both > SN on D"].point == pytest.approx(0.0)
    assert set(c2.status_counts) == {"weight", "batch", "spectral@discriminator", "weight@discriminator"}


def test_generative_baselines_are_graded_against_their_floors_and_the_trivial_model(tmp_path):
    """With no published figure, a generative cell's no-norm arm still gets a line against each floor its records
    carry: the energy distance's real-vs-real level (the gap in raw units) and, for a VAE, the independent model: a
    median gain under 0.01 nats reads as learning nothing beyond it."""
    for task, gain in (("circles", 0.002), ("moons", 0.8)):
        for seed in range(3):
            for norm in ("none", "batch"):
                r = _gen_record(f"{task}-{norm}{seed}", task, norm, seed, 0.0)
                r["config"]["algo"] = "vae"
                r["metrics"] = {"elbo_test_nats": -2.0 - seed, "elbo_gain_over_baseline_nats": gain + 0.001 * seed,
                                "energy_distance": 0.02 + 0.01 * seed, "energy_distance_floor": 0.001}  # fmt: skip
                write_record(tmp_path / "gen", r)
    build_report([tmp_path / "gen"], tmp_path / "out", reps=REPS)
    text = (tmp_path / "out" / "report.md").read_text()
    rows = [
        line
        for line in text.splitlines()
        if "| none | " in line and ("floor" in line or "independent" in line)
    ]
    assert any(
        r.startswith("| circles/vae | none | elbo_gain_over_baseline_nats") and "learns nothing" in r
        for r in rows
    )
    assert any(
        r.startswith("| moons/vae | none | elbo_gain_over_baseline_nats") and "beats it by 0.801" in r
        for r in rows
    )
    assert any(r.startswith("| moons/vae | none | energy_distance | 0.03 [0.02, 0.04] n=3 | 0.001 |")
               and "0.029 from the floor" in r for r in rows)  # fmt: skip


def test_the_peer_table_grades_the_no_norm_arm_against_the_zoo():
    """CartPole-v1 (random 23.68, zoo 500): a median of 495 is at peer level; a median of 100 with one seed at 500
    is below peer with its best seed at peer; at half the zoo's steps a cell is at peer level there when its median
    is, and a sample-efficiency cell when it is not. Other arms do not enter the table, and a CrossQ cell's peer is
    stock CrossQ (batch renorm, pre), not no-norm."""
    from wnbench.report.cells import group_cells
    from wnbench.report.tables import peer_table

    def cell(task_values, steps, algo="ppo", norm="none"):
        out = _records({"CartPole-v1": {norm: task_values}})
        for r in out:
            r["config"].update(algo=algo, resolved={"n_timesteps": 100_000})
            r["metrics"]["total_steps"] = steps
            r["run_id"] += algo
        return out

    at_peer = cell([495.0, 490, 500], 100_000)
    below = cell([100.0, 90, 500], 100_000, algo="dqn")
    short = cell([495.0, 490, 500], 50_000, algo="a2c")
    short_below = cell([100.0, 90, 120], 50_000, algo="td3")
    stock = cell([500.0, 500, 500], 100_000, algo="crossq", norm="batch_renorm")
    for r in stock:
        r["config"]["norm"] = "batch_renorm[placement=pre]"
    other_arm = cell([10.0, 10, 10], 100_000, norm="weight")
    table = peer_table(group_cells(at_peer + below + short + short_below + stock + other_arm))
    rows = {row[0]: row for row in table.rows}
    assert rows["CartPole-v1/ppo"][1] == "none" and rows["CartPole-v1/ppo"][-1] == "at peer level"
    assert rows["CartPole-v1/ppo"][2] == "final_return"
    assert rows["CartPole-v1/ppo"][6] == "0.99 / 1.00"  # (495 - 23.68) / (500 - 23.68)
    assert rows["CartPole-v1/dqn"][-1].startswith("below peer in the median; best seed at peer")
    assert rows["CartPole-v1/a2c"][-1] == "at peer level at 50% of the zoo's steps"
    assert rows["CartPole-v1/td3"][-1].startswith("short budget (50% of the zoo's steps)")
    assert rows["CartPole-v1/crossq"][1] == "batch_renorm[placement=pre]"
    assert rows["CartPole-v1/crossq"][-1] == "at peer level"


def _gan_records(
    task: str, norm: str, hq: list[float], modes: list[float], coverage: list[float]
) -> list[dict]:
    out = []
    for seed, (h, m, c) in enumerate(zip(hq, modes, coverage, strict=True)):
        r = _record(f"{task}-{norm}-{seed}", "gen", ["C2"], task, norm, seed, 0.0)
        r["config"].update(kind="gen", algo="gan", budget={"steps": None})
        r["metrics"] = {"high_quality_pct": h, "modes_covered_any": m, "hq_coverage_pct": c}
        r["curves"] = {}
        out.append(r)
    return out


def test_mixture_gan_baselines_are_graded_against_pacgan_and_a_below_peer_cell_gets_its_own_verdict():
    """PacGAN Table 1's unmodified GAN: ring8 98.2 % high-quality samples and 6.3 modes, grid25 94.8 % and 17.3.
    A no-norm grid25 GAN with 88 % high-quality samples covers more modes than PacGAN's but is below its HQ share
    (88 / 94.8 = 0.93 < 0.95): the cell is below peer, and C2's headline is tested again without it."""
    from wnbench.report.cells import group_cells
    from wnbench.report.tables import peer_table

    records = (
        _gan_records("ring8", "none", [97.0, 96.0, 98.0], [8, 7, 8], [80.0, 82, 84])
        + _gan_records("ring8", "weight", [97.0, 96.0, 98.0], [8, 8, 8], [90.0, 91, 92])
        + _gan_records("ring8", "batch", [97.0, 96.0, 98.0], [6, 6, 7], [60.0, 61, 62])
        + _gan_records("grid25", "none", [88.0, 87.0, 89.0], [19, 18, 20], [45.0, 46, 47])
        + _gan_records("grid25", "weight", [88.0, 87.0, 89.0], [19, 18, 20], [40.0, 41, 42])
        + _gan_records("grid25", "batch", [88.0, 87.0, 89.0], [19, 18, 20], [50.0, 51, 52])
        + _gan_records("moons", "none", [88.0, 87.0, 89.0], [1, 1, 1], [45.0, 46, 47])  # no published figure
    )
    rows = [row for row in peer_table(group_cells(records)).rows]
    graded = {(row[0], row[2]): row for row in rows}
    assert set(graded) == {(c, m) for c in ("ring8/gan", "grid25/gan") for m in ("modes_covered_any",
                                                                                  "high_quality_pct")}  # fmt: skip
    assert graded[("ring8/gan", "high_quality_pct")][-1] == "at peer level"
    assert graded[("ring8/gan", "modes_covered_any")][6] == f"{8 / 6.3:.2f} / {8 / 6.3:.2f}"
    assert graded[("grid25/gan", "modes_covered_any")][-1] == "at peer level"
    assert graded[("grid25/gan", "high_quality_pct")][-1] == "below peer level"  # best 89 / 94.8 = 0.94
    assert "PacGAN Table 1 GAN 94.8" in graded[("grid25/gan", "high_quality_pct")][4]
    c2 = _c(analyze(Inputs(records=records), reps=REPS), "C2")
    assert [c.cell for c in c2.headline.cells] == ["grid25/gan", "ring8/gan"]
    assert [c.cell for c in c2.peer_headline.cells] == ["ring8/gan"]
