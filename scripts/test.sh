#!/usr/bin/env bash
# Runs the test suite (no GPU, no network needed). Extra arguments go to pytest.
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
python -m pytest "$@"
