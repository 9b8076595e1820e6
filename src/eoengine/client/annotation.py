"""Annotation from the client: sets, tasks, the queue, versioned label features and review.

Features are GeoJSON dicts in EPSG:4326. An update or delete names the version last seen;
when someone else changed the feature since, the server answers 409 and the client raises
:class:`~eoengine.platform.annotation.schemas.Stale`, whose ``current`` is the stored feature
to merge into (then send again with its version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eoengine.client.http import Http, error_of, parse, segment
from eoengine.client.jobs import Job
from eoengine.errors import NotFound, os_error
from eoengine.platform.annotation.schemas import (
    CommentOut,
    DeletedOut,
    HistoryOut,
    ImportOut,
    ImportRefused,
    SetOut,
    SnapshotOut,
    Stale,
    TaskOut,
)
from eoengine.platform.schemas import JobOut

Feature = dict[str, Any]


class Annotating:
    """The annotation routes of a project (mixed into :class:`~eoengine.client.Client`).

    Every method raises the :mod:`eoengine.errors` kind of the server's answer: NotFound for an
    unknown set, task or feature, Denied for a task not assigned to the caller, Conflict for a
    task whose state refuses the change, Invalid for a bad geometry or label.
    """

    http: Http

    def _annotation(self, slug: str) -> str:
        return f"/projects/{segment(slug)}/annotation"

    def create_annotation_set(self, slug: str, name: str, items: list[str], kind: str = "classes",
                              **options: Any) -> SetOut:
        """A new annotation set (reviewers): its tasks are the block-grid cells of its first item over the area.

        Args:
            slug: The project.
            name: The set's name.
            items: STAC item ids of the project's imagery (several: dates).
            kind: ``classes`` or ``change``.
            **options: ``classes``, ``aoi`` (GeoJSON in EPSG:4326), ``block_size``, ``background``.

        Returns:
            The set, with its task counts.

        """
        body = {"name": name, "items": items, "kind": kind} | {k: v for k, v in options.items() if v is not None}
        return self.http.send("POST", f"{self._annotation(slug)}/sets", SetOut, body)

    def annotation_sets(self, slug: str) -> list[SetOut]:
        """The project's annotation sets, newest first."""
        return self.http.get(f"{self._annotation(slug)}/sets", list[SetOut])

    def annotation_tasks(self, slug: str, set_id: int) -> dict[str, Any]:
        """A set's tasks as a GeoJSON FeatureCollection (cells with state, assignee, feature counts)."""
        return self.http.get(f"{self._annotation(slug)}/sets/{set_id}/tasks", dict[str, Any])

    def annotation_task(self, slug: str, task_id: int) -> TaskOut:
        """One task, with its comments."""
        return self.http.get(f"{self._annotation(slug)}/tasks/{task_id}", TaskOut)

    def task_history(self, slug: str, task_id: int) -> HistoryOut:
        """A task's events and its features', oldest first."""
        return self.http.get(f"{self._annotation(slug)}/tasks/{task_id}/history", HistoryOut)

    def assign_task(self, slug: str, task_id: int, user: str | None) -> TaskOut:
        """Assign a task to a member who may annotate (None: unassign it; reviewers)."""
        return self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/assign", TaskOut, {"user": user})

    def next_task(self, slug: str, set_id: int) -> TaskOut:
        """The caller's next task of a set (theirs still to do, rejected first; else one from the queue).

        Raises:
            NotFound: None is left.

        """
        return self.http.send("POST", f"{self._annotation(slug)}/sets/{set_id}/next", TaskOut)

    def task_features(self, slug: str, task_id: int) -> dict[str, Any]:
        """A task's label features as a GeoJSON FeatureCollection."""
        return self.http.get(f"{self._annotation(slug)}/tasks/{task_id}/features", dict[str, Any])

    def add_feature(self, slug: str, task_id: int, geometry: dict[str, Any], label: Any = None,
                    **properties: Any) -> Feature:
        """Draw a feature in a task: a GeoJSON geometry in EPSG:4326 and a class value (or ``from``/``to``).

        Args:
            slug: The project.
            task_id: The task (assigned to the caller).
            geometry: The geometry, lon/lat.
            label: A class value of the set (a change set: ``change`` / ``no-change``, or give ``from`` and ``to``).
            **properties: ``item`` (default: the set's first), ``from``, ``to``, ``items``.

        Returns:
            The stored feature (version 1).

        """
        props = ({"label": label} if label is not None else {}) | properties
        return self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/features", Feature,
                              {"type": "Feature", "geometry": geometry, "properties": props})

    def _edit(self, method: str, path: str, **kwargs: Any) -> Feature:
        response = self.http.request(method, path, allow=(409,), **kwargs)
        body: dict[str, Any] = response.json()
        if response.status_code == 409:
            if "current" not in body:  # a task state refusing the change: the plain Conflict
                raise error_of(response)
            raise Stale(str(body.get("error")), str(body.get("fix")), body["current"])
        return body

    def update_feature(self, slug: str, feature: Feature) -> Feature:
        """Replace a feature: ``feature`` has its ``id`` and ``properties.version``, the version last seen.

        Returns:
            The stored feature, at version + 1.

        Raises:
            Stale: Someone changed (or deleted) it since; ``current`` is the stored feature.

        """
        return self._edit("PUT", f"{self._annotation(slug)}/features/{int(feature['id'])}", json=feature)

    def delete_feature(self, slug: str, feature_id: int, version: int) -> DeletedOut:
        """Delete a feature at the version last seen.

        Raises:
            Stale: Someone changed (or deleted) it since; ``current`` is the stored feature.

        """
        body = self._edit("DELETE", f"{self._annotation(slug)}/features/{feature_id}", params={"version": version})
        return DeletedOut.model_validate(body)

    def submit_task(self, slug: str, task_id: int) -> TaskOut:
        """Hand a task in for review (its assignee)."""
        return self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/submit", TaskOut)

    def review_task(self, slug: str, task_id: int, decision: str, comment: str | None = None,
                    pins: list[dict[str, Any]] | None = None) -> TaskOut:
        """Accept or reject a submitted task (reviewers); a rejection needs a comment or pins ``{lon, lat, text}``."""
        body = {"decision": decision, "comment": comment, "pins": pins or []}
        return self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/review", TaskOut, body)

    def comment_task(self, slug: str, task_id: int, text: str, lon: float | None = None,
                     lat: float | None = None) -> CommentOut:
        """Comment on a task (pinned at lon, lat when both are given)."""
        return self.http.send("POST", f"{self._annotation(slug)}/tasks/{task_id}/comments", CommentOut,
                              {"text": text, "lon": lon, "lat": lat})

    def resolve_comment(self, slug: str, comment_id: int, resolved: bool = True) -> CommentOut:
        """Mark a task's comment resolved, or open again (``resolved=False``; the task's annotator or a reviewer)."""
        return self.http.send("POST", f"{self._annotation(slug)}/comments/{comment_id}/resolve", CommentOut,
                              {"resolved": resolved})

    def export_labels(self, slug: str, set_id: int, format: str = "geojson", dest: str | Path = ".",
                      state: str = "accepted") -> Path:
        """Download a set's labels: ``geojson``, ``gpkg``, ``raster`` (a label COG) or ``stac`` (a zip).

        Args:
            slug: The project.
            set_id: The set.
            format: The format.
            dest: The file to write, or a folder to write into under the server's name (``SET-STATE.SUFFIX``).
            state: ``accepted`` (the default) or ``all`` tasks' labels.

        Returns:
            The file written (whole, or not at all).

        Raises:
            Invalid: An unknown format or state, or one the set cannot give (a raster of a change set).

        """
        return self.http.download(f"{self._annotation(slug)}/sets/{set_id}/export", Path(dest), format=format,
                                  state=state)

    def import_labels(self, slug: str, set_id: int, path: str | Path) -> ImportOut:
        """Import a file of labels into a set's tasks, all or none (streamed from disk).

        Args:
            slug: The project.
            set_id: The set.
            path: GeoJSON, GeoPackage, zipped Shapefile, a label raster or a model's class map.

        Returns:
            How many features were stored, in how many tasks.

        Raises:
            ImportRefused: Some features are bad; ``problems`` lists each (index in the file, reason).
            NotFound: No such file here, or no such set.

        """
        file = Path(path)
        if not file.is_file():
            raise NotFound(f"{file} is not a file", "pass the path of the labels file to import")
        try:
            handle = file.open("rb")
        except OSError as exc:
            raise os_error(exc) from None
        with handle:
            response = self.http.request("POST", f"{self._annotation(slug)}/sets/{set_id}/import", allow=(422,),
                                         files={"file": (file.name, handle, "application/octet-stream")})
        body = response.json()
        if response.status_code == 422:
            if not isinstance(body, dict) or "problems" not in body:
                raise error_of(response)
            raise ImportRefused(body["problems"], str(body.get("error")), str(body.get("fix")))
        return parse(body, ImportOut, self.http.url)  # type: ignore[no-any-return]

    def take_snapshot(self, slug: str, set_id: int) -> SnapshotOut:
        """Freeze a set's accepted labels (reviewers): the same labels give the same snapshot (its hash)."""
        return self.http.send("POST", f"{self._annotation(slug)}/sets/{set_id}/snapshots", SnapshotOut)

    def snapshots(self, slug: str, set_id: int) -> list[SnapshotOut]:
        """A set's snapshots, newest first."""
        return self.http.get(f"{self._annotation(slug)}/sets/{set_id}/snapshots", list[SnapshotOut])

    def build_snapshot(self, slug: str, set_id: int, digest: str) -> Job:
        """Queue a dataset build from a snapshot (reviewers); wait on the handle for the dataset (``result.path``)."""
        info = self.http.send("POST", f"{self._annotation(slug)}/sets/{set_id}/snapshots/{segment(digest)}/build",
                              JobOut)
        return Job(self.http, info)

    def download_snapshot(self, slug: str, set_id: int, digest: str, dest: str | Path = ".") -> Path:
        """Download a snapshot as a zip: its label files and an ``eoengine.yaml`` building the same dataset version.

        Args:
            slug: The project.
            set_id: The set.
            digest: The snapshot's hash.
            dest: The zip to write, or a folder to write it into (``SET-HASH12.zip``).

        Returns:
            The zip written.

        """
        return self.http.download(f"{self._annotation(slug)}/sets/{set_id}/snapshots/{segment(digest)}/download",
                                  Path(dest))
