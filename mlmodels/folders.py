"""Versions whose artifact is a folder of files (an MLflow model: ``MLmodel``, ``model.pkl``…).

What the services need to record one, and to read it back: the rule for the relative paths a
client (or another part of our storage) names; where the files wait while their version is recorded
and how they get under the version's prefix ``users/{owner}/models/{model}/v{n}/``; the zip a folder
is downloaded as; and one scan report for the folder from the reports of its files.

The services decide who may do what and what a version is (``mlmodels.services``); this module
moves the bytes, the same way ``mlmodels.uploads`` does for a single file: stored before the model's
row lock is taken, moved under it if the number the files were stored for was taken meanwhile, and
removed again when the version is not recorded.
"""

from __future__ import annotations

import contextlib
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import IO, Any

from django.core.exceptions import ValidationError

from mlmodels import uploads
from mlmodels.models import MAX_FILE_PATH_LENGTH, MAX_FILES_PER_VERSION, MLModel
from mlmodels.scans import CLEAN, ERROR, UNKNOWN, UNSAFE, ScanReport
from mlmodels.storage import StoredArtifact, artifact_delete_quietly, artifact_move

# Local file systems refuse longer names; S3 refuses keys over 1,024 bytes.
MAX_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024
# The file-key CHECK constraint refuses these in a key (they would read as a URI's scheme, query,
# fragment or an encoded character), so a path carrying one cannot be stored as it is named.
FORBIDDEN_CHARACTERS = frozenset(":?#%\\")
# Control characters (NUL, newlines), invisible format characters (bidi overrides, zero-width
# spaces), line and paragraph separators, lone surrogates.
UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# The worst file decides the folder's status.
SEVERITY = {CLEAN: 0, UNKNOWN: 1, ERROR: 2, UNSAFE: 3}
# Per-file scan details kept in the version's metadata: the status, format and findings of every
# file, the format's own metadata for this many (a folder of thousands of shards stays readable).
DETAILED_FILES = 200
ZIP_CHUNK = 1024 * 1024


def _invalid(path: object, problem: str) -> ValidationError:
    shown = repr(path)[:120]
    return ValidationError(f"The file path {shown} {problem}", code="invalid_path")


def validate_file_path(path: object) -> str:
    """``path`` as a folder's file is named: a relative POSIX path (``MLmodel``,
    ``artifacts/vocab.txt``), or a ValidationError naming what is wrong with it."""
    if not isinstance(path, str) or not path:
        raise _invalid(path, "is empty: every file needs a relative path.")
    if len(path) > MAX_FILE_PATH_LENGTH:
        raise _invalid(path, f"is longer than {MAX_FILE_PATH_LENGTH} characters.")
    # Format characters too: a right-to-left override makes "model\u202elkp.exe" read as another name.
    if any(unicodedata.category(char) in UNSEEN_CATEGORIES for char in path):
        raise _invalid(path, "contains a control character (NUL, a newline…) or an invisible formatting character.")
    if "\\" in path:
        raise _invalid(path, "contains a backslash: paths are POSIX, separated by '/'.")
    if path.startswith("/"):
        raise _invalid(path, "is absolute: paths are relative to the version's folder.")
    if bad := sorted(FORBIDDEN_CHARACTERS.intersection(path)):
        raise _invalid(path, f"contains {' '.join(bad)}, which a stored file's name cannot.")
    for segment in path.split("/"):
        if segment == "":
            raise _invalid(path, "has an empty segment ('//' or a trailing '/').")
        if segment in (".", ".."):
            raise _invalid(path, f"has a '{segment}' segment: paths stay inside the version's folder.")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise _invalid(path, f"has a name longer than {MAX_SEGMENT_BYTES} bytes.")
    return path


def validate_file_set(paths: Iterable[str]) -> list[str]:
    """The paths of one folder, each valid, none twice, none both a file and a folder, at least one
    and at most MAX_FILES_PER_VERSION; a ValidationError (under ``files``) otherwise."""
    checked: list[str] = []
    seen: set[str] = set()
    for path in paths:
        if len(checked) >= MAX_FILES_PER_VERSION:
            raise ValidationError(
                {"files": f"A version holds at most {MAX_FILES_PER_VERSION} files."}, code="too_many_files"
            )
        try:
            validate_file_path(path)
        except ValidationError as error:
            raise ValidationError({"files": error.messages}, code="invalid_path") from None
        if path in seen:
            raise ValidationError({"files": f"The file path {path!r} is given twice."}, code="duplicate_path")
        seen.add(path)
        checked.append(path)
    if not checked:
        raise ValidationError({"files": "A folder version needs at least one file."}, code="no_files")
    for path in checked:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in seen:
                raise ValidationError(
                    {"files": f"{folder!r} is both a file and the folder of {path!r}."}, code="file_and_folder"
                )
    return checked


def version_prefix(*, owner_id: int, model_id: int, version_number: int) -> str:
    return f"users/{owner_id}/models/{model_id}/v{version_number}/"


def _staging_prefix(model: MLModel) -> str:
    return f"users/{model.owner_id}/models/{model.pk}/uploads/{uuid.uuid4().hex}/"


def check_key_length(model: MLModel, path: str) -> None:
    """Refuse a path whose key would be too long under the longest prefix it may be stored under (a
    staging one, longer than any ``v{n}/``): the same path is accepted or refused whatever the database."""
    if len((_staging_prefix(model) + path).encode()) > MAX_KEY_BYTES:
        raise ValidationError(
            {"files": f"The file path {path[:120]!r} is too long to store: keys are at most {MAX_KEY_BYTES} bytes."},
            code="path_too_long",
        )


