"""Stored JSON documents read the same through the fast path as through SurrogateReplacingDecoder."""

import json
import math

import pytest

from registry.fields import SurrogateReplacingDecoder, read_document

DOCUMENTS = [
    "{}",
    '{"team": "payments", "tier": "gold"}',
    '{"max_depth": 6, "learning_rate": 0.05, "layers": [64, 32], "nested": {"a": null, "b": true}}',
    '{"big": 123456789012345678901234567890}',  # past 64 bits: an int, never a float
    '{"tiny": 1e-320, "negative_zero": -0.0, "exponent": 1.5e300}',
    '{"emoji": "\\ud83d\\ude00", "accent": "caf\\u00e9"}',  # a valid surrogate pair
    '{"lone": "\\ud800", "low": "x\\udc00y"}',  # lone surrogates: replaced by U+FFFD
    '{"key\\ud800": 1}',
    '"just a string"',
    "[1, 2, 3]",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_a_document_reads_as_the_surrogate_replacing_decoder_reads_it(text):
    expected = json.loads(text, cls=SurrogateReplacingDecoder)

    read = read_document(text)

    assert read == expected
    assert json.dumps(read) == json.dumps(expected)  # same types: 1 stays 1, not 1.0


def test_nan_and_infinity_read_as_json_reads_them():
    read = read_document('{"nan": NaN, "inf": Infinity, "overflow": 1e400}')

    assert math.isnan(read["nan"]) and read["inf"] == math.inf and read["overflow"] == math.inf


def test_a_malformed_document_is_a_json_error():
    with pytest.raises(json.JSONDecodeError):
        read_document('{"a": ')
