import json
import re
import unicodedata

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator

MAX_JSON_DEPTH = 20
MAX_JSON_BYTES = 64 * 1024
# Free text (descriptions, notes, comments): room for a model card, not a way to bloat every list.
MAX_TEXT_LENGTH = 10_000
# Request bodies nested deeper than this are refused before they are parsed: Python's JSON parser
# recurses once per level and fails at about a thousand. Below it, a too-deep document is refused by
# its field's validator, which names the field.
MAX_BODY_JSON_DEPTH = 100
# The largest id a database column holds (a signed 64-bit integer).
MAX_DATABASE_ID = 2**63 - 1

LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate of ``text``, if any. Decoded JSON holds one only when its escapes
    were unpaired (``"\\ud800"``): a paired escape decodes to one character."""
    match = LONE_SURROGATE.search(text)
    return match.group() if match else None


def _not_unicode(char: str) -> ValidationError:
    return ValidationError(
        f"Contains text that is not valid Unicode (a lone surrogate, U+{ord(char):04X}).", code="invalid_unicode"
    )


def validate_unicode_text(value: object) -> None:
    """Text must be encodable: a lone surrogate cannot be stored, sent as UTF-8 or shown on a page."""
    if isinstance(value, str) and (char := lone_surrogate(value)):
        raise _not_unicode(char)


free_text_validators = [validate_unicode_text, MaxLengthValidator(MAX_TEXT_LENGTH)]


def check_free_text(**fields: str) -> None:
    """Run the free-text validators on values written without a model's ``full_clean`` (notes and
    comments), raising one ValidationError keyed by field."""
    errors = {}
    for name, value in fields.items():
        for validator in free_text_validators:
            try:
                validator(value)
            except ValidationError as error:
                errors.setdefault(name, []).extend(error.messages)
    if errors:
        raise ValidationError(errors)


def _strings(value: object):
    """Every string of a JSON document, keys included, with no recursion (a document may be nested
    far deeper than Python's stack); refuses one nested more than MAX_JSON_DEPTH levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.", code="too_deep")
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    yield key
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)


def validate_json_document(value: object) -> None:
    """What every stored JSON document must be: at most MAX_JSON_DEPTH levels deep, valid Unicode
    text in every key and value, no NUL (PostgreSQL's jsonb cannot store U+0000), and at most
    MAX_JSON_BYTES once encoded. Hyperparameters and parameters describe a run; megabytes or a
    hundred levels of nesting are an attack or a mistake, and would be served on every read."""
    for text in _strings(value):
        if char := lone_surrogate(text):
            raise _not_unicode(char)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters (\\u0000).", code="null_characters_not_allowed")
    if len(json.dumps(value, ensure_ascii=False, default=str).encode()) > MAX_JSON_BYTES:
        raise ValidationError(f"Larger than {MAX_JSON_BYTES // 1024} KB once encoded.", code="too_large")


def validate_json_object(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object (a mapping of names to values).", code="not_object")
    validate_json_document(value)


MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5_000
MAX_TAGS = 100


def validate_tag(key: object, value: object) -> None:
    """A tag (of a model or a version): a key of 1 to 250 printable characters, a string value of up
    to 5,000 characters. Raises a ValidationError keyed "key" or "value"."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY:
        raise ValidationError({"key": [f"A tag key is 1 to {MAX_TAG_KEY} characters."]})
    try:
        validate_printable_name(key)
        check_free_text(key=key)
    except ValidationError as error:
        raise ValidationError({"key": error.messages}) from None
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
        raise ValidationError({"value": [f"A tag value is a string of up to {MAX_TAG_VALUE} characters."]})
    check_free_text(value=value)


def validate_tags(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object of tag keys to string values.", code="not_tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="too_many_tags")
    for key, tag_value in value.items():
        validate_tag(key, tag_value)


ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")
VERSION_LIKE = re.compile(r"v[0-9]+")


def validate_alias(alias: object) -> None:
    """An alias names one version of a model: lowercase, a letter then letters, digits, "_" or "-" (64
    at most); not "latest" and not like "v3", which would read as a version."""
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise ValidationError(
            "An alias is lowercase: a letter, then up to 63 letters, digits, '_' or '-' (e.g. champion).",
            code="invalid_alias",
        )
    if alias == "latest" or VERSION_LIKE.fullmatch(alias):
        raise ValidationError(f"“{alias}” would read as a version; choose another alias.", code="reserved_alias")


def validate_string_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Must be a JSON list of strings.", code="not_string_list")
    validate_json_document(value)


# The parts of JSON text that can open a level, once strings (which may hold brackets) are removed.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_text_depth(text: str) -> int:
    """How deeply JSON ``text`` nests its arrays and objects, found without parsing it."""
    if text.count("[") + text.count("{") <= 1:
        return int("[" in text or "{" in text)
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


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


def normalize_name(name: str) -> str:
    """The form a name is stored in: trimmed and Unicode-normalized (NFKC), so names that only
    look different in their encoding ("ﬁt" and "fit", full-width letters) are one name."""
    return unicodedata.normalize("NFKC", (name or "").strip())


def name_key(name: str) -> str:
    """What makes two names one: equal after NFKC and case folding ("Churn", "CHURN", full-width "churn")."""
    return normalize_name(name).casefold()


def validate_printable_name(name: str) -> None:
    """Names are shown everywhere: no control or invisible formatting characters in them."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")})
    if bad:
        raise ValidationError(f"Contains control or invisible characters ({', '.join(bad[:5])}).", code="unprintable")
