"""``wnbench bench``: micro-benchmarks of the norm layers themselves (claims C3, C4), apart from the suites.

Each command writes one JSON file (and a plot where people would rather look) under ``--out``; user mistakes raise
:class:`~wnbench.errors.UserError`, which :func:`wnbench.cli.main` turns into exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wnbench.bench.models import DEFAULT_MODELS as OVERHEAD_MODELS
from wnbench.bench.noise import DEFAULT_NORMS as NOISE_NORMS
from wnbench.bench.overhead import DEFAULT_NORMS as OVERHEAD_NORMS
from wnbench.errors import UserError

bench_app = typer.Typer(
    no_args_is_help=True, help="Micro-benchmarks of the norm layers themselves (claims C3, C4)."
)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device: '{device}' asked for, but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"--device: expected auto, cpu or cuda[:N], got '{device}'")
    return device


def _say(message: str) -> None:
    typer.echo(message, err=True)


@bench_app.command("overhead")
def bench_overhead(
    out: Path = typer.Option(Path("results/bench"), help="Directory for overhead.json."),
    norms: str = typer.Option(
        ",".join(OVERHEAD_NORMS), help="Comma-separated norms ('none' is always included)."
    ),
    models: str = typer.Option(
        ",".join(OVERHEAD_MODELS), help="Comma-separated: mlp, dcgan_d, dcgan_g, lstm_t16, lstm_t64."
    ),
    repeats: int = typer.Option(
        21, help="Interleaved repeats; ratios are medians of per-repeat paired ratios."
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: int = typer.Option(1, help="torch CPU threads (1 matches how suite workers run)."),
    seed: int = typer.Option(0),
) -> None:
    """Claim C3: train-step, act-step and peak-memory cost of every norm, as ratios to 'none'."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from wnbench.bench.output import environment, write_rows
    from wnbench.bench.overhead import check_names, measure_overhead

    norm_list, model_list = _csv(norms), _csv(models)
    check_names(norm_list, model_list)
    dev = _pick_device(device)
    torch.set_num_threads(threads)
    rows = measure_overhead(norm_list, model_list, repeats=repeats, device=dev, seed=seed, progress=_say)
    meta = {**environment(dev), "repeats": repeats, "seed": seed}
    write_rows(out / "overhead.json", rows, meta)
    table = Table(
        title=f"Overhead vs none (median of {repeats} interleaved paired ratios; {dev}, {threads} thread(s))"
    )
    for col in ("model", "norm", "train step", "act step", "peak memory", "train / act", "per time step"):
        table.add_column(col, justify="left" if col in ("model", "norm") else "right")
    for r in rows:
        table.add_row(
            r.model, r.norm,
            f"{r.train_step_ratio:.2f}x [{r.train_step_ratio_q25:.2f}-{r.train_step_ratio_q75:.2f}]",
            f"{r.act_step_ratio:.2f}x [{r.act_step_ratio_q25:.2f}-{r.act_step_ratio_q75:.2f}]",
            f"{r.peak_memory_ratio:.2f}x ({r.peak_memory_mb:.1f} MB)",
            f"{r.train_step_ms:.2f} ms / {r.act_step_us:.0f} us",
            f"{r.train_step_ms / r.steps * 1e3:.0f} us" if r.steps > 1 else "",
        )  # fmt: skip
    Console(width=140).print(table)
    typer.echo(f"wrote {out / 'overhead.json'}")


@bench_app.command("sn-targets")
def bench_sn_targets(
    out: Path = typer.Option(Path("results/bench"), help="Directory for sn_targets.json."),
    seed: int = typer.Option(0),
) -> None:
    """Spectral norm in SB3 target networks: sigma of each SN layer after SAC, TD3 and DQN training."""
    import torch

    from wnbench.bench.output import environment, write_rows
    from wnbench.bench.targets import measure_target_sigmas

    torch.set_num_threads(1)
    rows = measure_target_sigmas(seed=seed, progress=_say)
    write_rows(out / "sn_targets.json", rows, {**environment("cpu"), "seed": seed})
    for r in rows:
        typer.echo(f"{r.algo:4} {r.env_id:12} {r.steps:5d} steps  {r.network:14} sigma = {r.sigmas}")
    typer.echo(f"wrote {out / 'sn_targets.json'}")


