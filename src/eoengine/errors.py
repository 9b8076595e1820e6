"""User-facing errors.

Every problem a user can fix (a missing file, a wrong band name, a malformed config) is
raised as :class:`EOError`, whose message names the offending thing and how to fix it. The
CLI prints these as one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class EOError(Exception):
    """An error caused by user input, with a message that names the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class ConfigError(EOError):
    """A project config that does not validate; carries every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "; ".join(problems)
        super().__init__(f"{source}: {len(problems)} problem(s): {listing}")


def first_line(exc: BaseException) -> str:
    """An exception's first message line, cut to 300 characters (its type name if it has none)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
