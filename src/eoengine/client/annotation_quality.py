"""Annotation quality from the client: gold tasks, double-labelled cells and per-annotator statistics."""

from __future__ import annotations

from eoengine.client.http import Http, segment
from eoengine.platform.annotation.schemas import AnnotatorDetailOut, GoldOut, SetStatsOut, TaskOut


class AnnotationQuality:
    """The annotation quality routes of a project (mixed into :class:`~eoengine.client.Client`).

    Every method raises the :mod:`eoengine.errors` kind of the server's answer: Denied for a
    role that may not, Conflict for a task that cannot be gold, Invalid for bad input.
    """

    http: Http

    def _quality(self, slug: str) -> str:
        return f"/projects/{segment(slug)}/annotation"

    def mark_gold(self, slug: str, task_id: int, annotators: list[str] | None = None) -> GoldOut:
        """Mark an accepted task gold and give each annotator a blind copy of it (reviewers).

        Args:
            slug: The project.
            task_id: An accepted primary task.
            annotators: Who labels it again (None: every member whose role is annotator, but its own).

        Returns:
            The task and the copies made (an annotator holding one already gets none).

        Raises:
            Conflict: The task is not accepted, or is a copy.
            Invalid: A name is no member who may annotate, or the task's own annotator.

        """
        return self.http.send("POST", f"{self._quality(slug)}/tasks/{task_id}/gold", GoldOut,
                              {"annotators": annotators})

    def double_label(self, slug: str, set_id: int, share: float | None = None, seed: int = 0,
                     tasks: list[int] | None = None) -> list[TaskOut]:
        """Have cells labelled a second time, independently (reviewers): a share drawn by seed, or the tasks listed.

        Args:
            slug: The project.
            set_id: The set.
            share: In (0, 1]: that share of the set's primary tasks (rounded up), drawn by ``seed``.
            seed: The draw's seed.
            tasks: Primary task ids instead of a share.

        Returns:
            The copies made (tasks with a double copy already get none).

        Raises:
            Invalid: Both or neither of share and tasks, a share out of (0, 1], or an id of no primary task.

        """
        body = {"share": share, "seed": seed} if tasks is None else {"tasks": tasks}
        return self.http.send("POST", f"{self._quality(slug)}/sets/{set_id}/double", list[TaskOut], body)

    def annotation_stats(self, slug: str, set_id: int) -> SetStatsOut:
        """A set's quality statistics: tasks by state, copies, and every annotator's (reviewers)."""
        return self.http.get(f"{self._quality(slug)}/sets/{set_id}/stats", SetStatsOut)

    def annotator_stats(self, slug: str, set_id: int, username: str) -> AnnotatorDetailOut:
        """One annotator's statistics with each comparison (a reviewer, or the annotator themself).

        Raises:
            Denied: An annotator asking about someone else.

        """
        return self.http.get(f"{self._quality(slug)}/sets/{set_id}/stats/{segment(username)}", AnnotatorDetailOut)
