"""The orjson renderer writes the bytes DRF's JSONRenderer writes, and takes DRF's path for what
orjson cannot write."""

import datetime
import decimal
import uuid
from types import SimpleNamespace

import orjson
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from mlmodels.tests.factories import MLModelFactory
from registry.api import renderers
from registry.api.renderers import FastJSONRenderer

ZONE = datetime.timezone(datetime.timedelta(hours=2))


@pytest.mark.parametrize(
    "data",
    [
        {"name": "churn", "accuracy": 0.91, "hyperparameters": {"depth": 3, "nested": [1, 2.5, None, True]}},
        ReturnList([ReturnDict({"id": 1}, serializer=None)], serializer=None),
        {"detail": ErrorDetail("Not found.", code="not_found"), "lazy": gettext_lazy("Not found.")},
        {"when": datetime.datetime(2026, 11, 27, 23, 1, 2, 345678, tzinfo=datetime.UTC)},
        {"when": datetime.datetime(2026, 11, 27, 23, 1, 2, tzinfo=ZONE), "day": datetime.date(2026, 11, 27)},
        {"decimal": decimal.Decimal("0.10"), "id": uuid.UUID(int=7), "span": datetime.timedelta(seconds=90)},
        {1: "integer keys", "tuple": (1, 2)},
        {"text": 'ünïcødé, emoji 🚀, quotes " and \\ and </script>'},
        {"separators": "line\u2028paragraph\u2029end"},
        {"huge": 2**70, "negative": -(2**70)},
        [],
    ],
    ids=lambda data: ",".join(map(str, data)) if isinstance(data, dict) else type(data).__name__,
)
def test_fast_renderer_writes_the_bytes_drf_writes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_fast_renderer_escapes_line_separators_as_drf_does():
    assert FastJSONRenderer().render({"s": "a\u2028b"}) == b'{"s":"a\\u2028b"}'


def test_fast_renderer_indents_when_the_client_asks():
    rendered = FastJSONRenderer().render({"a": [1]}, accepted_media_type="application/json; indent=2")
    assert rendered == JSONRenderer().render({"a": [1]}, accepted_media_type="application/json; indent=2")
    assert b"\n  " in rendered


def test_fast_renderer_renders_nothing_for_no_data():
    assert FastJSONRenderer().render(None) == b""


def test_fast_renderer_refuses_what_drf_refuses():
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"object": object()})


@pytest.mark.django_db
def test_the_api_writes_a_page_of_models_with_orjson_in_drfs_bytes(api_client, user, monkeypatch):
    MLModelFactory(owner=user, name="churn", hyperparameters={"depth": 3})
    encoded = []

    def dumps(data, **options):
        encoded.append(data)
        return orjson.dumps(data, **options)

    monkeypatch.setattr(renderers, "orjson", SimpleNamespace(dumps=dumps, JSONEncodeError=orjson.JSONEncodeError))
    api_client.force_authenticate(user)

    response = api_client.get("/api/v1/models/")

    assert response["Content-Type"] == "application/json"
    assert len(encoded) == 1, "the page was not written by orjson (the fast path)"
    assert response.content == JSONRenderer().render(response.data)
    assert response.json()["results"][0]["name"] == "churn"
