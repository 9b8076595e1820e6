"""The long commands build a job spec from their flags; it runs in-process, or is only collected.

A command hands its spec to :func:`collected` first: while :func:`collecting` is active (see
:func:`eoengine.cli.main.spec_from_args`), the spec is kept and the command returns without
running it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from eoengine.jobs.specs import JobSpec

_SINK: ContextVar[list[JobSpec] | None] = ContextVar("eoengine_spec_sink", default=None)


@contextmanager
def collecting() -> Iterator[list[JobSpec]]:
    """Collect the specs commands build in this block instead of running them.

    Returns:
        A context manager giving the list the specs are appended to.

    """
    specs: list[JobSpec] = []
    token = _SINK.set(specs)
    try:
        yield specs
    finally:
        _SINK.reset(token)


def collected(spec: JobSpec) -> bool:
    """Keep ``spec`` instead of running it, when the command line only collects specs.

    Args:
        spec: The spec a command built from its flags.

    Returns:
        True when the spec was collected (the command returns), False when it is to run.

    """
    sink = _SINK.get()
    if sink is None:
        return False
    sink.append(spec)
    return True
