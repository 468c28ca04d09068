"""How a model version appears as OIP models: names, versions, and the tensors of each (see docs/oip.md).

Every recsys model ``NAME`` is two OIP models:

* ``NAME``: Predict. Inputs ``user_id`` and ``item_id`` BYTES [-1] (raw ids, one pair per row) or, for
  versions whose ids are all decimal integers, ``user_int_id`` and ``item_int_id`` INT64 [-1] instead;
  output ``rating`` FP32 [-1], in stars, clipped to the rating scale.
* ``NAME.recommend``: Recommend. Input ``user_id`` BYTES [-1]; request parameters ``k`` (int64, default
  10), ``exclude_seen`` (bool, default true), ``allow_popularity_fallback`` (bool, default false);
  outputs ``item_id`` BYTES [-1, -1] and ``score`` FP32 [-1, -1] (``[users, k]``, best first) and
  ``fallback`` BOOL [-1].

The tensors are derived from the version's ``config.json``: the signature that answers calls naming
users (chosen by ``server.signatures.route`` from the tensors' kinds, as for recsys.v1)
gives the batch dimension and the output's datatype; its index inputs become id inputs, because the
server maps ids to indices itself. OIP versions are the decimal version numbers; ``""`` means the
newest ready one.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from protos.recsys.v1 import model_config_pb2 as mc
from server.errors import InvalidInput, ModelLoadError, ModelNotFound
from server.oip.tensors import BOOL, BYTES, FP32, INT64
from server.signatures import route, served_signatures

RECOMMEND_SUFFIX = ".recommend"
DEFAULT_K = 10
_DATATYPES = {mc.DATA_TYPE_INT64: INT64, mc.DATA_TYPE_FLOAT32: FP32}


class Call(enum.Enum):
    """The recsys call an OIP model answers."""

    PREDICT = "predict"
    RECOMMEND = "recommend"


@dataclass(frozen=True)
class TensorMeta:
    """Name, OIP datatype and shape (-1 for a variable dimension) of one tensor."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class OipSignature:
    """The tensors of one OIP model.

    Attributes:
        input_sets: The accepted sets of inputs; a request sends exactly one of them.
        outputs: Every output, in the order a response lists them when the request names none.
    """

    input_sets: tuple[tuple[TensorMeta, ...], ...]
    outputs: tuple[TensorMeta, ...]

    @property
    def inputs(self) -> tuple[TensorMeta, ...]:
        """Every input of every accepted set, in order, for ModelMetadata."""
        return tuple(tensor for inputs in self.input_sets for tensor in inputs)


@dataclass(frozen=True)
class Target:
    """What an OIP model name and version resolve to: a recsys model, a version (0 = newest), a call."""

    model: str
    version: int
    call: Call


def resolve(name: str, version: str, known: Collection[str]) -> Target:
    """Maps an OIP model name and version string to the recsys model, version and call.

    A name that is a model of the repository is its Predict model, even if it ends in ``.recommend``;
    otherwise ``NAME.recommend`` is the Recommend model of ``NAME``.

    Args:
        name: ``model_name`` / ``name`` of the request.
        version: ``model_version`` / ``version`` of the request: ``""`` or a positive decimal number.
        known: The model names of the repository.

    Raises:
        InvalidInput: the version is not ``""`` or a positive decimal number.
        ModelNotFound: neither the name nor its stem is a model of the repository.
    """
    number = parse_version(version)
    if name in known:
        return Target(name, number, Call.PREDICT)
    stem = name.removesuffix(RECOMMEND_SUFFIX)
    if stem != name and stem in known:
        return Target(stem, number, Call.RECOMMEND)
    shown = repr(name if len(name) <= 80 else name[:80] + "…")
    raise ModelNotFound(
        f"unknown model {shown}; the OIP models are {sorted(oip_names(known))} "
        f"(NAME for Predict, NAME{RECOMMEND_SUFFIX} for Recommend)"
    )


def oip_names(known: Collection[str]) -> list[str]:
    """The OIP model names of the repository's models, two per model."""
    return [oip for name in sorted(known) for oip in (name, name + RECOMMEND_SUFFIX)]


def parse_version(version: str) -> int:
    """``""`` -> 0 (the newest ready version), ``"3"`` -> 3.

    Raises:
        InvalidInput: anything but ``""`` or a positive decimal number.
    """
    if not version:
        return 0
    if len(version) > 18 or not (version.isascii() and version.isdecimal()) or int(version) < 1:
        raise InvalidInput(
            f"model_version {version[:40]!r} is not a version number; send '' for the newest ready "
            "version or a positive number such as '1'"
        )
    return int(version)


_SIGNATURES: dict[tuple[str, int, str, Call, bool], OipSignature] = {}


def signature(config: mc.ModelConfig, call: Call, integer_ids: bool) -> OipSignature:
    """The OIP tensors of one call of a version (computed once per version: configs never change).

    Raises:
        ModelLoadError: see :func:`derive_signature`.
    """
    key = (config.name, int(config.version), config.created_at, call, integer_ids)
    found = _SIGNATURES.get(key)
    if found is None:
        found = _SIGNATURES[key] = derive_signature(config, call, integer_ids)
    return found


def derive_signature(config: mc.ModelConfig, call: Call, integer_ids: bool) -> OipSignature:
    """The OIP tensors of one call of a version, derived from its exported signatures.

    Args:
        config: The version's exported config.
        call: Predict or Recommend.
        integer_ids: Whether its ids are all decimal integers, which adds the INT64 inputs to Predict.

    Raises:
        ModelLoadError: the config lacks the signature or its output is not a float32 tensor.
    """
    exported = _user_signature(config, call.value)
    output = exported.outputs[0]
    batch = (int(output.shape[0]) if output.shape else -1,)
    datatype = _DATATYPES.get(output.dtype)
    if datatype != FP32:
        raise ModelLoadError(f"signature {exported.name!r} outputs {mc.DataType.Name(output.dtype)}, not FLOAT32")
    if call is Call.RECOMMEND:
        user = TensorMeta("user_id", BYTES, batch)
        outputs = (
            TensorMeta("item_id", BYTES, (*batch, -1)),
            TensorMeta("score", datatype, (*batch, -1)),
            TensorMeta("fallback", BOOL, batch),
        )
        return OipSignature(((user,),), outputs)
    strings = (TensorMeta("user_id", BYTES, batch), TensorMeta("item_id", BYTES, batch))
    integers = (TensorMeta("user_int_id", INT64, batch), TensorMeta("item_int_id", INT64, batch))
    rating = (TensorMeta(output.name, datatype, batch),)
    return OipSignature((strings, integers) if integer_ids else (strings,), rating)


def _user_signature(config: mc.ModelConfig, call: str) -> mc.Signature:
    """The exported signature the server runs for ``call`` when the request names users (``server.signatures``)."""
    routes = route(served_signatures(config))
    chosen = routes.predict_users if call == "predict" else routes.recommend_users
    return next(s for s in config.signatures if s.name == chosen.name)


def platform(backend: str) -> str:
    """The OIP platform name of a backend (``onnx_onnxv1``, ``pytorch_torchscript``)."""
    return {"onnx": "onnx_onnxv1", "torchscript": "pytorch_torchscript"}.get(backend, backend)
