"""What an artifact file is, and whether loading it could run code: read, never unpickled.

``scan_artifact(stream, file_name=...)`` looks at the first bytes to tell the format and returns a
``ScanReport``: a ``status`` (``clean``, ``unsafe``, ``unknown`` or ``error``), the ``findings``
(the dangerous imports a pickle would call when loaded, as ``module.name``) and the format's
``metadata``. Pickles (plain, joblib, and the zip of pickles PyTorch saves) are disassembled by
picklescan, which walks the opcodes without executing any; an import picklescan knows to run code
(``os.system``, ``builtins.exec``, ``subprocess.Popen``…) makes the file ``unsafe``, one it neither
knows as safe nor as dangerous is listed in the metadata (``imports``) but leaves it ``clean``: a
scikit-learn model imports its own classes. safetensors files cannot run code; their header gives
the tensors. Anything else is ``unknown``: the registry cannot vouch for it either way.

Scanning is advice and defence in depth, never a reason to load anything on the server.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import zipfile
from dataclasses import dataclass, field
from math import prod
from typing import IO, Any

from picklescan.scanner import SafetyLevel, scan_pickle_bytes, scan_zip_bytes

CLEAN, UNSAFE, UNKNOWN, ERROR = "clean", "unsafe", "unknown", "error"
# Pickle protocol 2+ streams open with PROTO; protocol 0/1 ones with an opcode such as "(" or "}".
_PICKLE_PROTO = 0x80
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024

# picklescan logs every finding as a warning; the report carries them.
logging.getLogger("picklescan").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ScanReport:
    status: str
    format: str
    findings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def scan_artifact(stream: IO[bytes], *, file_name: str) -> ScanReport:
    """The report on the artifact in ``stream`` (binary, seekable, at its start)."""
    head = stream.read(8)
    stream.seek(0)
    if len(head) == 8 and (report := _safetensors(stream, head)) is not None:
        return report
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        return _zip(stream, file_name)
    stream.seek(0)
    # Every other file is read as a pickle too: protocols 0 and 1 have no opening mark, and a file
    # that imports something when loaded is a pickle whatever its name.
    result = scan_pickle_bytes(stream, file_name)
    if result.globals or head[:1] == bytes([_PICKLE_PROTO]):
        return _from_picklescan(result, "joblib" if file_name.endswith(".joblib") else "pickle")
    return ScanReport(UNKNOWN, "unknown", metadata={"reason": "not a format the registry reads"})


def _zip(stream: IO[bytes], file_name: str) -> ScanReport:
    with zipfile.ZipFile(stream) as archive:
        names = archive.namelist()
    is_torch = any(name.endswith("data.pkl") for name in names)
    stream.seek(0)
    result = scan_zip_bytes(stream, file_name)
    if is_torch or result.scanned_files:
        report = _from_picklescan(result, "pytorch" if is_torch else "zip")
        return ScanReport(report.status, report.format, report.findings, {**report.metadata, "files": len(names)})
    return ScanReport(UNKNOWN, "zip", metadata={"files": len(names), "reason": "a zip without pickles"})


def _from_picklescan(result, kind: str) -> ScanReport:
    dangerous = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous})
    imports = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety != SafetyLevel.Dangerous})
    metadata = {"imports": imports}
    if dangerous:
        return ScanReport(UNSAFE, kind, dangerous, metadata)
    if result.scan_err:
        return ScanReport(ERROR, kind, [], {**metadata, "reason": "the pickle could not be read to its end"})
    return ScanReport(CLEAN, kind, [], metadata)


def _safetensors(stream: IO[bytes], head: bytes) -> ScanReport | None:
    """A safetensors file: a little-endian u64 header length, then that many bytes of JSON."""
    (length,) = struct.unpack("<Q", head)
    if not 2 <= length <= _SAFETENSORS_MAX_HEADER:
        return None
    stream.seek(8)
    header_bytes = stream.read(length)
    stream.seek(0)
    if len(header_bytes) != length or not header_bytes.lstrip().startswith(b"{"):
        return None
    try:
        header = json.loads(header_bytes)
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    metadata = header.pop("__metadata__", None)
    tensors = [value for value in header.values() if isinstance(value, dict) and "dtype" in value]
    if len(tensors) != len(header):
        return None
    return ScanReport(
        CLEAN,
        "safetensors",
        metadata={
            "tensors": len(tensors),
            "dtypes": sorted({tensor["dtype"] for tensor in tensors}),
            "parameters": sum(prod(tensor.get("shape") or [1]) for tensor in tensors),
            "metadata": metadata if isinstance(metadata, dict) else {},
        },
    )


def scan_bytes(content: bytes, *, file_name: str) -> ScanReport:
    """``scan_artifact`` of ``content`` (for small files and tests)."""
    return scan_artifact(io.BytesIO(content), file_name=file_name)
