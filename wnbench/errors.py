"""User-facing errors: the CLI prints their message on one line and exits 2, with no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad config, unknown name, missing file). Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        #: One line per problem, each naming its field/path, for errors that collect several.
        self.problems = problems or []

    def render(self) -> str:
        lines = [str(self)]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)
