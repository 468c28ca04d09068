import os
import time

import pytest

from loadtest.proc_cpu import ProcessCpuError, process_cpu_seconds


def test_cpu_time_of_a_process_grows_with_work():
    before = process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert process_cpu_seconds(os.getpid()) - before >= 0.05


def test_a_missing_process_is_an_error_naming_the_flag():
    with pytest.raises(ProcessCpuError, match="--server-pid"):
        process_cpu_seconds(2**22 + 12345)
