"""Spectral indices by name, from Awesome Spectral Indices (spyndex).

Bands are matched to spyndex's symbols (``N``, ``R``, ``S1``, ...) through their STAC common
names (``nir``, ``red``, ``swir16``) given in the config, so ``NDVI`` works on Landsat and
Sentinel-2 alike. Constants (``L`` in SAVI, ``g``/``C1``/``C2`` in EVI) take spyndex's defaults
unless the config overrides them.
"""

from __future__ import annotations

import difflib
from functools import cache, lru_cache
from types import CodeType

import numpy as np

from eoengine.errors import EOError


@lru_cache(maxsize=1)
def _spyndex():  # type: ignore[no-untyped-def]
    import spyndex

    return spyndex


@lru_cache(maxsize=1)
def common_name_to_symbol() -> dict[str, str]:
    """Map STAC common names (``nir``) to spyndex band symbols (``N``)."""
    sp = _spyndex()
    out: dict[str, str] = {}
    for symbol in sp.bands:
        cname = getattr(sp.bands[symbol], "common_name", None)
        if cname and cname not in out:
            out[str(cname)] = str(symbol)
    return out


def index_names() -> list[str]:
    """All index names spyndex knows."""
    return sorted(str(k) for k in _spyndex().indices)


def required_symbols(index: str) -> tuple[list[str], list[str]]:
    """(band symbols, constant symbols) that ``index`` needs."""
    sp = _spyndex()
    if index not in sp.indices:
        close = difflib.get_close_matches(index, index_names(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see spyndex.indices for names"
        raise EOError(f"unknown spectral index '{index}'", hint)
    needed = list(sp.indices[index].bands)
    constants = [s for s in needed if s in sp.constants]
    return [s for s in needed if s not in constants], constants


def symbol_map(band_names: list[str], common_names: list[str | None]) -> dict[str, int]:
    """Map spyndex symbols to channel positions, via common names (or names equal to symbols)."""
    c2s = common_name_to_symbol()
    out: dict[str, int] = {}
    for i, (name, cname) in enumerate(zip(band_names, common_names, strict=True)):
        if cname and cname in c2s:
            out.setdefault(c2s[cname], i)
        if name in _spyndex().bands:
            out.setdefault(name, i)
    return out


def check_indices(
    indices: list[str], band_names: list[str], common_names: list[str | None]
) -> None:
    """Raise a clear error if an index is unknown or needs a band the scene lacks."""
    symbols = symbol_map(band_names, common_names)
    sym2common = {v: k for k, v in common_name_to_symbol().items()}
    for index in indices:
        bands, _ = required_symbols(index)
        missing = [s for s in bands if s not in symbols]
        if missing:
            need = ", ".join(f"{s} ({sym2common.get(s, '?')})" for s in missing)
            raise EOError(
                f"index {index} needs band(s) {need} that no configured band provides",
                "set common_name on the matching band in imagery.bands, or drop the index",
            )


@cache
def formula(index: str) -> CodeType:
    """An index's formula from spyndex's catalogue, compiled once.

    ``spyndex.computeIndex`` evaluates the same expression, but re-reads its JSON catalogue of
    indices on every call (~15 ms: most of the time of a small chip's indices).

    Args:
        index: The index name (checked by :func:`check_indices`).

    Returns:
        The compiled expression over spyndex's symbols.

    """
    return compile(str(_spyndex().indices[index].formula), f"<spyndex {index}>", "eval")


def compute_indices(
    image: np.ndarray,
    indices: list[str],
    band_names: list[str],
    common_names: list[str | None],
    constants: dict[str, float] | None = None,
) -> np.ndarray:
    """Compute ``indices`` from ``image`` (bands, h, w) → float32 (len(indices), h, w).

    NaN in any input band, or a division by zero, gives NaN in the index.
    """
    check_indices(indices, band_names, common_names)
    sp = _spyndex()
    symbols = symbol_map(band_names, common_names)
    out = np.empty((len(indices), *image.shape[1:]), dtype=np.float32)
    for k, index in enumerate(indices):
        bands, consts = required_symbols(index)
        params: dict[str, object] = {s: image[symbols[s]].astype(np.float64) for s in bands}
        for c in consts:
            params[c] = (constants or {}).get(c, sp.constants[c].default)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = np.asarray(eval(formula(index), {}, params), dtype=np.float64)
        value[~np.isfinite(value)] = np.nan
        out[k] = value
    return out


def stack_features(
    raw: np.ndarray,
    timesteps: int,
    indices: list[str],
    band_names: list[str],
    common_names: list[str | None],
    constants: dict[str, float] | None = None,
) -> np.ndarray:
    """Per date, the bands followed by their indices: (T*B, h, w) → (T*(B+I), h, w)."""
    if not indices:
        return raw
    parts = []
    for date in np.split(raw, timesteps, axis=0):
        parts += [date, compute_indices(date, indices, band_names, common_names, constants)]
    return np.concatenate(parts, axis=0)


def channel_names(bands: list[str], indices: list[str], timesteps: int) -> list[str]:
    """Channel names in dataset order; multi-date ones are prefixed ``t<i>:``."""
    names = bands + indices
    if timesteps == 1:
        return names
    return [f"t{t}:{n}" for t in range(timesteps) for n in names]
