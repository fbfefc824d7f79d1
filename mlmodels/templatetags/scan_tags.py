"""The model page's words for a version's artifact scan: a one-line summary per format and the facts
listed under it, from the metadata mlmodels.scans records. Stored metadata is read defensively: a
version scanned by an older scanner lacks keys, and the page must show what it has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import template

from mlmodels.models import ScanStatus

register = template.Library()

# What a summary lists of a model's inputs, outputs or flavors before "+N more"; the facts list more.
SUMMARY_ITEMS = 3
FACT_ITEMS = 20
FORMAT_NAMES = {
    "onnx": "ONNX",
    "safetensors": "safetensors",
    "mlflow": "MLflow model",
    "pickle": "pickle",
    "joblib": "joblib",
    "pytorch": "PyTorch (zip of pickles)",
    "zip": "zip of pickles",
    "folder": "folder of files",
}
DEFAULT_ONNX_DOMAINS = ("", "ai.onnx")


def _metadata(version) -> dict[str, Any]:
    metadata = getattr(version, "artifact_metadata", None)
    return metadata if isinstance(metadata, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _some(items: list[str], limit: int, separator: str = ", ", *, total=None) -> str:
    """``items`` up to ``limit``, then how many more there are (of ``total``, when the scan kept
    fewer than the file has)."""
    total = total if isinstance(total, int) and total > len(items) else len(items)
    shown = separator.join(items[:limit])
    hidden = total - min(len(items), limit)
    return f"{shown} +{hidden} more" if hidden > 0 else shown


def count(number) -> str:
    """A count at a glance, in thousands, millions, billions or trillions with one decimal."""
    if not isinstance(number, int):
        return "?"
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if number >= size:
            return f"{number / size:.1f}".removesuffix(".0") + suffix
    return str(number)


def _plural(number, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _onnx_value(value) -> str:
    """``input [batch, 4] float32``: a graph input or output, ``?`` for a dimension of unknown size."""
    if not isinstance(value, dict):
        return "?"
    shape = value.get("shape")
    dims = f" [{', '.join('?' if dim is None else str(dim) for dim in shape)}]" if isinstance(shape, list) else ""
    return f"{value.get('name') or '?'}{dims} {value.get('type') or '?'}"


def _onnx_values(metadata: dict, key: str, limit: int) -> str:
    values = [_onnx_value(value) for value in _list(metadata.get(key))]
    return _some(values, limit, "; " if limit > SUMMARY_ITEMS else ", ", total=metadata.get(f"{key}_total"))


def _onnx_opset(metadata: dict) -> int | None:
    for opset in _list(metadata.get("opset_imports")):
        if isinstance(opset, dict) and opset.get("domain") in DEFAULT_ONNX_DOMAINS:
            return opset.get("version")
    return None


def _signature_columns(side) -> str:
    if not isinstance(side, dict):
        return ""
    columns = []
    for column in _list(side.get("columns")):
        if not isinstance(column, dict):
            continue
        kind = column.get("dtype") if column.get("type") == "tensor" else column.get("type")
        shape = column.get("shape")
        described = " ".join(str(part) for part in (column.get("name"), kind) if part not in (None, ""))
        columns.append(f"{described} {shape}" if isinstance(shape, list) else described or "?")
    return _some(columns, FACT_ITEMS, "; ", total=side.get("total"))


def _summary_parts(version) -> list[str]:
    metadata, kind = _metadata(version), version.artifact_format
    name = FORMAT_NAMES.get(kind, kind or "")
    if kind == "onnx":
        opset = _onnx_opset(metadata)
        parts = [f"ONNX opset {opset}" if opset is not None else name]
        for key, label in (("inputs", "inputs"), ("outputs", "outputs")):
            if values := _onnx_values(metadata, key, SUMMARY_ITEMS):
                parts.append(f"{label}: {values}")
        return parts
    if kind == "safetensors":
        dtypes = ", ".join(str(dtype) for dtype in _list(metadata.get("dtypes")))
        parts = [name, _plural(metadata.get("tensors", 0), "tensor"), f"{count(metadata.get('parameters'))} parameters"]
        return [*parts, dtypes] if dtypes else parts
    if kind == "mlflow":
        # Sorted: PostgreSQL's jsonb keeps an object's keys in its own order, not the file's.
        flavors = sorted(metadata["flavors"]) if isinstance(metadata.get("flavors"), dict) else []
        return [name, f"flavors {_some(flavors, SUMMARY_ITEMS)}"] if flavors else [name]
    if kind in ("pickle", "joblib", "pytorch", "zip"):
        parts = [name]
        if compression := metadata.get("compression"):
            parts.append(f"{compression}-compressed")
        imports = _list(metadata.get("imports"))
        if version.scan_findings:
            parts.append(f"would call {_some([str(f) for f in version.scan_findings], SUMMARY_ITEMS)}")
        elif imports:
            parts.append(_plural(len(imports), "import"))
        return parts
    return [name] if name and name != "unknown" else []


@register.filter
def scan_summary(version) -> str:
    """One line on what the version's artifact is: an ONNX model's opset, inputs and outputs; a
    safetensors file's tensors, parameters and dtypes; an MLflow model's flavors; a pickle's calls."""
    return " · ".join(_summary_parts(version)) or "format not recognised"


