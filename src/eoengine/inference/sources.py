"""Which file and band feeds each of a model's input bands, from command-line arguments."""

from __future__ import annotations

from typing import Any

from eoengine.errors import EOError
from eoengine.raster.scene import BandSource, open_raster


def band_source(spec: dict[str, Any], path: str, index: int) -> BandSource:
    """A band source from a model package's band spec, reading ``path`` band ``index``."""
    return BandSource(spec["name"], path, index, spec.get("scale", 1.0), spec.get("offset", 0.0),
                      spec.get("nodata"), spec.get("common_name"))


def sources_for_model(band_specs: list[dict[str, Any]], scene: list[str], timesteps: int = 1) -> list[BandSource]:
    """Band sources for a model from ``scene``: files in band order, one stack, or name=path.

    A multi-date model takes every date's bands in turn (one stack per date, or all files).
    Raises :class:`EOError` when the bands do not match the model's (count, names, or
    band descriptions in the files that contradict the model's band names).
    """
    if timesteps > 1:
        if any("=" in s and not s.startswith(("/", ".")) for s in scene):
            raise EOError("name=path pairs cannot say which date a band belongs to",
                          f"pass {timesteps} stacks (one per date) or every date's band files in order")
        band_specs = band_specs * timesteps
    names = [s["name"] for s in band_specs]
    expected = f"{len(names)} bands ({', '.join(names)})"
    if scene and all("=" in s and not s.startswith(("/", ".")) for s in scene):
        mapping = dict(s.split("=", 1) for s in scene)
        missing = [n for n in names if n not in mapping]
        extra = sorted(set(mapping) - set(names))
        if missing or extra:
            raise EOError(
                f"the model expects {expected}; missing: {missing or 'none'}, unknown: {extra or 'none'}",
                "give name=path for every model band",
            )
        return [band_source(spec, mapping[spec["name"]], 1) for spec in band_specs]
    found: list[tuple[str, int, str | None]] = []
    for path in scene:
        ds = open_raster(path)
        with ds:
            found += [(path, i + 1, ds.descriptions[i]) for i in range(ds.count)]
    if len(found) != len(names):
        raise EOError(
            f"the model expects {expected}; {', '.join(scene)} give(s) {len(found)} band(s)",
            "pass one file per band in the model's order, one stack with exactly those bands, or name=path pairs",
        )
    for spec, (path, index, desc) in zip(band_specs, found, strict=True):
        if desc and desc not in (spec["name"], spec.get("common_name")):
            raise EOError(
                f"band {index} of {path} is '{desc}' but the model expects '{spec['name']}' there",
                "pass the bands in the model's order, or use name=path pairs",
            )
    return [band_source(spec, p, i) for spec, (p, i, _) in zip(band_specs, found, strict=True)]
