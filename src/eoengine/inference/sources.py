"""Which file and band feeds each of a model's input bands, from command-line arguments.

A scene is given as band files in the model's order, one stack (per date), or ``name=path``
pairs; any file may name its band as ``file.tif:3``. A multi-band file without ``:N`` is
read by what identifies its bands, in this order: band descriptions that name the model's
bands, the band indexes of the stack the model was trained on (``stack_indexes``, recorded
in the package), and for a stack with exactly the model's band count, the model's order.
A file whose bands cannot be told apart is refused, never read as band 1; so is a file with
exactly the model's band count when the recorded indexes reorder them (is it the training
stack, or the bands in the model's order?): the package records no training file to tell.
"""

from __future__ import annotations

import re
from pathlib import Path

from eoengine.datasets.schema import BandInfo
from eoengine.errors import Invalid
from eoengine.models.meta import PackageMeta
from eoengine.raster.scene import BandSource, open_raster

_INDEXED = re.compile(r"^(?P<path>.+):(?P<index>\d+)$")


def band_source(spec: BandInfo, path: str, index: int) -> BandSource:
    """A band source from a model package's band spec, reading ``path`` band ``index``.

    Args:
        spec: The band (name, scaling, nodata override, common name).
        path: The file.
        index: The 1-based band of ``path``.

    Returns:
        The source.

    """
    return BandSource(spec.name, path, index, spec.scale, spec.offset, spec.nodata, spec.common_name)


def split_index(arg: str) -> tuple[str, int | None]:
    """``file.tif:3`` as (``file.tif``, 3); a path without ``:N`` (or one that exists as written) as (path, None)."""
    m = _INDEXED.match(arg)
    if m is None or ("://" not in arg and Path(arg).exists()):
        return arg, None
    if int(m["index"]) < 1:
        raise Invalid(f"{arg}: band numbers start at 1", f"write {m['path']}:1 for the first band")
    return m["path"], int(m["index"])


def _descriptions(path: str) -> list[str | None]:
    with open_raster(path) as ds:
        return list(ds.descriptions)


def _names(spec: BandInfo) -> set[str]:
    return {n for n in (spec.name, spec.common_name) if n}


def _mismatch(spec: BandInfo, path: str, index: int, desc: str | None) -> Invalid:
    return Invalid(f"band {index} of {path} is '{desc}' but the model expects '{spec.name}' there",
                   "pass the bands in the model's order, or name each band: name=path:N")


def _miscount(specs: list[BandInfo], given: str, count: int, descs: list[str | None] | None = None) -> Invalid:
    """The band count is not the model's; with the file's band descriptions, also which model bands none names."""
    names = ", ".join(s.name for s in specs)
    missing = [s.name for s in specs if descs and any(descs) and _described(s, descs) is None]
    told = f" (missing: {', '.join(missing)})" if missing else ""
    return Invalid(f"the model expects {len(specs)} bands ({names}); {given} give(s) {count} band(s){told}",
                   "pass one file per band in the model's order, one stack with exactly those bands, or name=path:N pairs")


def _described(spec: BandInfo, descs: list[str | None]) -> int | None:
    """The 1-based band whose description names ``spec``, if exactly one does."""
    hits = [i + 1 for i, d in enumerate(descs) if d in _names(spec)]
    return hits[0] if len(hits) == 1 else None


def _check_no_contradiction(specs: list[BandInfo], path: str, indexes: list[int], descs: list[str | None]) -> None:
    """Refuse a chosen band whose description names a different model band."""
    others = {n for s in specs for n in _names(s)}
    for spec, index in zip(specs, indexes, strict=True):
        desc = descs[index - 1] if index <= len(descs) else None
        if desc in others and desc not in _names(spec):
            raise _mismatch(spec, path, index, desc)


def _ambiguous(specs: list[BandInfo], path: str, recorded: list[int]) -> Invalid:
    names = ", ".join(s.name for s in specs)
    return Invalid(f"{path} has the model's {len(specs)} bands but no descriptions naming them, and the model was "
                   f"trained on bands {recorded} of its stack: they may be in either order",
                   f"say which band is which: {path}:N once per band in the model's order ({names}), "
                   f"or name=path:N pairs, e.g. {specs[0].name}={path}:{recorded[0]}")


