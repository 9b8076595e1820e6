"""Browsing a project from the client: its datasets, runs, models, maps and imagery, and downloads.

The run and model records are :mod:`eoengine.tracking.browse`'s, the models the routes answer;
that module loads torch (through the model package description), so they are imported when a
run or model is first asked for, and ``import eoengine.client`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from eoengine.client.http import Http, segment
from eoengine.platform.schemas import DatasetDetailOut, DatasetOut, ImageryItemOut, MapOut

if TYPE_CHECKING:
    from eoengine.tracking.browse import ModelDetail, RegisteredModelInfo, RunComparison, RunDetail, RunSummary


class Browsing:
    """The read-only routes of a project (mixed into :class:`~eoengine.client.Client`).

    Every method raises the :mod:`eoengine.errors` kind of the server's answer: NotFound for an
    unknown project, dataset, run, model or map, Invalid for a malformed reference.
    """

    http: Http

    def _project(self, slug: str) -> str:
        return f"/projects/{segment(slug)}"

    def datasets(self, slug: str) -> list[DatasetOut]:
        """A project's dataset versions, newest first, with chips per split."""
        return self.http.get(f"{self._project(slug)}/datasets", list[DatasetOut])

    def dataset(self, slug: str, ref: str) -> DatasetDetailOut:
        """One dataset version (``NAME@VERSION``, or a prefix of the version): manifest, class balance, band stats."""
        return self.http.get(f"{self._project(slug)}/datasets/{segment(ref)}", DatasetDetailOut)

    def download_dataset(self, slug: str, ref: str, dest: str | Path, gz: bool = False) -> Path:
        """Download a dataset version as a tar archive, streamed to disk.

        Args:
            slug: The project.
            ref: ``NAME@VERSION``.
            dest: The archive to write, or a folder to write it into under the server's name for it.
            gz: Ask for a gzipped archive.

        Returns:
            The archive written.

        Raises:
            NotFound: No such project or dataset version.
            EOError: The file cannot be written (naming it).

        """
        return self.http.download(f"{self._project(slug)}/datasets/{segment(ref)}/archive", Path(dest),
                                  gz="true" if gz else None)

    def runs(self, slug: str, sort: str | None = None, limit: int = 50) -> list[RunSummary]:
        """A project's training runs, newest first (best first by the final metric ``sort``, e.g. ``test_miou``)."""
        from eoengine.tracking.browse import RunSummary

        return self.http.get(f"{self._project(slug)}/runs", list[RunSummary], sort=sort, limit=limit)

    def run(self, slug: str, run_id: str) -> RunDetail:
        """One run: every param, tags, per-epoch history, confusion matrices and artifacts."""
        from eoengine.tracking.browse import RunDetail

        return self.http.get(f"{self._project(slug)}/runs/{segment(run_id)}", RunDetail)

    def compare_runs(self, slug: str, run_ids: list[str]) -> RunComparison:
        """Runs side by side: each param and final metric, one value per run in the order given."""
        from eoengine.tracking.browse import RunComparison

        return self.http.get(f"{self._project(slug)}/runs/compare", RunComparison, ids=",".join(run_ids))

    def models(self, slug: str) -> list[RegisteredModelInfo]:
        """A project's registered models, with their aliases and versions."""
        from eoengine.tracking.browse import RegisteredModelInfo

        return self.http.get(f"{self._project(slug)}/models", list[RegisteredModelInfo])

    def model(self, slug: str, name: str) -> ModelDetail:
        """One registered model: its versions with their package descriptions, aliases and runs."""
        from eoengine.tracking.browse import ModelDetail

        return self.http.get(f"{self._project(slug)}/models/{segment(name)}", ModelDetail)

    def maps(self, slug: str) -> list[MapOut]:
        """A project's prediction maps, newest first, each described from its file."""
        return self.http.get(f"{self._project(slug)}/maps", list[MapOut])

    def map(self, slug: str, map_id: int) -> MapOut:
        """One map: classes or value ranges, footprint, size, and its tile URL template."""
        return self.http.get(f"{self._project(slug)}/maps/{int(map_id)}", MapOut)

    def map_tile(self, slug: str, map_id: int, z: int, x: int, y: int) -> bytes:
        """One XYZ tile of a map, as PNG bytes (transparent outside the map)."""
        path = f"{self._project(slug)}/maps/{int(map_id)}/tiles/{int(z)}/{int(x)}/{int(y)}.png"
        return self.http.request("GET", path).content

    def imagery(self, slug: str) -> list[ImageryItemOut]:
        """The scenes of a project's imagery catalog, with the render recipes their bands allow."""
        return self.http.get(f"{self._project(slug)}/imagery", list[ImageryItemOut])
