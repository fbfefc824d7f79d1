"""Validation of artifact paths that arrive from clients, before any storage call is made."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

# The only shape the registry ever writes: users/{owner}/models/{model}/v{n}/{file name}.
ARTIFACT_PATH = re.compile(
    r"users/(?P<owner>[1-9]\d{0,18})/models/(?P<model>[1-9]\d{0,18})/v(?P<version>[1-9]\d{0,9})/(?P<name>[\w.-]{1,200})"
)


@dataclass(frozen=True)
class ArtifactPath:
    key: str
    owner_id: int
    model_id: int
    version_number: int


def parse_artifact_path(raw: str) -> ArtifactPath:
    """The artifact path ``raw`` names, or a ValidationError saying why it is not one.

    Anything but the exact shape the registry writes is refused: traversal (``..``), encoded
    characters (``%``, already decoded once by the server), backslashes, NUL bytes, absolute paths,
    empty segments and anything outside ``users/``.
    """
    if not isinstance(raw, str) or not raw:
        raise ValidationError("An artifact path is required.", code="invalid_path")
    if "\x00" in raw or "\\" in raw or "%" in raw:
        raise ValidationError(
            "Artifact paths contain no NUL bytes, backslashes or encoded characters.", code="invalid_path"
        )
    if raw.startswith("/"):
        raise ValidationError("Artifact paths are relative (users/…), not absolute.", code="invalid_path")
    if any(segment in ("", ".", "..") for segment in raw.split("/")):
        raise ValidationError("Artifact paths contain no empty, '.' or '..' segments.", code="invalid_path")
    match = ARTIFACT_PATH.fullmatch(raw)
    if match is None or match["name"] in (".", ".."):
        raise ValidationError(
            "Not an artifact path: expected users/{owner_id}/models/{model_id}/v{n}/{file name}.", code="invalid_path"
        )
    return ArtifactPath(
        key=raw, owner_id=int(match["owner"]), model_id=int(match["model"]), version_number=int(match["version"])
    )