@register.filter
def scan_facts(version) -> list[tuple[str, str]]:
    """The (label, text) pairs listed under the summary, by format; the reason of an unknown or
    failed scan last."""
    metadata, kind = _metadata(version), version.artifact_format
    facts: list[tuple[str, str]] = []
    if kind == "onnx":
        opsets = [
            f"{opset.get('domain') or 'ai.onnx'} {opset.get('version')}"
            for opset in _list(metadata.get("opset_imports"))
            if isinstance(opset, dict)
        ]
        producer = " ".join(str(metadata.get(key) or "") for key in ("producer_name", "producer_version")).strip()
        graph = [
            str(metadata.get("graph_name") or "unnamed"),
            _plural(metadata.get("nodes", 0), "node"),
            _plural(metadata.get("initializers", 0), "initializer"),
        ]
        facts += [
            ("Opsets", ", ".join(opsets) or "none"),
            ("Inputs", _onnx_values(metadata, "inputs", FACT_ITEMS) or "none"),
            ("Outputs", _onnx_values(metadata, "outputs", FACT_ITEMS) or "none"),
            ("Graph", " · ".join(graph)),
            ("IR version", str(metadata.get("ir_version", "?"))),
        ]
        if producer:
            facts.append(("Producer", producer))
    elif kind == "safetensors":
        parameters = metadata.get("parameters")
        facts += [
            ("Tensors", str(metadata.get("tensors", "?"))),
            ("Parameters", f"{parameters:,}" if isinstance(parameters, int) else "?"),
            ("Dtypes", ", ".join(str(dtype) for dtype in _list(metadata.get("dtypes"))) or "none"),
        ]
        if isinstance(extra := metadata.get("metadata"), dict) and extra:
            facts.append(("Header metadata", _some([f"{key}={value}" for key, value in extra.items()], FACT_ITEMS)))
    elif kind == "mlflow":
        flavors = metadata.get("flavors") if isinstance(metadata.get("flavors"), dict) else {}
        for flavor, options in sorted(flavors.items()):
            options = options if isinstance(options, dict) else {}
            described = ", ".join(f"{key} {value}" for key, value in options.items() if value is not None)
            facts.append((f"Flavor {flavor}", described or "—"))
        signature = metadata.get("signature") if isinstance(metadata.get("signature"), dict) else {}
        for side, label in (("inputs", "Signature inputs"), ("outputs", "Signature outputs")):
            if columns := _signature_columns(signature.get(side)):
                facts.append((label, columns))
        for key, label in (("mlflow_version", "MLflow version"), ("run_id", "Run"), ("model_uuid", "Model UUID")):
            if metadata.get(key):
                facts.append((label, str(metadata[key])))
        if metadata.get("utc_time_created"):
            facts.append(("Created (UTC)", str(metadata["utc_time_created"])))
    elif kind in ("pickle", "joblib", "pytorch", "zip"):
        if metadata.get("compression"):
            facts.append(("Compression", str(metadata["compression"])))
        if "files" in metadata:
            facts.append(("Files in the archive", str(metadata["files"])))
        imports = [str(name) for name in _list(metadata.get("imports"))]
        facts.append(("Imports", _some(imports, FACT_ITEMS) or "none"))
    if isinstance(files := metadata.get("files"), dict):
        facts.append(("Files scanned", _folder_counts(files)))
    if metadata.get("reason"):
        facts.append(("Note", str(metadata["reason"])))
    return facts


def _folder_counts(files: dict) -> str:
    """``3 files: 2 clean, 1 unknown``: how a folder's files fared, worst first."""
    statuses = [entry.get("status") for entry in files.values() if isinstance(entry, dict)]
    order = ("unsafe", "error", "unknown", "clean")
    counts = [f"{statuses.count(status)} {status}" for status in order if status in statuses]
    return f"{_plural(len(files), 'file')}: {', '.join(counts)}" if counts else _plural(len(files), "file")


@dataclass
class FileScan:
    """One file's scan inside a folder version's, shaped like a version for the filters above."""

    scan_status: str = ""
    artifact_format: str = ""
    scan_findings: list = field(default_factory=list)
    artifact_metadata: dict = field(default_factory=dict)

    def get_scan_status_display(self) -> str:
        return dict(ScanStatus.choices).get(self.scan_status, self.scan_status)


@register.filter
def file_scan(version, path: str) -> FileScan | None:
    """The scan of the file ``path`` of a folder version, from its metadata; None before the scan."""
    files = _metadata(version).get("files")
    entry = files.get(path) if isinstance(files, dict) else None
    if not isinstance(entry, dict):
        return None
    metadata = entry.get("metadata")
    return FileScan(
        scan_status=str(entry.get("status") or ""),
        artifact_format=str(entry.get("format") or ""),
        scan_findings=[str(finding) for finding in _list(entry.get("findings"))],
        artifact_metadata=metadata if isinstance(metadata, dict) else {},
    )


@register.filter
def files_size(files) -> int:
    """The total size of a folder's files."""
    return sum(file.size for file in files)