def _stack_indexes(specs: list[BandInfo], path: str, recorded: list[int] | None) -> list[int]:
    """The band of the stack ``path`` that feeds each of ``specs`` (one date's bands)."""
    descs = _descriptions(path)
    found = [_described(s, descs) for s in specs]
    if all(i is not None for i in found):
        return [int(i) for i in found]  # type: ignore[arg-type]
    in_order = list(range(1, len(specs) + 1))
    if recorded is not None and len(descs) == len(specs) and recorded != in_order:
        raise _ambiguous(specs, path, recorded)
    if recorded is not None and len(recorded) == len(specs) and max(recorded) <= len(descs):
        _check_no_contradiction(specs, path, recorded, descs)
        return list(recorded)
    if len(descs) == len(specs):
        for index, (spec, desc) in enumerate(zip(specs, descs, strict=True), start=1):
            if desc and desc not in _names(spec):
                raise _mismatch(spec, path, index, desc)
        return in_order
    raise _miscount(specs, path, len(descs), descs)


def _named_band(spec: BandInfo, position: int, arg: str, recorded: list[int] | None) -> BandSource:
    """The source of ``spec`` from a ``name=`` argument: ``path:N``, a one-band file, or a stack's band."""
    path, index = split_index(arg)
    if index is None:
        descs = _descriptions(path)
        index = 1 if len(descs) == 1 else _described(spec, descs)
        if index is None and recorded is not None and max(recorded) <= len(descs):
            index = recorded[position]
        if index is None:
            raise Invalid(f"{path} has {len(descs)} bands and none is described as '{spec.name}'",
                          f"say which band it is: {spec.name}={path}:N (N from 1 to {len(descs)})")
    return band_source(spec, path, index)


def sources_for_model(
    band_specs: list[BandInfo], scene: list[str], timesteps: int = 1, stack_indexes: list[int] | None = None,
) -> list[BandSource]:
    """Band sources for a model from ``scene``: files in band order, one stack per date, or name=path.

    Args:
        band_specs: The package's band specs (one date's bands, in model order).
        scene: The arguments: paths (``file.tif`` or ``file.tif:N``) or ``name=path[:N]`` pairs.
        timesteps: Dates the model takes; each date's bands follow the previous date's.
        stack_indexes: The band indexes of the stack the model was trained on, if recorded.

    Returns:
        One source per model band and date.

    Raises:
        Invalid: The bands do not match the model's (count, names, descriptions that
            contradict the model's band names, or a multi-band file whose band is not said).

    """
    names = [s.name for s in band_specs]
    pairs = ["=" in s and not s.startswith(("/", ".")) for s in scene]
    if timesteps > 1 and any(pairs):
        raise Invalid("name=path pairs cannot say which date a band belongs to",
                      f"pass {timesteps} stacks (one per date) or every date's band files in order")
    if scene and all(pairs):
        mapping = dict(s.split("=", 1) for s in scene)
        missing = [n for n in names if n not in mapping]
        extra = sorted(set(mapping) - set(names))
        if missing or extra:
            raise Invalid(
                f"the model expects {len(names)} bands ({', '.join(names)}); missing: {missing or 'none'}, "
                f"unknown: {extra or 'none'}",
                "give name=path for every model band",
            )
        return [_named_band(spec, k, mapping[spec.name], stack_indexes) for k, spec in enumerate(band_specs)]
    entries = [split_index(s) for s in scene]
    if len(entries) == timesteps and all(i is None for _, i in entries):
        return [band_source(spec, path, i) for path, _ in entries
                for spec, i in zip(band_specs, _stack_indexes(band_specs, path, stack_indexes), strict=True)]
    return _band_files(band_specs * timesteps, entries)


def _band_files(specs: list[BandInfo], entries: list[tuple[str, int | None]]) -> list[BandSource]:
    """Sources from files given in band order, each ``path:N`` one band, each plain file all of its bands."""
    found: list[tuple[str, int, str | None]] = []
    for path, index in entries:
        descs = _descriptions(path)
        found += [(path, index, None)] if index is not None else [(path, i + 1, d) for i, d in enumerate(descs)]
    if len(found) != len(specs):
        raise _miscount(specs, ", ".join(p for p, _ in entries), len(found))
    for spec, (path, index, desc) in zip(specs, found, strict=True):
        if desc and desc not in _names(spec):
            raise _mismatch(spec, path, index, desc)
    return [band_source(spec, p, i) for spec, (p, i, _) in zip(specs, found, strict=True)]


def sources_for_package(meta: PackageMeta, scene: list[str]) -> list[BandSource]:
    """:func:`sources_for_model` with a package's band specs, dates and recorded stack indexes.

    Args:
        meta: The package's description.
        scene: The arguments, as for :func:`sources_for_model`.

    Returns:
        One source per model band and date.

    Raises:
        Invalid: As :func:`sources_for_model`.

    """
    return sources_for_model(meta.band_specs, scene, meta.timesteps, meta.stack_indexes)
