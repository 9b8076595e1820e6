"""Footprints of a project's scenes, as GeoJSON features in EPSG:4326 (for the overview map)."""

from __future__ import annotations

from typing import Any

from eoengine.config.schema import ProjectConfig
from eoengine.errors import EOError
from eoengine.raster.footprint import footprint_wgs84


def scene_footprints(cfg: ProjectConfig) -> list[dict[str, Any]]:
    """One feature per listed scene (its first band file's extent); a scene whose file cannot be read is left out.

    Args:
        cfg: The project config.

    Returns:
        GeoJSON features with ``kind: scene``, the scene id and its date.

    """
    features = []
    for scene in cfg.imagery.scenes if cfg.imagery else []:
        entry = scene.timesteps[0] if scene.timesteps else scene
        first = next(iter((entry.files or {}).values()), None) or entry.stack
        if first is None or "://" in first:
            continue
        try:
            geometry = footprint_wgs84(cfg.resolve(first))
        except EOError:
            continue
        features.append({"type": "Feature", "geometry": geometry,
                         "properties": {"kind": "scene", "name": scene.id, "datetime": entry.datetime}})
    return features
