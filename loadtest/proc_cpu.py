"""CPU time of another local process (the server), from ``/proc``: whether it was the bottleneck.

When the generator and the server share a machine, a step's throughput means little without
knowing who used the cores. Given the server's process id, each step also reports the server's
CPU use in cores (all its threads); 1.0 on a single-threaded event loop means the server was
saturated.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcessCpuError(RuntimeError):
    """The process's CPU time cannot be read (gone, not ours to read, or no ``/proc``)."""


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds that process ``pid`` (all its threads) has used so far.

    Args:
        pid: Process id on this machine.

    Returns:
        CPU seconds.

    Raises:
        ProcessCpuError: If ``/proc/PID/stat`` cannot be read (Linux only).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError as error:
        raise ProcessCpuError(
            f"cannot read the CPU time of process {pid}: {error.strerror}; check --server-pid"
        ) from error
    # The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
