"""The ``wnbench`` command line (typer). Makefile targets call this.

User mistakes (a bad config, an unknown norm, a missing file) print one clear message and exit 2;
tracebacks are for bugs only.
"""

from __future__ import annotations

import sys

import typer

from wnbench.errors import UserError
from wnbench.norms import NormError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmarks that test whether Weight Normalization beats Batch Normalization in noise-sensitive training.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Micro-benchmarks of the norm layers themselves (claims C3, C4).")
app.add_typer(bench_app, name="bench")


@app.command("norms")
def norms_command() -> None:
    """List the registered norm kinds, one line each."""
    from rich.console import Console
    from rich.table import Table

    from wnbench.norms import available_norms, make_norm, norm_aliases

    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("norm")
    table.add_column("batch stats")
    table.add_column("recurrent")
    table.add_column("what it is")
    aliases = norm_aliases()
    for name in available_norms():
        norm = make_norm(name)
        summary = norm.summary if name not in aliases else f"= {aliases[name][0]} with {aliases[name][1]}"
        table.add_row(
            name, "yes" if norm.uses_batch_statistics else "no", "yes" if norm.supports_recurrent else "no", summary
        )
    Console(width=160).print(table)


def main() -> None:
    """Console-script entry point: run the app, turning user errors into exit code 2."""
    try:
        app()
    except (UserError, NormError) as err:
        message = err.render() if isinstance(err, UserError) else str(err)
        print(f"wnbench: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
