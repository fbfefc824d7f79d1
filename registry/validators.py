import json
import unicodedata

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def validate_no_nul(value: object) -> None:
    """PostgreSQL's jsonb cannot store U+0000 anywhere in a document: refuse it as bad input."""
    if _contains_nul(value):
        raise ValidationError("Must not contain NUL characters (\\u0000).", code="null_characters_not_allowed")


def validate_json_object(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object (a mapping of names to values).", code="not_object")
    validate_no_nul(value)
    validate_json_size(value)


def validate_string_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Must be a JSON list of strings.", code="not_string_list")
    validate_no_nul(value)
    validate_json_size(value)


class FieldedConstraintsMixin:
    """Report constraint violations under the field they concern instead of ``__all__``.

    Django files a violated multi-field UniqueConstraint under NON_FIELD_ERRORS; a client sending
    ``{"name": ...}`` wants the error under ``name``. ``CONSTRAINT_ERROR_FIELDS`` maps each
    constraint's ``violation_error_code`` to that field.
    """

    CONSTRAINT_ERROR_FIELDS: dict[str, str] = {}

    def validate_constraints(self, exclude=None):
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict({})
            for misplaced in list(errors.get(NON_FIELD_ERRORS, [])):
                field = self.CONSTRAINT_ERROR_FIELDS.get(misplaced.code)
                if field:
                    errors[NON_FIELD_ERRORS].remove(misplaced)
                    errors.setdefault(field, []).append(misplaced)
            if not errors.get(NON_FIELD_ERRORS):
                errors.pop(NON_FIELD_ERRORS, None)
            raise ValidationError(errors) from None


MAX_JSON_DEPTH = 20
MAX_JSON_BYTES = 64 * 1024


def _depth(value: object, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    return level


def validate_json_size(value: object) -> None:
    """Hyperparameters and parameters describe a run; megabytes or a hundred levels of nesting
    are an attack or a mistake, and would be stored and served on every read."""
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.", code="too_deep")
    if len(json.dumps(value, default=str)) > MAX_JSON_BYTES:
        raise ValidationError(f"Larger than {MAX_JSON_BYTES // 1024} KB once encoded.", code="too_large")


def normalize_name(name: str) -> str:
    """The form a name is stored in: trimmed and Unicode-normalized (NFKC), so names that only
    look different in their encoding ("ﬁt" and "fit", full-width letters) are one name."""
    return unicodedata.normalize("NFKC", (name or "").strip())


def validate_printable_name(name: str) -> None:
    """Names are shown everywhere: no control or invisible formatting characters in them."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")})
    if bad:
        raise ValidationError(f"Contains control or invisible characters ({', '.join(bad[:5])}).", code="unprintable")
