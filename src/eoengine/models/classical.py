"""Classical per-pixel classifiers (random forest, gradient boosting) as first-class models.

On point datasets (1×1 chips) and for per-pixel maps a tree ensemble is a strong baseline,
so eoengine trains one like any other model and ships it in the same package. Its ONNX graph
(converted with skl2onnx) has the same interface as a network's: ``image`` (B, C, H, W) of
normalised bands and indices in, ``logits`` (B, classes, H, W) out. Inside, every pixel is
one row of features for the trees, and the logits are the log of the class probabilities
(so a softmax gives the forest's probabilities back and the arg-max is its prediction).
ONNX Runtime runs it for ``evaluate``, ``predict`` and ``serve``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from eoengine.errors import EOError
from eoengine.models.meta import PackageMeta

ESTIMATORS: dict[str, tuple[str, str]] = {
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
}
"""Registry name -> (module, class) of the scikit-learn estimator."""

DEFAULTS: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 500, "n_jobs": -1},
    "gradient_boosting": {},
}
"""Settings used unless ``model.kwargs`` gives them."""

SAMPLE_KWARG = "max_pixels"
"""The one kwarg that is eoengine's, not the estimator's: train pixels sampled at most."""

MAX_PIXELS = 200_000
"""Default bound on the train pixels a classical model is fitted on (memory stays flat)."""

PROBABILITY_FLOOR = 1e-9
"""Probabilities are floored here before the log, so logits stay finite."""


def is_classical(name: str) -> bool:
    """Whether ``name`` is a classical (scikit-learn) model."""
    return name in ESTIMATORS


def refuse_network_only(meta: PackageMeta, what: str) -> None:
    """Raise :class:`EOError` if a package's model is classical: ``what`` (quantize, prune) is for networks.

    Args:
        meta: The package's description.
        what: The command refused.

    Raises:
        EOError: For a classical model.

    """
    name = meta.model
    if is_classical(name):
        raise EOError(f"'{what}' works on networks; this {name} is a tree ensemble in an ONNX graph",
                      "predict and serve it as it is; for a smaller model retrain with fewer trees "
                      "(model.kwargs.n_estimators / max_iter) or a max_depth")


def _estimator_class(name: str) -> Callable[..., Any]:
    import importlib

    module, cls = ESTIMATORS[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """(the estimator's kwargs, the bound on sampled train pixels) from ``model.kwargs``.

    Args:
        kwargs: The config's ``model.kwargs``.

    Returns:
        The kwargs without ``max_pixels``, and ``max_pixels`` (default :data:`MAX_PIXELS`).

    Raises:
        EOError: If ``max_pixels`` is not a positive integer.

    """
    rest = dict(kwargs)
    bound = rest.pop(SAMPLE_KWARG, MAX_PIXELS)
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise EOError(f"model.kwargs.{SAMPLE_KWARG} is {bound!r}", "give a positive whole number of train pixels")
    return rest, bound


def build_estimator(name: str, kwargs: dict[str, Any], seed: int) -> Any:
    """The configured scikit-learn estimator, seeded unless ``random_state`` is given.

    Args:
        name: A classical model name (see :data:`ESTIMATORS`).
        kwargs: Estimator settings from ``model.kwargs`` (without ``max_pixels``).
        seed: ``training.seed``, used as ``random_state``.

    Returns:
        An unfitted estimator.

    Raises:
        EOError: If a kwarg is not one the estimator takes.

    """
    cls = _estimator_class(name)
    allowed = sorted(cls().get_params())
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise EOError(f"model '{name}' does not take argument(s) {unknown}",
                      f"valid arguments: {', '.join(allowed)}, {SAMPLE_KWARG}")
    settings = {**DEFAULTS[name], "random_state": seed, **kwargs}
    try:
        return cls(**settings)
    except (TypeError, ValueError) as exc:
        raise EOError(f"model '{name}' rejects its kwargs: {exc}", "fix model.kwargs") from None


def check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Check a classical model's ``model.kwargs`` before any work starts (what ``validate`` runs).

    Args:
        name: A classical model name (see :data:`ESTIMATORS`).
        kwargs: The config's ``model.kwargs`` (``max_pixels`` included).

    Raises:
        EOError: A kwarg the estimator does not take, a value it rejects, or a bad ``max_pixels``.

    """
    build_estimator(name, split_kwargs(kwargs)[0], 0)


def image_graph(estimator: Any, channels: int, num_classes: int) -> Any:
    """The fitted estimator as an ONNX graph over images: ``image`` (B, C, H, W) -> ``logits`` (B, K, H, W).

    Args:
        estimator: A fitted scikit-learn classifier whose classes are class indices.
        channels: Input channels (one feature per channel).
        num_classes: Classes of the dataset; classes the estimator never saw get probability 0.

    Returns:
        A checked ``onnx.ModelProto``.

    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx

    core = to_onnx(estimator, np.zeros((1, channels), dtype=np.float32),
                   options={id(estimator): {"zipmap": False}}, target_opset=17)
    graph = core.graph
    rows = graph.input[0].name
    probs = next(o.name for o in graph.output if o.name == "probabilities")
    scatter = np.zeros((len(estimator.classes_), num_classes), dtype=np.float32)
    scatter[np.arange(len(estimator.classes_)), np.asarray(estimator.classes_, dtype=np.int64)] = 1.0
    constants: dict[str, np.ndarray] = {
        "eo_rows_shape": np.array([-1, channels], dtype=np.int64), "eo_scatter": scatter,
        "eo_floor": np.array(PROBABILITY_FLOOR, dtype=np.float32), "eo_classes": np.array([num_classes], dtype=np.int64),
        "eo_start": np.array([0], dtype=np.int64), "eo_stop": np.array([3], dtype=np.int64),
    }
    node = helper.make_node
    before = [node("Transpose", ["image"], ["eo_nhwc"], perm=[0, 2, 3, 1]),
              node("Reshape", ["eo_nhwc", "eo_rows_shape"], [rows])]
    after = [
        node("MatMul", [probs, "eo_scatter"], ["eo_all"]), node("Max", ["eo_all", "eo_floor"], ["eo_safe"]),
        node("Log", ["eo_safe"], ["eo_log"]), node("Shape", ["eo_nhwc"], ["eo_shape"]),
        node("Slice", ["eo_shape", "eo_start", "eo_stop"], ["eo_bhw"]),
        node("Concat", ["eo_bhw", "eo_classes"], ["eo_out_shape"], axis=0),
        node("Reshape", ["eo_log", "eo_out_shape"], ["eo_logits_nhwc"]),
        node("Transpose", ["eo_logits_nhwc"], ["logits"], perm=[0, 3, 1, 2]),
    ]
    merged = helper.make_graph(
        before + list(graph.node) + after, f"eoengine_{type(estimator).__name__}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, "height", "width"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes, "height", "width"])],
        initializer=[*graph.initializer, *(numpy_helper.from_array(v, k) for k, v in constants.items())],
    )
    model = helper.make_model(merged, opset_imports=list(core.opset_import), producer_name="eoengine")
    model.ir_version = core.ir_version
    onnx.checker.check_model(model)
    return model
