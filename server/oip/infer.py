"""ModelInfer: check the request's tensors against the OIP model, run the recsys call, build the outputs.

The numbers come from the same domain calls (and so the same dynamic batchers) as recsys.v1 Predict and
Recommend: see :mod:`server.oip.domain`. Every check names the tensor, its datatype and shape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from protos.inference import open_inference_grpc_pb2 as pb
from server.errors import InvalidInput
from server.oip import domain
from server.oip.models import DEFAULT_K, Call, OipSignature, Target, TensorMeta, signature
from server.oip.tensors import (
    BOOL,
    BYTES,
    FP32,
    InputTensor,
    OutputTensor,
    decode_int64,
    decode_strings,
    request_inputs,
    write_outputs,
)
from server.registry import ModelRegistry

_RAW_OUTPUT_PARAMETER = "binary_data_output"
_RECOMMEND_PARAMETERS = {"k": "int64_param", "exclude_seen": "bool_param", "allow_popularity_fallback": "bool_param"}


async def infer(registry: ModelRegistry, target: Target, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """Answers one ModelInfer request for an already resolved target.

    Raises:
        InvalidInput: wrong input names, datatypes, shapes, lengths, parameters or requested outputs,
            or anything recsys.v1 would refuse (unknown ids, k out of range, too many rows).
        ModelNotFound, ModelNotReady, QueueFull: as recsys.v1 Predict and Recommend.
    """
    label = repr(request.model_name)
    raw = _raw_output(request)
    async with domain.lease(registry, target.model, target.version) as model:
        oip = signature(domain.model_config(model), target.call, domain.integer_ids(model))
        chosen = _chosen_outputs(oip, request, label)
        tensors = _matching_inputs(oip, request_inputs(request), label, domain.integer_ids(model))
        if target.call is Call.PREDICT:
            outputs = await _predict(model, oip, tensors)
        else:
            outputs = await _recommend(model, tensors, _recommend_parameters(request.parameters, label))
        version = domain.version(model)
    response = pb.ModelInferResponse(model_name=request.model_name, model_version=str(version), id=request.id)
    write_outputs(response, [outputs[name] for name in chosen], raw=raw)
    return response


def _raw_output(request: pb.ModelInferRequest) -> bool:
    """Raw output contents when the inputs came raw (tritonclient), unless ``binary_data_output`` says otherwise."""
    parameter = request.parameters.get(_RAW_OUTPUT_PARAMETER)
    if parameter is None:
        return bool(request.raw_input_contents)
    if parameter.WhichOneof("parameter_choice") != "bool_param":
        raise InvalidInput(f"parameter {_RAW_OUTPUT_PARAMETER!r} must be a bool_param")
    return parameter.bool_param


def _chosen_outputs(oip: OipSignature, request: pb.ModelInferRequest, label: str) -> list[str]:
    names = [tensor.name for tensor in oip.outputs]
    if not request.outputs:
        return names
    chosen = []
    for requested in request.outputs:
        if requested.name not in names:
            raise InvalidInput(f"model {label} has no output {requested.name[:64]!r}; its outputs are {names}")
        if requested.name in chosen:
            raise InvalidInput(f"output {requested.name!r} is requested twice")
        if "classification" in requested.parameters:
            raise InvalidInput(f"output {requested.name!r}: the classification extension is not supported")
        chosen.append(requested.name)
    return chosen


def _describe(tensors: Collection[TensorMeta]) -> str:
    return ", ".join(f"{t.name} {t.datatype} {list(t.shape)}" for t in tensors)


def _matching_inputs(
    oip: OipSignature, sent: Mapping[str, InputTensor], label: str, integer_ids: bool
) -> dict[str, InputTensor]:
    """The sent inputs, checked to be exactly one accepted set with the right datatypes and shapes."""
    for accepted in oip.input_sets:
        if {t.name for t in accepted} == set(sent):
            for meta in accepted:
                _check_tensor(meta, sent[meta.name], label)
            return dict(sent)
    expected = " or ".join(f"({_describe(accepted)})" for accepted in oip.input_sets)
    hint = ""
    if not integer_ids and {"user_int_id", "item_int_id"} & set(sent):
        hint = "; its ids are not all decimal integers, so send them as BYTES user_id/item_id"
    raise InvalidInput(f"model {label} takes inputs {expected}, got {sorted(n[:64] for n in sent)}{hint}")


def _check_tensor(meta: TensorMeta, tensor: InputTensor, label: str) -> None:
    if tensor.datatype != meta.datatype:
        raise InvalidInput(
            f"input {meta.name!r} of model {label} is {tensor.datatype[:16]!r}, expected {meta.datatype} "
            f"{list(meta.shape)}"
        )
    fits = len(tensor.shape) == len(meta.shape) and all(
        w in (-1, d) for w, d in zip(meta.shape, tensor.shape, strict=True)
    )
    if not fits:
        raise InvalidInput(
            f"input {meta.name!r} of model {label} has shape {list(tensor.shape)}, expected {list(meta.shape)} "
            "(one id per row)"
        )


def _same_length(first: str, second: str, tensors: Mapping[str, InputTensor]) -> None:
    a, b = tensors[first].elements, tensors[second].elements
    if a != b:
        raise InvalidInput(
            f"inputs {first!r} ({a} elements) and {second!r} ({b}) must have the same length: one pair per row"
        )


async def _predict(
    model: domain.Model, oip: OipSignature, tensors: Mapping[str, InputTensor]
) -> dict[str, OutputTensor]:
    if "user_int_id" in tensors:
        _same_length("user_int_id", "item_int_id", tensors)
        users, items = decode_int64(tensors["user_int_id"]), decode_int64(tensors["item_int_id"])
        ratings = await domain.predict_integers(model, users, items)
    else:
        _same_length("user_id", "item_id", tensors)
        users_s, items_s = decode_strings(tensors["user_id"]), decode_strings(tensors["item_id"])
        ratings = await domain.predict(model, users_s, items_s)
    name = oip.outputs[0].name
    return {name: OutputTensor(name, FP32, ratings.shape, ratings)}


def _recommend_parameters(parameters: Mapping[str, pb.InferParameter], label: str) -> dict[str, int | bool]:
    values: dict[str, int | bool] = {"k": DEFAULT_K, "exclude_seen": True, "allow_popularity_fallback": False}
    for name, parameter in parameters.items():
        if name == _RAW_OUTPUT_PARAMETER:
            continue
        kind = _RECOMMEND_PARAMETERS.get(name)
        if kind is None:
            raise InvalidInput(
                f"model {label} takes no parameter {name[:64]!r}; its parameters are "
                f"{sorted(_RECOMMEND_PARAMETERS)} and {_RAW_OUTPUT_PARAMETER!r}"
            )
        if parameter.WhichOneof("parameter_choice") != kind:
            raise InvalidInput(f"parameter {name!r} of model {label} must be an {kind}")
        values[name] = getattr(parameter, kind)
    return values


async def _recommend(
    model: domain.Model, tensors: Mapping[str, InputTensor], parameters: dict[str, int | bool]
) -> dict[str, OutputTensor]:
    users = decode_strings(tensors["user_id"])
    k = int(parameters["k"])
    ranked = await domain.recommend(
        model,
        users,
        k=k,
        exclude_seen=bool(parameters["exclude_seen"]),
        allow_popularity_fallback=bool(parameters["allow_popularity_fallback"]),
    )
    # Rows with fewer than k items left (a user who saw nearly everything) are padded: "" and NaN.
    item_ids = [row + [""] * (k - len(row)) for row in ranked.item_ids]
    scores = np.full((len(users), k), np.nan, dtype=np.float32)
    for row, values in enumerate(ranked.scores):
        scores[row, : len(values)] = values
    shape = (len(users), k)
    return {
        "item_id": OutputTensor("item_id", BYTES, shape, [item for row in item_ids for item in row]),
        "score": OutputTensor("score", FP32, shape, scores),
        "fallback": OutputTensor("fallback", BOOL, (len(users),), np.array(ranked.fallback, dtype=bool)),
    }
