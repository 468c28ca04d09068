"""Regenerate the Python stubs of the protobuf contracts.

Run ``python -m protos.generate`` after editing any ``.proto`` file under
``protos/recsys`` or ``protos/inference`` (the Open Inference Protocol, copied
from its specification), or after changing the pinned grpcio-tools;
``python -m protos.generate --check`` exits non-zero when the checked-in stubs
are stale (the test suite runs it). The stubs are written next to their
``.proto`` files with relative imports, so the ``protos`` package works wherever
it is installed. Nobody edits the generated files by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGES = ("recsys", "inference")
"""Folders under ``PROTO_ROOT`` whose ``.proto`` files are contracts: ours, and the OIP one we serve."""
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# protoc imports sibling stubs by proto package ("from recsys.v1 import x_pb2"); ours are relative.
_ABSOLUTE_IMPORT = re.compile(rf"^from (?:{'|'.join(PACKAGES)})(?:\.\w+)* import (\w+_pb2)", re.MULTILINE)


def proto_files() -> list[Path]:
    """The contract files, relative to the proto root, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for package in PACKAGES for p in (PROTO_ROOT / package).rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc on every contract and writes the stubs under ``out_dir``.

    Returns:
        The generated files, relative to ``out_dir``.

    Raises:
        RuntimeError: protoc rejected a contract (its message names the file and line).
    """
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        folders = ", ".join(f"protos/{package}" for package in PACKAGES)
        raise RuntimeError(f"protoc failed on the contracts under {folders}: see its message above")
    written = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))
    for path in written:
        text = (out_dir / path).read_text()
        (out_dir / path).write_text(_ABSOLUTE_IMPORT.sub(r"from . import \1", text))
    return written


def main(argv: list[str] | None = None) -> int:
    """Regenerates the stubs, or with ``--check`` only reports staleness; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report whether the checked-in stubs are stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        written = generate(Path(tmp))
        stale = [
            p
            for p in written
            if not (PROTO_ROOT / p).exists() or not filecmp.cmp(Path(tmp) / p, PROTO_ROOT / p, shallow=False)
        ]
        if args.check:
            if stale:
                print(
                    f"stale generated stubs: {', '.join(map(str, stale))}; run: python -m protos.generate",
                    file=sys.stderr,
                )
                return 1
            print(f"generated stubs are up to date ({len(written)} files)")
            return 0
        for path in written:
            shutil.copyfile(Path(tmp) / path, PROTO_ROOT / path)
        print(f"wrote {len(written)} files under {PROTO_ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
