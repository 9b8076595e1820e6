"""Turning request bodies into raw band arrays, and model outputs into JSON answers.

Instances (TF-Serving / Vertex AI / Earth Engine style) are raw band values, as the imagery
stores them. An instance is either an object with one (H, W) array per band name
(``{"blue": [[...]], "green": [[...]], ...}``; multi-date models name bands ``t0:blue``,
``t1:blue``, ...), an object ``{"image": (C, H, W) array}``, or the bare (C, H, W) array. The
server turns it into model input as every route does
(:func:`eoengine.inference.preprocess.model_input`: each band's nodata, scale and offset, the
indices, the normalisation of training) and finishes the output likewise
(:func:`eoengine.inference.postprocess.finish`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eoengine.inference.postprocess import finish
from eoengine.inference.preprocess import InputSpec
from eoengine.models.heads import Head


class BadInput(ValueError):
    """A request that cannot be turned into model input; the message says why (HTTP 400)."""

    status = 400


class WrongBandCount(BadInput):
    """An instance whose band count is not the model's (HTTP 422, as for an upload with the wrong bands)."""

    status = 422


def instance_array(instance: Any, spec: InputSpec) -> np.ndarray:
    """The raw (bands, H, W) float32 array of one instance.

    Args:
        instance: One instance of a request: ``{band: (H, W)}``, ``{"image": (C, H, W)}`` or (C, H, W).
        spec: The model's input spec (its raw band names).

    Returns:
        The raw band values in the spec's band order.

    Raises:
        BadInput: The instance is not such an array, or its size is out of bounds.
        WrongBandCount: It has another number of bands than the model.

    """
    names = spec.raw_bands
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


def pad_to(x: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad (C, H, W) to sides that are multiples of ``multiple``; returns the original H, W."""
    h, w = x.shape[1:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        pad = ((0, 0), (0, ph), (0, pw))
        x = np.pad(x, pad, mode="reflect") if h > ph and w > pw else np.pad(x, pad, mode="edge")
    return x, h, w


def answer(output: np.ndarray, heads: list[Head], h: int, w: int, nodata: np.ndarray | None) -> dict[str, Any]:
    """One instance's prediction per head: class map and probabilities, values, or chip classes.

    Args:
        output: The model's output for the (padded) instance, (C, H', W') or (C,).
        heads: The model's heads.
        h: The instance's height before padding.
        w: Its width before padding.
        nodata: True where the instance has no data, (h, w).

    Returns:
        Per head (keys prefixed ``<head>_`` when there are several): ``class`` (positions, 255
        or the coding's nodata code where no data) and ``probability`` for class maps, ``value``
        (null where no data) for value maps, ``class``/``present`` and ``probabilities`` for chips.

    """
    result: dict[str, Any] = {}
    cropped = output[:, :h, :w] if output.ndim == 3 else output
    for head in heads:
        key = "" if len(heads) == 1 else f"{head.name}_"
        decided, probs = finish(cropped, head, nodata)
        if head.type == "regression":
            result[f"{key}value"] = [[None if not np.isfinite(v) else float(v) for v in row] for row in decided]
        elif head.type in ("classification", "multilabel"):
            if head.type == "multilabel":
                result[f"{key}present"] = [bool(p) for p in decided]
            else:
                result[f"{key}class"] = int(decided)
            result[f"{key}probabilities"] = [float(p) for p in probs]
        else:
            result[f"{key}class"] = decided.astype(int).tolist()
            result[f"{key}probability"] = np.round(probs.max(axis=0), 5).tolist()
    return result
