"""Export an annotation set in open formats: GeoJSON, GeoPackage, a label raster COG and a STAC Collection of label Items.

Every export reads the same rows (:func:`set_labels`: the set's tasks, all or only the accepted
ones, and their live features). The label raster is rasterised by the labels stage exactly as a
dataset build does: the features and the tasks' completeness areas are written as the files a
snapshot holds (:func:`label_documents`), read back with ``read_vector_labels`` and
``read_labelled_area``, put on the set's grid with ``labels_for_grid`` and burnt by
``VectorLabeler`` (unknown, 255, outside every completeness area; the set's background class
inside one where nothing is drawn).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.windows import Window
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.config.schema import ClassSpec, class_key, class_lookup
from eoengine.datasets.schema import ClassInfo
from eoengine.errors import Invalid
from eoengine.inference.output import ClassCoding, map_profile
from eoengine.labels import IGNORE
from eoengine.labels.vector import VectorLabeler, labels_for_grid, read_labelled_area, read_vector_labels
from eoengine.platform.annotation.grid import grid_of
from eoengine.platform.annotation.store import stored_class, usernames
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, LabelFeature
from eoengine.raster.cog import finish_cog, temp_name
from eoengine.raster.scene import Grid

State = Literal["accepted", "all"]
Format = Literal["geojson", "gpkg", "raster", "stac"]
LABELS_FILE = "labels.geojson"
COMPLETE_FILE = "complete.geojson"
WINDOW = 512
LABEL_EXTENSION = "https://stac-extensions.github.io/label/v1.0.1/schema.json"


@dataclass(frozen=True)
class SetLabels:
    """An annotation set's tasks (in row, col order) and their live features (in id order)."""

    aset: AnnotationSet
    tasks: list[AnnotationTask]
    features: list[LabelFeature]

    def task_of(self, feature: LabelFeature) -> AnnotationTask:
        """The task a feature belongs to."""
        return next(t for t in self.tasks if t.id == feature.task_id)


def set_labels(session: Session, aset: AnnotationSet, state: State) -> SetLabels:
    """The primary tasks of a set (only accepted ones for ``state="accepted"``) and their people's live features.

    Copies of a cell (gold and double-labelled tasks, ``copy_kind`` not empty) measure annotators
    and are never exported, snapshotted or built; a model's pending suggestions (``suggestion``)
    are no one's labels until a person accepts them; deleted features are gone.

    Args:
        session: A database session.
        aset: The set.
        state: ``accepted`` or ``all``.

    Returns:
        The tasks and features.

    """
    query = select(AnnotationTask).where(AnnotationTask.set_id == aset.id, AnnotationTask.copy_kind == "")
    if state == "accepted":
        query = query.where(AnnotationTask.state == "accepted")
    tasks = list(session.scalars(query.order_by(AnnotationTask.row, AnnotationTask.col)))
    ids = [t.id for t in tasks]
    features = list(session.scalars(select(LabelFeature).where(
        LabelFeature.task_id.in_(ids), LabelFeature.deleted.is_(False), LabelFeature.suggestion.is_(False)).order_by(LabelFeature.id))) if ids else []
    return SetLabels(aset, tasks, features)


def set_classes(aset: AnnotationSet) -> list[ClassSpec]:
    """The set's classes as config classes (value, name, colour)."""
    return [ClassSpec(value=c["value"], name=c["name"], color=c.get("color") or "#808080") for c in aset.classes]


def _change(feature: LabelFeature) -> dict[str, Any]:
    return {k: feature.properties[k] for k in ("from", "to") if k in (feature.properties or {})}


