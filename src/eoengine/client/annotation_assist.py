"""Model-assisted labelling from the client: pre-label a task with a registered model, rank a set's tasks, accept.

A pre-label or rank is a job of the project (kind ``prelabel``): the methods answer a
:class:`~eoengine.client.jobs.Job` to wait for. When it has run, the task's features include
the model's polygons as pending suggestions (``properties.suggestion: true``); accept one
with :meth:`Assisting.accept_feature`, edit it (which accepts it too) or delete it.
"""

from __future__ import annotations

from eoengine.client.annotation import Annotating, Feature
from eoengine.client.jobs import Job
from eoengine.platform.schemas import JobOut


class Assisting(Annotating):
    """The model-assisted annotation routes of a project (mixed into :class:`~eoengine.client.Client`)."""

    def prelabel_task(self, slug: str, task_id: int, model: str, item: str | None = None) -> Job:
        """Queue a pre-labelling of a task's cell (its assignee, or a reviewer).

        Args:
            slug: The project.
            task_id: The task (open, in progress or rejected).
            model: A registered model: ``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/NAME@ALIAS``.
            item: The set's item to predict (default: its first).

        Returns:
            The queued job; once it has succeeded the task holds the suggestions.

        Raises:
            NotFound: No such task or model.
            Invalid: The item lacks a band of the model (named), or the model's classes are not the set's.
            Conflict: The task is frozen.

        """
        info = self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/prelabel", JobOut,
                              {"model": model, "item": item})
        return Job(self.http, info)

    def rank_tasks(self, slug: str, set_id: int, model: str, item: str | None = None) -> Job:
        """Queue a ranking of a set's open tasks by the model's mean entropy (reviewers): ``next`` serves the highest first.

        Args:
            slug: The project.
            set_id: The set.
            model: A registered model, as for :meth:`prelabel_task`.
            item: The set's item to predict (default: its first).

        Returns:
            The queued job; once it has succeeded each open primary task's ``priority`` is its mean entropy.

        """
        info = self.http.send("POST", f"{self._annotation(slug)}/sets/{set_id}/rank", JobOut,
                              {"model": model, "item": item})
        return Job(self.http, info)

    def accept_feature(self, slug: str, feature_id: int, version: int) -> Feature:
        """Accept a model's suggestion at the version last seen: it becomes a feature like a drawn one.

        Returns:
            The feature, at version + 1.

        Raises:
            Stale: Someone changed (or deleted) it since; ``current`` is the stored feature.
            Conflict: It is no pending suggestion, or its task is frozen.

        """
        return self._edit("POST", f"{self._annotation(slug)}/features/{feature_id}/accept", json={"version": version})
