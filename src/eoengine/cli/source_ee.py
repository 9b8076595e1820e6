"""``eoengine source ee ...``: export Earth Engine composites and patches to Cloud Storage, follow the tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from eoengine.cli.source import out
from eoengine.errors import EOError

ee_app = typer.Typer(help="Google Earth Engine (needs eoengine[ee]): export images or patches to a bucket, follow tasks.",
                     no_args_is_help=True)

ServiceAccount = Annotated[Path | None, typer.Option(
    help="Service-account JSON key (default: EOENGINE_EE_SERVICE_ACCOUNT, GOOGLE_APPLICATION_CREDENTIALS, "
         "else 'earthengine authenticate' credentials)")]
Project = Annotated[str | None, typer.Option(help="Google Cloud project (default: EARTHENGINE_PROJECT, GOOGLE_CLOUD_PROJECT, "
                                                  "the key's project)")]


def _connect(service_account: Path | None, project: str | None) -> Any:
    from eoengine.sourcing.ee_auth import connect, load_credentials

    creds = load_credentials(service_account, project)
    connect(creds)
    out.print(f"Earth Engine: {creds.account} ({creds.kind}), project {creds.project}")
    return creds


def _report(st: dict[str, Any]) -> None:
    out.print(f"{st['name']}: {st['state']} {100 * st['progress']:.0f}%")


@ee_app.command("export")
def export(
    collection: Annotated[str, typer.Option(help="Image collection id, e.g. COPERNICUS/S2_SR_HARMONIZED")],
    bbox: Annotated[str, typer.Option(help="Area: west,south,east,north in degrees")],
    datetime: Annotated[str, typer.Option(help="START/END dates, e.g. 2024-06-01/2024-09-01")],
    bands: Annotated[str, typer.Option(help="Comma-separated band names")],
    bucket: Annotated[str, typer.Option(help="Cloud Storage bucket to write to")],
    prefix: Annotated[str, typer.Option(help="Object name prefix, e.g. exports/nc")],
    scale: Annotated[float, typer.Option(help="Metres per pixel")] = 10.0,
    crs: Annotated[str, typer.Option(help="Output CRS")] = "EPSG:4326",
    file_format: Annotated[str, typer.Option("--format", help="GeoTIFF (cloud-optimised) or TFRecord")] = "GeoTIFF",
    max_cloud: Annotated[float | None, typer.Option(help="Largest cloud cover (percent) of the scenes used")] = None,
    cloud_property: Annotated[str, typer.Option(help="Cloud cover property of the collection")] = "CLOUDY_PIXEL_PERCENTAGE",
    composite: Annotated[str, typer.Option(help="median, mean, min, max, mosaic or least-cloudy")] = "median",
    points: Annotated[Path | None, typer.Option(help="Labelled points (GeoJSON/GPKG): export patches around them")] = None,
    points_asset: Annotated[str | None, typer.Option(help="Labelled points as an Earth Engine table asset")] = None,
    label: Annotated[str, typer.Option(help="The points' label property (and the label feature's name)")] = "class",
    label_image: Annotated[str | None, typer.Option(help="Label raster asset; default: the points' labels painted")] = None,
    patch_size: Annotated[int, typer.Option(help="Patch side in pixels (TFRecord)")] = 256,
    overlap: Annotated[int, typer.Option(help="TFRecord image exports: margin shared by adjacent patches")] = 0,
    splits: Annotated[str | None, typer.Option(help="Patch exports per split, e.g. train=0.7,val=0.15,test=0.15")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split")] = 0,
    description: Annotated[str, typer.Option(help="Task name")] = "eoengine-export",
    max_pixels: Annotated[int, typer.Option(help="Refuse exports larger than this")] = 10**10,
    service_account: ServiceAccount = None,
    project: Project = None,
    wait: Annotated[bool, typer.Option(help="Wait until every task ends")] = False,
    record: Annotated[Path | None, typer.Option("--out", "-o", help="Write the started tasks as JSON")] = None,
) -> None:
    """Export a composite image (GeoTIFF/TFRecord) or patches around labelled points (TFRecord) to a bucket."""
    from eoengine.sourcing import ee_export as ex
    from eoengine.sourcing import ee_tasks

    if points and points_asset:
        raise EOError("give --points or --points-asset, not both", "use one source of labelled points")
    dest = ex.Destination(bucket, prefix, scale, crs, file_format, patch_size, overlap, max_pixels, description)
    dest.check()
    split_map = ex.parse_splits(splits)
    point_list = ex.read_points(points, label) if points else None
    req = ex.ImageRequest(collection, bbox, datetime, [b.strip() for b in bands.split(",") if b.strip()],
                          max_cloud, cloud_property, composite)
    req.check()
    if splits and point_list is None and not points_asset:
        raise EOError("--splits applies to patches around points", "add --points or drop --splits")
    if (point_list is not None or points_asset) and file_format != "TFRecord":
        raise EOError("patches around points are exported as TFRecord", "add --format TFRecord")
    _connect(service_account, project)
    image = ex.build_image(req)
    if point_list is not None or points_asset:
        import ee

        pts = point_list if point_list is not None else ee.FeatureCollection(points_asset)
        tasks = ex.export_patches(image, pts, label, req.bands, dest, split_map, seed, label_image)
    else:
        tasks = {"image": ex.export_image(image, ex.region(bbox), dest)}
    started = {name: ee_tasks.start(task) for name, task in tasks.items()}
    for name, info in started.items():
        out.print(f"started {name}: task {info['id']} → {info['destination']}* ({info['format']})")
    if record:
        record.write_text(json.dumps(started, indent=2))
        out.print(f"wrote {record}")
    if wait:
        for info in started.values():
            ee_tasks.wait(info["operation"], report=_report)
    elif point_list is not None or points_asset:
        out.print("when done: copy the files and run 'eoengine dataset import-tfrecord SPLIT=FILE ... --bands "
                  f"{','.join(req.bands)} --label {label}'")


@ee_app.command("status")
def status(
    task_ids: Annotated[list[str], typer.Argument(help="Task ids or operation names")],
    service_account: ServiceAccount = None,
    project: Project = None,
    wait: Annotated[bool, typer.Option(help="Wait until every task ends")] = False,
    every: Annotated[float, typer.Option(help="Seconds between checks with --wait")] = 30.0,
) -> None:
    """Show the state, progress and outputs of export tasks (exit 1 if one failed)."""
    from eoengine.sourcing import ee_tasks

    creds = _connect(service_account, project)
    failed = []
    for task_id in task_ids:
        name = ee_tasks.operation_name(task_id, creds.project)
        st = ee_tasks.wait(name, every, report=_report) if wait else ee_tasks.status(name)
        if not wait:
            _report(st)
        for uri in st["outputs"]:
            out.print(f"  {uri}")
        if st["state"] in ("FAILED", "CANCELLED"):
            failed.append(f"{task_id}: {st['error'] or st['state']}")
    if failed:
        raise EOError(f"{len(failed)} task(s) did not succeed: {'; '.join(failed)}", "fix the cause and export again")
