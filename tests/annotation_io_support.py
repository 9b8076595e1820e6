"""Helpers of the annotation import/export tests: a set of block-grid tasks on the sample stack, written with the ORM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from jobs_support import make_project
from platform_server import LiveServer
from pyproj import Transformer
from shapely.geometry import Polygon, mapping, shape
from sqlalchemy import select

from eoengine.platform.annotation.grid import cells, geojson, grid_of
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, LabelFeature, Project, User

BASE = "/projects/tiny/annotation"
"""The annotation routes of the tests' project."""
CLASSES = [{"value": 1, "name": "forest", "color": "#1b7837"}, {"value": 2, "name": "water", "color": "#1f78b4"},
           {"value": 3, "name": "herbaceous", "color": "#b2df8a"}, {"value": 4, "name": "barren", "color": "#a6761d"},
           {"value": 5, "name": "urban", "color": "#e31a1c"}]


@dataclass(frozen=True)
class PixelGrid:
    """A raster's grid, to place polygons on pixel corners (row, col) in EPSG:4326."""

    crs: str
    transform: tuple[float, ...]
    width: int
    height: int

    def lonlat(self, row: float, col: float) -> tuple[float, float]:
        """The EPSG:4326 position of a pixel corner."""
        a = rasterio.Affine(*self.transform[:6])
        x, y = a @ (col, row)
        lon, lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(x, y)
        return float(lon), float(lat)

    def box(self, r0: float, c0: float, r1: float, c1: float) -> dict[str, Any]:
        """The polygon of pixel corners (r0, c0)–(r1, c1) as EPSG:4326 GeoJSON."""
        corners = [self.lonlat(r, c) for r, c in ((r0, c0), (r0, c1), (r1, c1), (r1, c0))]
        return dict(json.loads(json.dumps(mapping(Polygon(corners)))))  # lists, as JSON has them


def stack_grid(path: Path) -> PixelGrid:
    """The grid of a GeoTIFF."""
    with rasterio.open(path) as ds:
        return PixelGrid(ds.crs.to_wkt(), tuple(ds.transform)[:6], ds.width, ds.height)


def make_set(live: LiveServer, slug: str, item: str, grid: PixelGrid, block: int = 64, kind: str = "classes",
             background: int | None = 3, name: str = "labels") -> tuple[int, dict[tuple[int, int], int]]:
    """An annotation set over the whole grid, one task per block; returns its id and the task ids by (row, col)."""
    with live.platform.db.write() as s:
        project = s.scalar(select(Project).where(Project.slug == slug))
        assert project is not None
        aset = AnnotationSet(project_id=project.id, name=name, kind=kind, classes=CLASSES, items=[item],
                             aoi=grid.box(0, 0, grid.height, grid.width), block_size=block,
                             grid={"crs": grid.crs, "transform": list(grid.transform), "width": grid.width,
                                   "height": grid.height},
                             completeness={} if background is None else {"background": background})
        s.add(aset)
        s.flush()
        tasks = {}
        for cell, part in cells(grid_of(aset.grid), block, shape(aset.aoi)):
            task = AnnotationTask(set_id=aset.id, row=cell.row, col=cell.col, geometry=geojson(cell.lonlat),
                                  complete_area=geojson(part))
            s.add(task)
            s.flush()
            tasks[(cell.row, cell.col)] = task.id
        return aset.id, tasks


def user_id(live: LiveServer, username: str) -> int:
    """A user's id."""
    with live.platform.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        assert uid is not None
        return uid


def add_feature(live: LiveServer, task_id: int, geometry: dict[str, Any], label: int | str, by: int,
                item: str = "", suggestion: bool = False, **properties: Any) -> int:
    """A drawn feature in a task (as the annotation routes store it; a model's pending one: ``suggestion``); its id."""
    with live.platform.db.write() as s:
        task = s.get(AnnotationTask, task_id)
        assert task is not None
        f = LabelFeature(set_id=task.set_id, task_id=task_id, geometry=geometry, label=str(label), item=item,
                         items=[item] if item else [], properties=properties, created_by=by, updated_by=by,
                         suggestion=suggestion, source="model" if suggestion else "drawn")
        s.add(f)
        s.flush()
        return f.id


def add_copy(live: LiveServer, task_id: int, kind: str, assignee: int | None = None, state: str = "open") -> int:
    """A copy of a task's cell (``gold`` or ``double``), as the quality routes make them; returns its id."""
    with live.platform.db.write() as s:
        task = s.get(AnnotationTask, task_id)
        assert task is not None
        copy = AnnotationTask(set_id=task.set_id, row=task.row, col=task.col, geometry=task.geometry,
                              complete_area=task.complete_area, copy_kind=kind, reference_task_id=task.id,
                              assignee_id=assignee, state=state)
        s.add(copy)
        s.flush()
        return copy.id


def set_state(live: LiveServer, task_ids: list[int], state: str, reviewer: int | None = None,
              assignee: int | None = None) -> None:
    """Move tasks to ``state`` (and give them a reviewer, and an assignee when given)."""
    with live.platform.db.write() as s:
        for tid in task_ids:
            task = s.get(AnnotationTask, tid)
            assert task is not None
            task.state, task.reviewer_id = state, reviewer
            task.assignee_id = assignee if assignee is not None else task.assignee_id


def annotation_project(live: LiveServer, background: int | None = 3) -> dict[str, Any]:
    """The tiny project (``labels.all_touched`` off) with a set of 64-pixel cells over its sample stack.

    Returns:
        ``folder``, ``grid`` (:class:`PixelGrid`), ``set`` (id), ``tasks`` (ids by (row, col)) and ``item`` (its id).

    """
    folder = make_project(live, **{"labels.all_touched": False})
    with live.client() as c:
        (item,) = c.get("/projects/tiny/imagery").json()
    grid = stack_grid(folder / "data" / "stack.tif")
    set_id, tasks = make_set(live, "tiny", item["id"], grid, background=background)
    return {"folder": folder, "grid": grid, "set": set_id, "tasks": tasks, "item": item["id"]}