@bench_app.command("noise")
def bench_noise(
    out: Path = typer.Option(Path("results/bench"), help="Directory for noise.json and noise.png."),
    norms: str = typer.Option(",".join(NOISE_NORMS), help="Comma-separated norms."),
    batch_sizes: str = typer.Option("2,4,8,16,32,64,128,256", help="Comma-separated batch sizes (>= 2)."),
    companions: int = typer.Option(64, help="Random companion sets per batch size."),
    seed: int = typer.Option(0),
) -> None:
    """Claim C4: how much one input's output moves when only its batch companions change (train mode)."""
    from rich.console import Console
    from rich.table import Table

    from wnbench.bench.noise import check_args, measure_noise, plot_noise
    from wnbench.bench.output import environment, write_rows

    norm_list = _csv(norms)
    try:
        sizes = [int(b) for b in _csv(batch_sizes)]
    except ValueError:
        raise UserError(f"--batch-sizes: expected comma-separated integers, got '{batch_sizes}'") from None
    check_args(norm_list, sizes, companions)
    rows = measure_noise(norm_list, sizes, companions=companions, seed=seed)
    write_rows(out / "noise.json", rows, {**environment("cpu"), "companions": companions, "seed": seed})
    plot_noise(rows, out / "noise.png")
    table = Table(title="Relative spread of one input's output across batch companions (train mode)")
    table.add_column("norm")
    for b in sizes:
        table.add_column(f"B={b}", justify="right")
    for name in norm_list:
        table.add_row(name, *[f"{r.relative_spread:.3g}" for r in rows if r.norm == name])
    Console(width=160).print(table)
    typer.echo(f"wrote {out / 'noise.json'} and {out / 'noise.png'}")


@bench_app.command("ddi")
def bench_ddi(
    out: Path = typer.Option(Path("results/bench"), help="Directory for ddi.json."),
    seeds: int = typer.Option(10, min=1, help="Seeds per layer shape."),
) -> None:
    """Claim C8: one layer on whitened input -- WN with data-dependent init against BN, at init (float64)."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from wnbench.bench.ddi import (
        DEFAULT_SHAPES,
        HELDOUT_TOLERANCE,
        INIT_TOLERANCE,
        measure_ddi,
        measure_reach,
        reach_summary,
    )
    from wnbench.bench.output import environment, write_rows

    rows = measure_ddi(range(seeds), DEFAULT_SHAPES)
    reach = measure_reach(range(min(seeds, 5)))
    summary = reach_summary(reach)
    meta = {
        **environment("cpu"),
        "init_tolerance": INIT_TOLERANCE,
        "heldout_tolerance": HELDOUT_TOLERANCE,
        "reach": [asdict(r) for r in reach],
        "reach_summary": summary,
    }
    write_rows(out / "ddi.json", rows, meta)
    worst = max(r.init_max_abs_diff for r in rows)
    fresh = max(r.fresh_mean_abs_diff for r in rows)
    typer.echo(
        f"WN+DDI vs BN over {len(rows)} layers: max |difference| on the init batch {worst:.2e} "
        f"(tolerance {INIT_TOLERANCE:g}); mean |difference| on a fresh whitened batch <= {fresh:.3f}"
    )
    table = Table(
        title="Where WN+DDI stops behaving like BN: median mean |difference| on a held-out batch of 512"
    )
    table.add_column("inputs")
    table.add_column("depth", justify="right")
    for steps in sorted({r["train_steps"] for r in summary}):
        table.add_column(f"after {steps} SGD steps", justify="right")
    for inputs in sorted({r["inputs"] for r in summary}):
        for depth in sorted({r["depth"] for r in summary}):
            cells = [r for r in summary if (r["inputs"], r["depth"], r["batch"]) == (inputs, depth, 512)]
            table.add_row(inputs, str(depth), *[f"{r['median_mean_abs_diff']:.3f}" for r in cells])
    Console(width=160).print(table)
    typer.echo(f"(output standard deviations; within {HELDOUT_TOLERANCE:g} counts as behaving like BN)")
    typer.echo(f"wrote {out / 'ddi.json'}")


@bench_app.command("inference")
def bench_inference(
    out: Path = typer.Option(Path("results/bench"), help="Directory for inference.json."),
    reps: int = typer.Option(4000, help="Replicates per setting (new method, candidates)."),
    old_reps: int = typer.Option(200, help="Replicates for the old bootstrap (slow); 0: left out."),
    boot_reps: int = typer.Option(500, help="Bootstrap resamples inside each old-method replicate."),
    tasks: str = typer.Option("3,5,8,12", help="Comma-separated task counts to simulate."),
    seed: int = typer.Option(0),
) -> None:
    """Task-level inference: family-wise error under task-level nulls and power, old method vs new (simulation)."""
    from rich.console import Console

    from wnbench.bench.inference import check_args, rich_table, run_inference_bench

    try:
        counts = [int(t) for t in _csv(tasks)]
    except ValueError:
        raise UserError(f"--tasks: expected comma-separated integers, got '{tasks}'") from None
    check_args(reps, old_reps, boot_reps, counts)
    data = run_inference_bench(out, reps, old_reps, boot_reps, seed, counts, progress=_say)
    Console(width=160).print(rich_table(data))
    typer.echo(f"wrote {out / 'inference.json'}")
