"""The Open Inference Protocol (V2: KServe, MLServer, Triton), over REST.

An infer request holds one input tensor per model feature, named by the feature (MLServer's pandas
convention): `{"inputs": [{"name": "island", "shape": [2], "datatype": "BYTES", "data": [...]}]}`.
The response holds `predict` (shape [n]) and, for a classifier with `predict_proba`,
`predict_proba` (shape [n, classes], row-major; the class order in its `parameters.classes`).
"""
from __future__ import annotations

import math
from typing import Any

from .inputs import Columns, InputError, describe
from .model import LoadedModel

NUMBER_TYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
KIND_TYPES = {"number": NUMBER_TYPES, "text": {"BYTES"}, "boolean": {"BOOL"}}
KIND_DATATYPE = {"number": "FP64", "text": "BYTES", "boolean": "BOOL", "any": "BYTES"}


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def parse_infer(document: Any, model: LoadedModel) -> tuple[Columns, str | None]:
    """The request's columns and its `id` (if any)."""
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise InputError("an infer request needs a list of 'inputs'",
                         expected='{"inputs": [{"name", "shape", "datatype", "data"}, ...]}',
                         found=describe(document) if not isinstance(document, dict) else
                         f"keys: {', '.join(sorted(document)) or 'none'}")
    kinds = {f.name: f.kind for f in model.features}
    values: dict[str, list[Any]] = {}
    rows: int | None = None
    for i, tensor in enumerate(document["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InputError(f"input {i} has no name", expected="an object with name, shape, datatype, data",
                             found=describe(tensor))
        name = tensor["name"]
        if name in values:
            raise InputError(f"input {name!r} is given twice", column=name, expected="one input per feature",
                             found=f"{name!r} twice")
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise InputError(f"input {name!r} needs a shape", column=name, expected="a list of sizes like [3]",
                             found=describe(shape))
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InputError(f"input {name!r} must be one column", column=name, expected="shape [n] or [n, 1]",
                             found=str(shape))
        flat = _flatten(data)
        if len(flat) != shape[0]:
            raise InputError(f"input {name!r} holds {len(flat)} values but its shape says {shape[0]}",
                             column=name, expected=f"{shape[0]} values", found=f"{len(flat)} values")
        expected_types = KIND_TYPES.get(kinds.get(name, "any"))
        if name in kinds and expected_types and datatype not in expected_types:
            raise InputError(f"input {name!r} has datatype {datatype}", column=name,
                             expected=" or ".join(sorted(expected_types)) if len(expected_types) < 3
                             else "a numeric datatype (FP64, FP32, INT64, ...)", found=str(datatype))
        if rows is not None and shape[0] != rows:
            raise InputError(f"input {name!r} has {shape[0]} rows, the others {rows}", column=name,
                             expected=f"{rows} values", found=f"{shape[0]} values")
        rows = shape[0]
        values[name] = flat
    return Columns(values, rows or 0), document.get("id") if isinstance(document.get("id"), str) else None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def infer_response(model: LoadedModel, request_id: str, predictions: list[Any],
                   probabilities: list[list[float]] | None) -> dict[str, Any]:
    if model.task == "classification":
        datatype = "BYTES" if any(isinstance(p, str) for p in predictions) else "INT64"
    else:
        datatype = "FP64"
    outputs = [{"name": "predict", "shape": [len(predictions)], "datatype": datatype, "data": predictions}]
    if probabilities is not None:
        outputs.append({"name": "predict_proba", "shape": [len(probabilities), len(model.classes)],
                        "datatype": "FP64", "data": [p for row in probabilities for p in row],
                        "parameters": {"classes": [_plain(c) for c in model.classes]}})
    return {"model_name": model.name, "model_version": model.version, "id": request_id, "outputs": outputs}


def metadata(model: LoadedModel) -> dict[str, Any]:
    outputs = [{"name": "predict", "datatype": "FP64" if model.task == "regression" else "BYTES", "shape": [-1]}]
    if model.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]})
    return {"name": model.name, "versions": [model.version], "platform": "sklearn",
            "inputs": [{"name": f.name, "datatype": KIND_DATATYPE[f.kind], "shape": [-1]} for f in model.features],
            "outputs": outputs}
