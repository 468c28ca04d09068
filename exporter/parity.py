"""Parity: proof that each saved artifact reproduces the eager model, recorded in ``config.json``.

The eager model is the trained model itself (each signature's declared eager computation: ``rate``,
``rank``, ``predict``, ... for the GCN with its graph propagation), not the serving module the artifacts
were made from, so a mistake in the serving module shows up here too. Artifacts are loaded back from
disk, as a server would load them.

Score outputs (``[B, num_items]``) are also compared by their top-10 order: a row passes when the
artifact's top 10 items, read in the eager model's scores, are the eager top 10 up to ties (items whose
eager scores lie within the tolerance of each other may swap). Stored-history signatures get users with
a stored history, so the state tables encoded at export are checked against a fresh eager pass over
those histories, at other batch sizes and paddings than they were built with.
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
from exporter.inputs import ModelShape, random_inputs, reads_request_history, stored_history_users
from exporter.signatures import torchscript_method
from protos.recsys.v1 import model_config_pb2 as mc
from protos.tensors import SCORE_KINDS
from trainer.architecture import Architecture, SignatureDeclaration
from trainer.data.interactions import UserHistories

_LOGGER = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
"""Largest allowed absolute difference from the eager model, in the output's unit (stars for ratings)."""

BATCH_SIZES: tuple[int, ...] = (1, 7, 256)
TOP_K = 10

Runner = Callable[[Mapping[str, torch.Tensor]], np.ndarray]
"""Runs one signature on named inputs and returns its single output as a numpy array."""


def history_lengths(max_history_length: int) -> tuple[int, ...]:
    """History lengths T to check history inputs at: 1, 5 and the maximum (fewer when the maximum is small)."""
    return tuple(sorted({1, min(5, max_history_length), max_history_length}))


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


def top_k_mismatches(got: np.ndarray, expected: np.ndarray, k: int, tolerance: float) -> int:
    """Rows whose top-k order from ``got`` differs from ``expected``'s beyond ties.

    A row matches when, position by position, the eager score of the item ``got`` ranks there is within
    ``tolerance`` of the eager score at that position of the eager order: swapped near-ties pass, a
    different item that the eager model scores clearly lower does not.

    Args:
        got: float [B, N] artifact scores.
        expected: float [B, N] eager scores.
        k: cut-off (at most N).
        tolerance: largest eager-score gap treated as a tie.

    Returns:
        The number of mismatched rows; every row of ``expected`` when the shapes differ.
    """
    if got.shape != expected.shape:  # every row of the batch: the eager rows are the ones asked for
        return expected.shape[0] if expected.ndim else 1
    k = min(k, expected.shape[1])
    got_top = np.argsort(-got, axis=1, kind="stable")[:, :k]
    eager_sorted = -np.sort(-expected, axis=1)[:, :k]
    eager_of_got = np.take_along_axis(expected, got_top, axis=1)
    return int(np.sum(np.any(np.abs(eager_of_got - eager_sorted) > tolerance, axis=1)))


def _cases(
    shape: ModelShape,
    declaration: SignatureDeclaration,
    histories: UserHistories,
    batch_sizes: Sequence[int],
    generator: torch.Generator,
) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """(batch size, history length, inputs) of every check of one signature."""
    lengths = history_lengths(shape.max_history_length) if reads_request_history(declaration) else (0,)
    for history_length in lengths:
        for batch_size in batch_sizes:
            users = None
            if declaration.reads_stored_history:
                users = stored_history_users(histories, shape.max_history_length, batch_size, generator)
            inputs = random_inputs(shape, declaration, batch_size, max(history_length, 1), generator, users)
            if declaration.reads_stored_history and shape.max_history_length:
                counts = np.minimum(histories.lengths()[inputs["user"].numpy()], shape.max_history_length)
                history_length = int(counts.max())
            yield batch_size, history_length, inputs


def check_parity(
    model: torch.nn.Module,
    architecture: Architecture,
    shape: ModelShape,
    artifacts: Mapping[tuple[int, str], Runner],
    *,
    histories: UserHistories,
    tolerance: float = PARITY_TOLERANCE,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seed: int = 0,
) -> mc.Parity:
    """Compare every artifact with the eager model on valid inputs.

    Args:
        model: the trained model, in eval mode.
        architecture: its declaration (signatures and their eager computations).
        shape: its sizes, to draw valid inputs.
        artifacts: ``(ArtifactFormat, signature) -> runner`` for every saved artifact.
        histories: every user's stored history (what stored-history signatures encode).
        tolerance: largest allowed max abs difference, and the width of a tie for the top-k order.
        batch_sizes: rows per check.
        seed: seeds the inputs, so the figures are reproducible.

    Returns:
        The ``Parity`` message with one check per (artifact, signature, batch size, history length).

    Raises:
        ParityError: some check exceeds the tolerance or breaks the top-10 order; the message names the worst.
    """
    generator = torch.Generator().manual_seed(seed)
    wanted = {signature for _, signature in artifacts}
    parity = mc.Parity(tolerance=tolerance)
    for declaration in architecture.signatures:
        if declaration.name not in wanted:
            continue
        scores = declaration.output in SCORE_KINDS
        for batch_size, history_length, inputs in _cases(shape, declaration, histories, batch_sizes, generator):
            with torch.no_grad():
                expected = declaration.eager(model, inputs, histories).numpy()
            for (artifact_format, artifact_signature), run in artifacts.items():
                if artifact_signature != declaration.name:
                    continue
                got = run(inputs)
                parity.checks.add(
                    format=artifact_format,
                    signature=declaration.name,
                    batch_size=batch_size,
                    history_length=history_length,
                    max_abs_diff=_max_abs_diff(got, expected),
                    top_k=min(TOP_K, shape.num_items) if scores else 0,
                    top_k_mismatched_rows=top_k_mismatches(got, expected, TOP_K, tolerance) if scores else 0,
                )
    parity.max_abs_diff = max((check.max_abs_diff for check in parity.checks), default=0.0)
    _raise_on_failure(parity, tolerance)
    _LOGGER.info("parity: max abs diff %.3g over %d checks", parity.max_abs_diff, len(parity.checks))
    return parity


def _raise_on_failure(parity: mc.Parity, tolerance: float) -> None:
    def where(check: mc.ParityCheck) -> str:
        return f"{format_label(check.format)} {check.signature} at batch {check.batch_size}" + (
            f", history length {check.history_length}" if check.history_length else ""
        )

    worst = max(parity.checks, key=lambda check: check.max_abs_diff, default=None)
    if worst is not None and not worst.max_abs_diff <= tolerance:
        raise ParityError(
            f"parity failed: {where(worst)} differs from the eager model by {worst.max_abs_diff:.3g} "
            f"> tolerance {tolerance:g}"
        )
    misordered = [check for check in parity.checks if check.top_k_mismatched_rows]
    if misordered:
        check = misordered[0]
        raise ParityError(
            f"parity failed: {where(check)} orders the top {check.top_k} differently from the eager model in "
            f"{check.top_k_mismatched_rows} rows beyond ties of {tolerance:g}"
        )