@dataclass(frozen=True)
class FolderFile:
    """One file of a folder on its way to a version: its path and where it is stored so far."""

    path: str
    stored: StoredArtifact


# Stores one file under the key it is given and says where it went (an upload, or a copy).
Writer = Callable[[str], StoredArtifact]


class FolderUpload:
    """The files of one folder version, stored; ``place`` puts them under the version's prefix."""

    def __init__(self) -> None:
        self.files: list[FolderFile] = []

    def place(self, *, model: MLModel, version_number: int) -> list[FolderFile]:
        """Move every file not already at the key of ``model``'s version ``version_number`` there.
        Call it under the model's row lock, once the number is certain."""
        prefix = version_prefix(owner_id=model.owner_id, model_id=model.pk, version_number=version_number)
        placed = []
        for index, file in enumerate(self.files):
            target = prefix + file.path
            if file.stored.key != target:
                moved = artifact_move(source_key=file.stored.key, target_key=target, size=file.stored.size)
                file = FolderFile(file.path, replace(file.stored, key=moved))
                self.files[index] = file
            placed.append(file)
        return placed

    def remove(self) -> None:
        for file in self.files:
            artifact_delete_quietly(file.stored.key)


@contextmanager
def next_version_folder(*, model: MLModel, writers: Iterable[tuple[str, Writer]]) -> Iterator[FolderUpload]:
    """Store the folder (``writers``: each file's path and how to store it under a key) for the
    next version of ``model``, before the block runs; if anything fails, in storing or in the
    block (its transaction included), every file stored so far is removed again.

    As ``uploads.next_version_upload``: with the model's upload turn (PostgreSQL), straight under
    the prefix of the number the next version will most likely get; otherwise under a staging
    prefix of its own, moved by ``place``.
    """
    folder = FolderUpload()
    with uploads.upload_turn(model.pk) as queued:
        if queued:
            next_number = MLModel.objects.filter(pk=model.pk).values_list("latest_version", flat=True).first()
            prefix = version_prefix(owner_id=model.owner_id, model_id=model.pk, version_number=(next_number or 0) + 1)
        else:
            prefix = _staging_prefix(model)
        try:
            for path, write in writers:
                try:
                    folder.files.append(FolderFile(path, write(prefix + path)))
                except BaseException:
                    # A write that fails part-way may leave what it wrote (a local file is created
                    # before its bytes arrive).
                    artifact_delete_quietly(prefix + path)
                    raise
            yield folder
        except BaseException:
            folder.remove()
            raise


# How many of a folder's paths its version.created event lists.
SUMMARY_PATHS = 100


def files_summary(rows: list[Any]) -> dict[str, Any]:
    """What an event says of a folder (rows with ``path`` and ``size``): how many files, their total
    size and the first paths."""
    return {
        "count": len(rows),
        "size": sum(row.size for row in rows),
        "paths": sorted(row.path for row in rows)[:SUMMARY_PATHS],
    }


# --- the zip a folder downloads as ----------------------------------------------------------------


class _Pipe:
    """A write-only, unseekable file for ``zipfile``: what it is given waits here until the response
    takes it, so the archive is built as it is sent."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_stream(files: Iterable[Any], *, open_stream: Callable[[str], IO[bytes]]) -> Iterator[bytes]:
    """The zip of ``files`` (each with ``path``, ``key``, ``size`` and ``created_at``), produced as it
    is read: every file streamed from storage in chunks, entries uncompressed (model weights do not
    compress) and their sizes written after their data, as an unseekable output needs."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for file in files:
            info = zipfile.ZipInfo(file.path, date_time=file.created_at.timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = file.size  # decides ahead whether the entry needs ZIP64 sizes
            with contextlib.closing(open_stream(file.key)) as source, archive.open(info, mode="w") as entry:
                while chunk := source.read(ZIP_CHUNK):
                    entry.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


# --- one scan report for a folder -------------------------------------------------------------------


# The text files that come with a model (an MLflow folder's requirements and environments, a card):
# they run no code when the model loads, so one the scanner cannot read leaves the folder's status be.
COMPANION_SUFFIXES = (".txt", ".yaml", ".yml", ".json", ".md", ".toml", ".cfg")


def _counts(path: str, report: ScanReport) -> bool:
    return not (report.status == UNKNOWN and path.lower().endswith(COMPANION_SUFFIXES))


def folder_report(reports: dict[str, ScanReport]) -> ScanReport:
    """The folder's report from its files': the worst status (unsafe, error, unknown, clean), each
    finding prefixed with its file's path, every file's result under ``metadata["files"]``; an
    ``MLmodel`` at the folder's root lends the folder its format (``mlflow``) and its metadata. A
    text companion the scanner cannot read (``requirements.txt``) does not make the folder unknown."""
    counted = [report.status for path, report in reports.items() if _counts(path, report)]
    status = max(counted, key=lambda s: SEVERITY.get(s, 1), default=UNKNOWN)
    findings = [f"{path}: {finding}" for path, report in reports.items() for finding in report.findings]
    files: dict[str, Any] = {}
    for index, (path, report) in enumerate(reports.items()):
        entry: dict[str, Any] = {"status": report.status, "format": report.format, "findings": report.findings}
        if index < DETAILED_FILES:
            entry["metadata"] = report.metadata
        files[path] = entry
    mlmodel = reports.get("MLmodel")
    if mlmodel is not None and mlmodel.format == "mlflow":
        return ScanReport(status, "mlflow", findings=findings, metadata={**mlmodel.metadata, "files": files})
    return ScanReport(status, "folder", findings=findings, metadata={"files": files})


def folder_scan_error(path: str, error: Exception) -> ScanReport:
    return ScanReport(ERROR, "unknown", metadata={"reason": f"the scan of {path} failed: {error}"[:500]})
