"""Parity: proof that each saved artifact reproduces the eager model, recorded in ``config.json``.

The eager model is the trained model itself (``predict``/``recommend``, for the GCN with its graph
propagation), not the serving module the artifacts were made from, so a mistake in the serving
module shows up here too. Artifacts are loaded back from disk, as a server would load them.

The LSTM's ``predict_user``/``recommend_user`` are compared with the eager ``predict``/``recommend``
reading the stored histories of the users they are given, so the state table encoded at export is
checked against a fresh LSTM pass, at other batch sizes and paddings than it was built with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from exporter.errors import ExportError, ParityError
from exporter.formats import format_label
from exporter.inputs import ModelShape, random_inputs, stored_history_users
from exporter.signatures import SIGNATURE_NAMES, STORED_HISTORY_SIGNATURES, eager_method, torchscript_method
from protos.recsys.v1 import model_config_pb2 as pb
from trainer.data.interactions import Histories

_LOGGER = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
"""Largest allowed absolute difference from the eager model, in stars."""

BATCH_SIZES: tuple[int, ...] = (1, 7, 256)

Runner = Callable[[Mapping[str, torch.Tensor]], np.ndarray]
"""Runs one signature on named inputs and returns its single output as a numpy array."""

Case = tuple[int, int, dict[str, torch.Tensor], dict[str, torch.Tensor]]
"""One parity check's batch size, history length, artifact inputs and eager inputs."""


def history_lengths(max_history_length: int) -> tuple[int, ...]:
    """History lengths T to check the LSTM at: 1, 5 and the maximum (fewer when the maximum is small)."""
    return tuple(sorted({1, min(5, max_history_length), max_history_length}))


def eager_runner(model: torch.nn.Module, signature: str) -> Runner:
    """Run the trained model's ``predict`` or ``recommend`` method (the one ``signature`` reproduces)."""
    method = getattr(model, eager_method(signature))

    def run(inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        with torch.no_grad():
            return method(*inputs.values()).numpy()

    return run


def torchscript_runner(scripted: torch.jit.ScriptModule, signature: str) -> Runner:
    """Run a signature of a loaded TorchScript model (``forward`` for predict, else the method of its name)."""
    method = getattr(scripted, torchscript_method(signature))

    def run(inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        with torch.no_grad():
            return method(*inputs.values()).numpy()

    return run


def onnx_runner(path: Path) -> Runner:
    """Run a saved ONNX signature file with ONNX Runtime on CPU."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types without a common base
        raise ExportError(f"{path.name}: ONNX Runtime cannot load it: {str(error).strip().splitlines()[0]}") from error

    def run(inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        return session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})[0]

    return run


def _max_abs_diff(got: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference; infinite for a shape mismatch or any non-finite value."""
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)), initial=0.0))


def _cases(
    shape: ModelShape,
    signature: str,
    histories: Histories | None,
    batch_sizes: Sequence[int],
    generator: torch.Generator,
) -> Iterator[Case]:
    """The checks of one signature.

    History and user-index signatures get random valid inputs (for the LSTM at each of
    :func:`history_lengths`). Stored-history signatures get users from :func:`stored_history_users`,
    and the eager model gets those users' stored histories, whose padded length is recorded.
    """
    if signature not in STORED_HISTORY_SIGNATURES:
        lengths = history_lengths(shape.max_history_length) if shape.takes_history else (0,)
        for history_length in lengths:
            for batch_size in batch_sizes:
                inputs = random_inputs(shape, signature, batch_size, history_length, generator)
                yield batch_size, history_length, inputs, inputs
        return
    if histories is None:
        raise ExportError(f"parity of signature {signature!r} needs the stored histories: pass histories")
    for batch_size in batch_sizes:
        users = stored_history_users(histories, shape.max_history_length, batch_size, generator)
        padded = histories.padded(users, shape.max_history_length)
        stored = dict(zip(("history_items", "history_ratings", "lengths"), map(torch.from_numpy, padded), strict=True))
        inputs = {"user": torch.from_numpy(users)}
        if eager_method(signature) == "predict":
            inputs["item"] = stored["item"] = torch.randint(0, shape.num_items, (batch_size,), generator=generator)
        yield batch_size, stored["history_items"].shape[1], inputs, stored


def check_parity(
    model: torch.nn.Module,
    shape: ModelShape,
    artifacts: Mapping[tuple[int, str], Runner],
    *,
    histories: Histories | None = None,
    tolerance: float = PARITY_TOLERANCE,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seed: int = 0,
) -> pb.Parity:
    """Compare every artifact with the eager model on valid inputs.

    Args:
        model: the trained model, in eval mode.
        shape: its sizes, to draw valid inputs.
        artifacts: ``(ArtifactFormat, signature) -> runner`` for every saved artifact.
        histories: every user's stored history; needed for the LSTM's ``predict_user``/``recommend_user``.
        tolerance: largest allowed max abs difference, in stars.
        batch_sizes: rows per check.
        seed: seeds the inputs, so the figures are reproducible.

    Returns:
        The ``Parity`` message with one check per (artifact, signature, batch size, history length).

    Raises:
        ParityError: some check exceeds the tolerance; the message names the worst one.
        ExportError: a stored-history signature without ``histories``.
    """
    generator = torch.Generator().manual_seed(seed)
    signatures = sorted({signature for _, signature in artifacts}, key=SIGNATURE_NAMES.index)
    parity = pb.Parity(tolerance=tolerance)
    for signature in signatures:
        eager = eager_runner(model, signature)
        for batch_size, history_length, inputs, eager_inputs in _cases(
            shape, signature, histories, batch_sizes, generator
        ):
            expected = eager(eager_inputs)
            for (artifact_format, artifact_signature), run in artifacts.items():
                if artifact_signature != signature:
                    continue
                parity.checks.add(
                    format=artifact_format,
                    signature=signature,
                    batch_size=batch_size,
                    history_length=history_length,
                    max_abs_diff=_max_abs_diff(run(inputs), expected),
                )
    parity.max_abs_diff = max((check.max_abs_diff for check in parity.checks), default=0.0)
    worst = max(parity.checks, key=lambda check: check.max_abs_diff, default=None)
    if worst is not None and not worst.max_abs_diff <= tolerance:
        raise ParityError(
            f"parity failed: {format_label(worst.format)} {worst.signature} at batch {worst.batch_size}"
            + (f", history length {worst.history_length}" if worst.history_length else "")
            + f" differs from the eager model by {worst.max_abs_diff:.3g} stars > tolerance {tolerance:g}"
        )
    _LOGGER.info("parity: max abs diff %.3g stars over %d checks", parity.max_abs_diff, len(parity.checks))
    return parity
