"""Earth Engine exports: a composite image, or patches around labelled points, to Cloud Storage.

This is the servir-aces workflow. An image is a filtered collection (area, dates, cloud
cover) reduced to one composite of the chosen bands. It can be exported as a (cloud-optimised)
GeoTIFF or as TFRecord patches over the area. Patches around points are the image's
``neighborhoodToArray`` sampled at each labelled point, written as TFRecord. They can be split
into train/val/test exports by a seeded random column; ``eoengine dataset import-tfrecord``
reads them back.

Everything up to ``start`` is built locally by the ``ee`` client library and checked before
anything is sent. ``start`` and ``status`` are the network calls (``ee.data.exportImage``,
``exportTable`` and ``getOperation``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eoengine.config.query import BadQuery, parse_bbox, parse_datetime
from eoengine.errors import EOError, first_line
from eoengine.labels import IGNORE
from eoengine.sourcing.ee_auth import require_ee

COMPOSITES = ("median", "mean", "min", "max", "mosaic", "least-cloudy")
FORMATS = ("GeoTIFF", "TFRecord")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
DESCRIPTION = re.compile(r"^[A-Za-z0-9.,:;_ -]{1,100}$")
MAX_INLINE_POINTS = 20_000  # larger point sets belong in an Earth Engine table asset (request size limit)


@dataclass
class ImageRequest:
    """Which image to build: collection, area, dates, bands, cloud filter and composite."""

    collection: str
    bbox: str | list[float]
    datetime: str
    bands: list[str]
    max_cloud: float | None = None
    cloud_property: str = "CLOUDY_PIXEL_PERCENTAGE"
    composite: str = "median"

    def check(self) -> tuple[dt.datetime, dt.datetime]:
        """Raise :class:`EOError` for a request Earth Engine would refuse; the dates to filter by."""
        if not self.bands:
            raise EOError("no bands chosen", "pass --bands, e.g. B2,B3,B4,B8")
        if self.composite not in COMPOSITES:
            raise EOError(f"unknown composite '{self.composite}'", f"use one of: {', '.join(COMPOSITES)}")
        try:
            start, end = parse_datetime(self.datetime)
            area = parse_bbox(self.bbox)
        except BadQuery as exc:
            raise EOError(str(exc), "--bbox W,S,E,N in degrees; --datetime START/END, e.g. 2024-06-01/2024-09-01") from None
        if start.year < 1970 or end.year > 9000:
            raise EOError(f"datetime {self.datetime} must have both ends", "give START/END dates")
        if area.geom_type != "Polygon":
            raise EOError("Earth Engine exports cannot cross the antimeridian in one request", "split the bbox in two")
        return start, (start + dt.timedelta(days=1) if end == start else end)


@dataclass
class Destination:
    """Where and how the export is written: bucket, object prefix, format and grid."""

    bucket: str
    prefix: str
    scale: float
    crs: str = "EPSG:4326"
    file_format: str = "GeoTIFF"
    patch_size: int = 256
    overlap: int = 0  # TFRecord image exports: kernelSize margin around each patch
    max_pixels: int = 10**10
    description: str = "eoengine-export"
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`EOError` for anything Earth Engine would refuse."""
        if not BUCKET.match(self.bucket) or ".." in self.bucket:
            raise EOError(f"'{self.bucket}' is not a Cloud Storage bucket name",
                          "3-63 lowercase letters, digits, '-', '_' or '.', without gs:// or a path")
        if self.prefix.startswith("/") or not self.prefix:
            raise EOError(f"object prefix '{self.prefix}' is empty or starts with '/'", "use e.g. exports/scene")
        if self.file_format not in FORMATS:
            raise EOError(f"unknown export format '{self.file_format}'", f"use one of: {', '.join(FORMATS)}")
        if not self.scale > 0:
            raise EOError(f"scale {self.scale} is not positive", "give metres per pixel, e.g. 10")
        if not 1 <= self.patch_size <= 2048 or not 0 <= self.overlap < self.patch_size:
            raise EOError(f"patch size {self.patch_size} / overlap {self.overlap} out of range",
                          "use a patch size 1-2048 and an overlap smaller than it")
        if not DESCRIPTION.match(self.description):
            raise EOError(f"task description '{self.description}' is not allowed by Earth Engine",
                          "use up to 100 letters, digits, spaces and . , : ; _ -")


def region(bbox: str | list[float]) -> Any:
    """The bbox (checked by :meth:`ImageRequest.check`) as a planar ``ee.Geometry.Rectangle`` in EPSG:4326."""
    ee = require_ee()
    return ee.Geometry.Rectangle(list(parse_bbox(bbox).bounds), "EPSG:4326", False)


def build_image(req: ImageRequest) -> Any:
    """The composite ``ee.Image`` of ``req`` (built locally; nothing is sent)."""
    ee = require_ee()
    start, end = req.check()
    area = region(req.bbox)
    images = ee.ImageCollection(req.collection).filterBounds(area).filterDate(start.isoformat(), end.isoformat())
    if req.max_cloud is not None:
        images = images.filter(ee.Filter.lte(req.cloud_property, req.max_cloud))
    images = images.select(req.bands)
    if req.composite == "least-cloudy":
        image = ee.Image(images.sort(req.cloud_property).first())
    else:
        image = getattr(images, req.composite)()
    return image.clip(area).toFloat()