def label_documents(labels: SetLabels) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two files of a snapshot: the features (label, item, cell) and the tasks' completeness areas.

    Only what the labels *are* is kept (no ids, versions, people or times), in a canonical order, so
    the same labels always give the same documents.

    Args:
        labels: The tasks and features.

    Returns:
        (labels FeatureCollection, completeness FeatureCollection), both EPSG:4326.

    """
    aset = labels.aset
    cells = {t.id: (t.row, t.col) for t in labels.tasks}
    features = [{"type": "Feature", "geometry": f.geometry,
                 "properties": {"label": stored_class(aset, f.label), "item": f.item or aset.items[0],
                                "row": cells[f.task_id][0], "col": cells[f.task_id][1], **_change(f)}}
                for f in labels.features]
    features.sort(key=lambda f: json.dumps(f, sort_keys=True))
    areas = [{"type": "Feature", "geometry": t.complete_area, "properties": {"row": t.row, "col": t.col}}
             for t in labels.tasks]
    return ({"type": "FeatureCollection", "features": features}, {"type": "FeatureCollection", "features": areas})


def canonical_text(doc: dict[str, Any]) -> str:
    """A document as canonical JSON (sorted keys, no spaces): the exact bytes a snapshot stores and hashes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def export_geojson(session: Session, labels: SetLabels) -> dict[str, Any]:
    """The features as a GeoJSON FeatureCollection (EPSG:4326), each with its label, review state and people.

    Args:
        session: A database session (for user names).
        labels: The tasks and features.

    Returns:
        Features with ``id`` and properties ``label, state, annotator, reviewer, task, row, col, item, items,
        version, source`` (and ``from``, ``to`` in change sets).

    """
    names = usernames(session, [f.created_by for f in labels.features] + [t.reviewer_id for t in labels.tasks])
    out = []
    for f in labels.features:
        task = labels.task_of(f)
        out.append({"type": "Feature", "id": f.id, "geometry": f.geometry, "properties": {
            "label": stored_class(labels.aset, f.label), "state": task.state, "annotator": names.get(f.created_by or 0),
            "reviewer": names.get(task.reviewer_id or 0), "task": task.id, "row": task.row, "col": task.col,
            "item": f.item or labels.aset.items[0], "items": list(f.items or []), "version": f.version,
            "source": f.source, **_change(f)}})
    return {"type": "FeatureCollection", "features": out}


def export_gpkg(collection: dict[str, Any], out: Path) -> Path:
    """Write exported features (:func:`export_geojson`) as a GeoPackage layer ``labels`` (list values as text).

    Args:
        collection: The FeatureCollection.
        out: The file to write.

    Returns:
        ``out``.

    Raises:
        Invalid: There are no features (a GeoPackage layer needs at least its columns).

    """
    if not collection["features"]:
        raise Invalid("there are no features to export", "export state=all, or accept tasks with labels first")
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
    frame.insert(0, "fid", [f["id"] for f in collection["features"]])
    frame["items"] = frame["items"].map(lambda v: ",".join(v))
    frame.to_file(out, layer="labels", driver="GPKG")
    return out


def _labeler(labels: SetLabels, grid: Grid, all_touched: bool, scratch: Path) -> VectorLabeler:
    """The labels stage's rasteriser over the set's features and completeness areas, read from snapshot files."""
    classes = set_classes(labels.aset)
    docs = label_documents(labels)
    for name, doc in zip((LABELS_FILE, COMPLETE_FILE), docs, strict=True):
        (scratch / name).write_text(canonical_text(doc))
    if docs[0]["features"]:
        frame = labels_for_grid(read_vector_labels(scratch / LABELS_FILE, "label", classes), grid, LABELS_FILE)
    else:
        frame = gpd.GeoDataFrame({"class_index": np.array([], dtype=np.int32)}, geometry=[], crs=grid.crs_wkt)
    background = labels.aset.completeness.get("background")
    area = labels_for_grid(read_labelled_area(scratch / COMPLETE_FILE), grid, COMPLETE_FILE) if docs[1]["features"] else None
    index = None if background is None or area is None else class_lookup(classes)[class_key(background)]
    return VectorLabeler(frame, grid, all_touched, index, area)


def _windows(grid: Grid) -> Iterator[Window]:
    for row in range(0, grid.height, WINDOW):
        for col in range(0, grid.width, WINDOW):
            yield Window(col, row, min(WINDOW, grid.width - col), min(WINDOW, grid.height - row))


def export_raster(labels: SetLabels, out: Path, all_touched: bool = False) -> Path:
    """Write the label raster COG on the set's grid: uint8 class values, 255 unknown, a colour table from the classes.

    Args:
        labels: The tasks and features.
        out: The COG to write.
        all_touched: Burn every pixel a feature touches (the project config's ``labels.all_touched``).

    Returns:
        ``out``.

    Raises:
        Invalid: A change set, or class values that do not fit a uint8 raster with 255 free.

    """
    if labels.aset.kind == "change":
        raise Invalid(f"annotation set {labels.aset.name!r} is a change set, whose labels are no single class per pixel",
                      "export a change set as geojson, gpkg or stac")
    classes = set_classes(labels.aset)
    infos = [ClassInfo(index=i, value=c.value, name=c.name, color=c.color) for i, c in enumerate(classes)]
    coding = ClassCoding.of(infos)
    if coding.dtype != "uint8" or coding.nodata != IGNORE:
        raise Invalid(f"class values {list(coding.codes)} do not fit a label raster (uint8, 255 = unknown)",
                      "give the set's classes values from 0 to 254, or export geojson/gpkg")
    grid = grid_of(labels.aset.grid)
    codes = np.full(256, IGNORE, dtype=np.uint8)
    codes[: len(coding.codes)] = coding.codes
    tiled = temp_name(out, "tiled.tif")
    with tempfile.TemporaryDirectory(prefix="eoengine-labels-") as scratch:
        labeler = _labeler(labels, grid, all_touched, Path(scratch))
        with rasterio.open(tiled, "w", **map_profile(grid, coding)) as dst:
            for window in _windows(grid):
                dst.write(codes[labeler.read(window)], 1, window=window)
            dst.write_colormap(1, coding.colormap(infos) or {})
            dst.set_band_description(1, "class")
            dst.update_tags(**coding.tags(infos), EOENGINE_ANNOTATION_SET=labels.aset.name)
    finish_cog(tiled, out, "MODE")
    return out


