"""Turning request bodies into model inputs, and model outputs into answers.

Instances (TF-Serving / Vertex AI / Earth Engine style) are raw band values, as the imagery
stores them; the server applies each band's scale and offset, derives the indices and
normalises exactly as training did. An instance is either an object with one (H, W) array
per band name (``{"blue": [[...]], "green": [[...]], ...}``; multi-date models name bands
``t0:blue``, ``t1:blue``, ...), an object ``{"image": (C, H, W) array}``, or the bare
(C, H, W) array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eoengine.features.indices import stack_features
from eoengine.features.normalise import normalise
from eoengine.models.heads import Head
from eoengine.models.package import ModelPackage


class BadInput(ValueError):
    """A request that cannot be turned into model input; the message says why (HTTP 400)."""

    status = 400


class WrongBandCount(BadInput):
    """An instance whose band count is not the model's (HTTP 422, as for an upload with the wrong bands)."""

    status = 422


def raw_band_names(meta: dict[str, Any]) -> list[str]:
    """Names of the raw bands an instance must give, in order."""
    steps = int(meta.get("timesteps", 1))
    bands = list(meta["bands"])
    return bands if steps == 1 else [f"t{t}:{b}" for t in range(steps) for b in bands]


def instance_array(instance: Any, meta: dict[str, Any]) -> np.ndarray:
    """The raw (bands, H, W) float32 array of one instance."""
    names = raw_band_names(meta)
    if isinstance(instance, dict) and "image" not in instance:
        missing = [n for n in names if n not in instance]
        if missing:
            raise BadInput(f"instance lacks band(s) {missing}; the model takes {names}")
        try:
            arr = np.stack([np.asarray(instance[n], dtype=np.float32) for n in names])
        except (ValueError, TypeError) as exc:
            raise BadInput(f"band arrays must be numbers of one (H, W) shape: {exc}") from None
    else:
        data = instance["image"] if isinstance(instance, dict) else instance
        try:
            arr = np.asarray(data, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise BadInput(f"image must be a (bands, H, W) array of numbers: {exc}") from None
    if arr.ndim != 3:
        raise BadInput(f"an instance must be (bands, H, W); got shape {list(arr.shape)}")
    if arr.shape[0] != len(names):
        raise WrongBandCount(f"instance has {arr.shape[0]} bands; the model takes {len(names)} ({', '.join(names)})")
    if min(arr.shape[1:]) < 1 or arr.shape[1] * arr.shape[2] > 4096 * 4096:
        raise BadInput(f"instance size {arr.shape[1]}x{arr.shape[2]} is outside 1..4096x4096 pixels")
    return arr


def prepare(raw: np.ndarray, pkg: ModelPackage) -> np.ndarray:
    """Raw band values → the normalised (channels, H, W) input the model was trained on."""
    meta = pkg.meta
    specs = meta["band_specs"] * int(meta.get("timesteps", 1))
    x = raw.astype(np.float32, copy=True)
    for i, spec in enumerate(specs):
        if spec.get("nodata") is not None:
            x[i][x[i] == spec["nodata"]] = np.nan
        x[i] = x[i] * float(spec.get("scale", 1.0)) + float(spec.get("offset", 0.0))
    feats = stack_features(x, int(meta.get("timesteps", 1)), meta["indices"], meta["bands"],
                           [b.get("common_name") for b in meta["band_specs"]], meta["index_constants"])
    mean = np.asarray(meta["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(meta["normalization"]["std"], dtype=np.float32)
    return normalise(feats, mean, std)


def pad_to(x: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad (C, H, W) to sides that are multiples of ``multiple``; returns the original H, W."""
    h, w = x.shape[1:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        pad = ((0, 0), (0, ph), (0, pw))
        x = np.pad(x, pad, mode="reflect") if h > ph and w > pw else np.pad(x, pad, mode="edge")
    return x, h, w


def answer(output: np.ndarray, heads: list[Head], h: int, w: int, nodata: np.ndarray | None) -> dict[str, Any]:
    """One instance's prediction per head: class map and probabilities, values, or chip classes."""
    result: dict[str, Any] = {}
    for head in heads:
        part = output[head.start:head.stop]
        key = "" if len(heads) == 1 else f"{head.name}_"
        if part.ndim == 3:
            part = part[:, :h, :w]
        if head.type == "regression":
            values = part[0] * head.value_std + head.value_mean
            if nodata is not None:
                values = np.where(nodata, np.nan, values)
            result[f"{key}value"] = [[None if not np.isfinite(v) else float(v) for v in row] for row in values]
        elif head.type in ("classification", "multilabel"):
            scores = part.mean(axis=(1, 2)) if part.ndim == 3 else part
            if head.type == "multilabel":
                probs = 1 / (1 + np.exp(-scores))
                result[f"{key}present"] = [bool(p > 0.5) for p in probs]
            else:
                e = np.exp(scores - scores.max())
                probs = e / e.sum()
                result[f"{key}class"] = int(probs.argmax())
            result[f"{key}probabilities"] = [float(p) for p in probs]
        else:
            e = np.exp(part - part.max(axis=0, keepdims=True))
            probs = e / e.sum(axis=0, keepdims=True)
            classes = probs.argmax(axis=0).astype(int)
            if nodata is not None:
                classes[nodata] = 255
            result[f"{key}class"] = classes.tolist()
            result[f"{key}probability"] = np.round(probs.max(axis=0), 5).tolist()
    return result