def export_image(image: Any, area: Any, dest: Destination) -> Any:
    """An unstarted task writing ``image`` over ``area`` to ``gs://bucket/prefix*``."""
    ee = require_ee()
    dest.check()
    if dest.file_format == "GeoTIFF":
        options: dict[str, Any] = {"cloudOptimized": True}
    else:
        options = {"patchDimensions": [dest.patch_size, dest.patch_size], "compressed": True}
        if dest.overlap:
            options["kernelSize"] = [dest.overlap, dest.overlap]
    return ee.batch.Export.image.toCloudStorage(
        image=image, description=dest.description, bucket=dest.bucket, fileNamePrefix=dest.prefix,
        region=area, scale=dest.scale, crs=dest.crs, maxPixels=dest.max_pixels, fileFormat=dest.file_format,
        formatOptions=options, **dest.extra)


def read_points(path: Path, label: str) -> list[tuple[float, float, Any]]:
    """(lon, lat, label) of every point in a vector file, in EPSG:4326."""
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for unreadable files
        raise EOError(f"cannot read points from {path}: {first_line(exc)}", "give a GeoJSON/GeoPackage of points") from None
    if frame.empty:
        raise EOError(f"{path} holds no points", "give at least one labelled point")
    if label not in frame.columns:
        raise EOError(f"{path} has no property '{label}'", f"use one of: {', '.join(c for c in frame.columns if c != 'geometry')}")
    if set(frame.geom_type) != {"Point"}:
        raise EOError(f"{path} holds {', '.join(sorted(set(frame.geom_type)))} geometries", "patches are cut around points only")
    if len(frame) > MAX_INLINE_POINTS:
        raise EOError(f"{path} holds {len(frame)} points, too many to send inline",
                      "upload them as an Earth Engine table asset and pass --points-asset")
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return [(float(g.x), float(g.y), v.item() if hasattr(v, "item") else v) for g, v in zip(frame.geometry, frame[label], strict=True)]


def parse_splits(text: str | None) -> dict[str, float]:
    """``train=0.7,val=0.15,test=0.15`` as fractions summing to 1 (``{"all": 1}`` when not given)."""
    if not text:
        return {"all": 1.0}
    try:
        splits = {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise EOError(f"--splits '{text}' is not NAME=FRACTION,...", "e.g. train=0.7,val=0.15,test=0.15") from None
    if any(v <= 0 for v in splits.values()) or abs(sum(splits.values()) - 1) > 1e-6:
        raise EOError(f"--splits fractions {list(splits.values())} must be positive and sum to 1", "e.g. train=0.7,val=0.3")
    return splits


def label_band(points: Any, label: str, label_image: str | None = None) -> Any:
    """The label band: a label raster asset's first band, else the points' ``label`` painted.

    Painted labels are IGNORE away from the points (sparse point labels).
    """
    ee = require_ee()
    if label_image:
        return ee.Image(label_image).select([0]).rename(label).toFloat()
    return ee.Image.constant(IGNORE).toFloat().paint(points, label).rename(label)


def export_patches(image: Any, points: Any, label: str, bands: list[str], dest: Destination,
                   splits: dict[str, float], seed: int = 0, label_image: str | None = None) -> dict[str, Any]:
    """Unstarted TFRecord table exports of patch_size² patches around ``points``, one per split.

    Each record holds patch_size² values per band and for the label band, the layout
    ``eoengine dataset import-tfrecord`` reads.
    """
    ee = require_ee()
    dest.check()
    if dest.file_format != "TFRecord":
        raise EOError("patches are exported as TFRecord", "use --format TFRecord")
    if isinstance(points, list):
        points = ee.FeatureCollection([ee.Feature(ee.Geometry.Point([x, y]), {label: v}) for x, y, v in points])
    weights = ee.List.repeat(ee.List.repeat(1, dest.patch_size), dest.patch_size)
    kernel = ee.Kernel.fixed(dest.patch_size, dest.patch_size, weights)
    arrays = image.addBands(label_band(points, label, label_image)).neighborhoodToArray(kernel)
    points = points.randomColumn("eoengine_split", seed)
    tasks, lower = {}, 0.0
    for k, (name, fraction) in enumerate(splits.items()):
        upper = 1.0 if k == len(splits) - 1 else lower + fraction  # the last split takes any rounding rest
        chosen = points.filter(ee.Filter.And(ee.Filter.gte("eoengine_split", lower), ee.Filter.lt("eoengine_split", upper)))
        samples = arrays.sampleRegions(collection=chosen, properties=[], scale=dest.scale, tileScale=8, geometries=False)
        suffix = "" if name == "all" else f"-{name}"
        tasks[name] = ee.batch.Export.table.toCloudStorage(
            collection=samples, description=f"{dest.description}{suffix}", bucket=dest.bucket,
            fileNamePrefix=f"{dest.prefix}{suffix}", fileFormat="TFRecord", selectors=[*bands, label], **dest.extra)
        lower = upper
    return tasks