def _label_item(labels: SetLabels, task: AnnotationTask, features: list[dict[str, Any]],
                sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One task as a STAC label Item (label extension) whose asset is the task's GeoJSON."""
    aset = labels.aset
    counts = {class_key(c["value"]): 0 for c in aset.classes}
    for f in features:
        key = class_key(f["properties"]["label"])
        counts[key] = counts.get(key, 0) + 1
    first = sources.get(aset.items[0], {})
    links = [{"rel": "source", "href": sources.get(i, {}).get("href", i), "type": "application/geo+json", "title": i}
             for i in aset.items]
    classes = [c["value"] for c in aset.classes]
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [LABEL_EXTENSION], "id": f"task-{task.id}",
        "geometry": task.geometry, "bbox": list(shape(task.geometry).bounds), "collection": f"annotation-{aset.id}",
        "properties": {
            "datetime": first.get("datetime") or task.updated_at.isoformat(), "label:type": "vector",
            "label:description": f"{aset.name}: cell row {task.row}, col {task.col} ({task.state})",
            "label:properties": ["label"],
            "label:classes": [{"name": "label", "classes": classes if len({type(v) for v in classes}) == 1 else
                               [str(v) for v in classes]}],
            "label:tasks": ["change_detection" if aset.kind == "change" else "segmentation"],
            "label:methods": ["manual"],
            "label:overviews": [{"property_key": "label", "counts": [{"name": k, "count": n} for k, n in counts.items()]}],
            "eoengine:state": task.state, "eoengine:row": task.row, "eoengine:col": task.col},
        "links": [*links, {"rel": "collection", "href": "./collection.json", "type": "application/json"},
                  {"rel": "parent", "href": "./collection.json", "type": "application/json"}],
        "assets": {"labels": {"href": f"./task-{task.id}.geojson", "type": "application/geo+json", "roles": ["labels"],
                              "title": "the task's label features (EPSG:4326)"}},
    }


def export_stac(session: Session, labels: SetLabels, sources: dict[str, dict[str, Any]]) -> bytes:
    """A zip of a STAC Collection of label Items: one Item per task, with its features as a GeoJSON asset.

    Args:
        session: A database session (for user names).
        labels: The tasks and features.
        sources: The set's imagery items by id: ``{"href": link to the STAC item, "datetime": ...}``.

    Returns:
        The zip's bytes: ``collection.json``, ``task-<id>.json`` and ``task-<id>.geojson`` per task.

    Raises:
        Invalid: The set has no task to export.

    """
    if not labels.tasks:
        raise Invalid("there are no tasks to export", "export state=all, or accept tasks first")
    collection = export_geojson(session, labels)
    aset, buffer = labels.aset, io.BytesIO()
    boxes = np.array([shape(t.geometry).bounds for t in labels.tasks])
    times = sorted(str(s.get("datetime")) for s in sources.values() if s.get("datetime"))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for task in labels.tasks:
            features = [f for f in collection["features"] if f["properties"]["task"] == task.id]
            zf.writestr(f"task-{task.id}.geojson", json.dumps({"type": "FeatureCollection", "features": features}))
            zf.writestr(f"task-{task.id}.json", json.dumps(_label_item(labels, task, features, sources), indent=1))
        zf.writestr("collection.json", json.dumps({
            "type": "Collection", "stac_version": "1.1.0", "stac_extensions": [LABEL_EXTENSION],
            "id": f"annotation-{aset.id}", "title": aset.name, "license": "other",
            "description": f"Labels of the annotation set {aset.name!r}, one label Item per task (cell).",
            "extent": {"spatial": {"bbox": [[*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]]},
                       "temporal": {"interval": [[times[0] if times else None, times[-1] if times else None]]}},
            "summaries": {"label:type": ["vector"], "label:methods": ["manual"]},
            "links": [{"rel": "item", "href": f"./task-{t.id}.json", "type": "application/geo+json"} for t in labels.tasks],
        }, indent=1))
    return buffer.getvalue()
