"""Model fields the apps share."""

import json
import re

import orjson
from django.db import models

from registry.forms import JSONDocumentFormField
from registry.validators import LONE_SURROGATE

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class SurrogateReplacingDecoder(json.JSONDecoder):
    """Reads stored JSON with any lone surrogate replaced by U+FFFD.

    The validators refuse lone surrogates on every write path, but a document stored before they did
    (or by a script) must not make every list, page and export that shows it fail to encode as UTF-8.
    Only escaped surrogates can decode to one, so a document without ``\\ud…`` escapes costs one scan.
    """

    def decode(self, s, *args, **kwargs):
        value = super().decode(s, *args, **kwargs)
        if _ESCAPED_SURROGATE.search(s):
            text = json.dumps(value, ensure_ascii=False)
            if LONE_SURROGATE.search(text):
                value = super().decode(LONE_SURROGATE.sub("\ufffd", text))
        return value


# A decoder holds no state between documents: one instance reads them all, as json.loads does with
# its own default decoder (JSONField.from_db_value builds a decoder per value).
_DOCUMENT_DECODER = SurrogateReplacingDecoder()
# orjson reads a document several times faster than json, and refuses what it would read otherwise:
# lone surrogates, NaN and infinities go to the decoder above. Integers past 64 bits it would read
# as floats, so a document with a run of 19 digits goes there too.
_LONG_NUMBER = re.compile(r"\d{19}")


def read_document(text: str):
    """A stored JSON document, read as ``SurrogateReplacingDecoder`` reads it."""
    if not _LONG_NUMBER.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return _DOCUMENT_DECODER.decode(text)


class JSONDocumentField(models.JSONField):
    """A JSON column read with SurrogateReplacingDecoder, edited in forms (pages, admin) through a
    form field that refuses hostile nesting before parsing it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("decoder", SurrogateReplacingDecoder)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if self.decoder is not SurrogateReplacingDecoder or not isinstance(value, str):
            return super().from_db_value(value, expression, connection)
        if value == "{}":  # most models' tags and aliases
            return {}
        try:
            return read_document(value)
        except json.JSONDecodeError:
            return value

    def formfield(self, **kwargs):
        # Not the replacing decoder: what a person submits is refused, not silently repaired.
        return super().formfield(**{"form_class": JSONDocumentFormField, "decoder": None, **kwargs})
