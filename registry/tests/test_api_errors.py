"""Errors under /api/ are JSON, in one shape: ``{"detail": "..."}`` or ``{"field": ["..."]}``.

404 (unknown routes and missing objects), 405, 413 (refused from Content-Length, before the body is
read), 429, 500, Django ValidationErrors raised by services (400, never 500), malformed JSON, bad
pagination and ordering parameters. Outside /api/ a 404 stays an HTML page.
"""

import io
import json

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory

from experiments.tests.factories import ExperimentFactory
from mlmodels import selectors, services
from mlmodels.tests.factories import MLModelFactory
from registry.api.errors import csrf_failure
from registry.api.throttles import AuthRateThrottle
from registry.middleware import MULTIPART_OVERHEAD_BYTES

pytestmark = pytest.mark.django_db


def json_body(response) -> dict:
    """The response's JSON object, after checking that it is JSON (not an HTML error page)."""
    assert response["Content-Type"].split(";")[0].strip() == "application/json", (
        response.status_code,
        response["Content-Type"],
        response.content[:300],
    )
    body = json.loads(response.content)
    assert isinstance(body, dict)
    return body


def assert_detail(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = json_body(response)
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


def assert_field_errors(response, *fields: str) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = json_body(response)
    assert set(body) == set(fields), body
    for field in fields:
        assert isinstance(body[field], list) and body[field] and all(isinstance(m, str) for m in body[field])
    return body


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


class NotToBeRead(io.RawIOBase):
    """A request body stream that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer):
        raise AssertionError("the request body was read before the size limit refused it")


# --- 404 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/api/v1/no-such-route/", "/api/v1/models/1/no-such-action/", "/api/no-such-route", "/api/", "/api/v2/models/"],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_route_is_a_json_404(settings, owner_api, url, debug):
    settings.DEBUG = debug

    assert_detail(owner_api.get(url), 404)


def test_unknown_api_route_is_a_json_404_for_anonymous_clients_too(api_client):
    assert_detail(api_client.post("/api/v1/no-such-route/", {}), 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("url", ["/api/v1/no-such-route/", "/api/nothing", "/api/v1/models/1/nope/"])
@pytest.mark.parametrize("signed_in", [False, True])
def test_unknown_api_paths_are_json_for_every_method_with_csrf_enforced(user, method, url, signed_in):
    # A browser-like client (CSRF enforced, as for real browsers): an unsafe method once answered
    # Django's HTML CSRF failure page, because the JSON catch-all sat behind the CSRF check.
    browser = Client(enforce_csrf_checks=True)
    if signed_in:
        browser.force_login(user)

    response = browser.generic(method, url, "{}", content_type="application/json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/models.json",
        "/api/v1/models/{pk}.json",
        "/api/v1/models/{pk}/versions.json",
        "/api/v1/experiments.json",
    ],
)
def test_format_suffix_paths_are_a_json_404_for_a_signed_in_user(owner_api, model, url):
    # They were routed to actions that take no format argument: a 500. ?format= picks a renderer.
    assert_detail(owner_api.get(url.format(pk=model.pk)), 404)
    assert owner_api.get(f"/api/v1/models/{model.pk}/?format=json").status_code == 200


def test_a_csrf_failure_under_api_is_json(settings):
    response = csrf_failure(RequestFactory().post("/api/v1/models/"), reason="CSRF cookie not set.")

    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": "CSRF check failed: CSRF cookie not set."}
    assert settings.CSRF_FAILURE_VIEW == "registry.api.errors.csrf_failure"


@pytest.mark.parametrize("url", ["/api/v1/models/999999/", "/api/v1/models/not-a-number/", "/api/v1/experiments/0/"])
def test_missing_object_is_a_json_404(owner_api, url):
    assert_detail(owner_api.get(url), 404)


def test_missing_page_is_a_json_404(owner_api, model):
    assert_detail(owner_api.get("/api/v1/models/", {"page": 999}), 404)


def test_outside_the_api_a_404_is_an_html_page(client, user):
    client.force_login(user)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(response.content)


# --- 405 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("delete", "/api/v1/auth/me"),
        ("put", "/api/v1/auth/me/"),
        ("get", "/api/v1/auth/logout"),
        ("put", "/api/v1/models/{pk}/lifecycle/"),
        ("post", "/api/v1/models/{pk}/"),
        ("delete", "/api/v1/models/{pk}/versions/"),
        ("get", "/api/v1/files/upload"),
    ],
)
def test_wrong_method_is_a_json_405_for_a_signed_in_user(owner_api, model, method, url):
    response = getattr(owner_api, method)(url.format(pk=model.pk))

    detail = assert_detail(response, 405)
    assert method.upper() in detail


def test_wrong_method_on_a_public_route_is_a_json_405(api_client):
    assert_detail(api_client.get("/api/v1/auth/login"), 405)


# --- 413 ----------------------------------------------------------------------------------------


def test_multipart_body_over_the_upload_limit_is_refused_before_it_is_read(settings, owner_api, model):
    settings.MAX_UPLOAD_BYTES = 10
    declared = settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES + 1

    response = owner_api.generic(
        "POST",
        "/api/v1/files/upload",
        content_type="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(declared),
        **{"wsgi.input": NotToBeRead()},
    )

    detail = assert_detail(response, 413)
    assert str(declared) in detail


def test_multipart_body_within_the_envelope_allowance_is_not_refused_by_size(settings, owner_api, model):
    settings.MAX_UPLOAD_BYTES = 10

    response = owner_api.post(
        "/api/v1/files/upload",
        {"model_id": model.pk, "file": SimpleUploadedFile("w.bin", b"0123456789")},
        format="multipart",
    )

    assert response.status_code == 201, response.content


def test_uploaded_file_over_the_limit_is_a_json_413(settings, owner_api, model):
    settings.MAX_UPLOAD_BYTES = 10

    response = owner_api.post(
        "/api/v1/files/upload",
        {"model_id": model.pk, "file": SimpleUploadedFile("w.bin", b"x" * 11)},
        format="multipart",
    )

    assert_detail(response, 413)


def test_json_body_over_the_memory_limit_is_refused_before_it_is_read(settings, owner_api):
    declared = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1

    response = owner_api.generic(
        "POST",
        "/api/v1/models/",
        content_type="application/json",
        CONTENT_LENGTH=str(declared),
        **{"wsgi.input": NotToBeRead()},
    )

    assert_detail(response, 413)


def test_json_body_over_a_lowered_memory_limit_is_a_json_413(settings, owner_api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"name": "big", "description": "x" * 200})

    response = owner_api.generic("POST", "/api/v1/models/", body, content_type="application/json")

    assert_detail(response, 413)


def test_a_multipart_allowance_does_not_apply_to_json(settings, owner_api):
    # A large MAX_UPLOAD_BYTES must not let a JSON body past DATA_UPLOAD_MAX_MEMORY_SIZE.
    settings.MAX_UPLOAD_BYTES = 10 * 1024**3
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = owner_api.generic(
        "PATCH",
        "/api/v1/models/1/",
        content_type="application/json",
        CONTENT_LENGTH="5000",
        **{"wsgi.input": NotToBeRead()},
    )

    assert_detail(response, 413)


# --- 429 ----------------------------------------------------------------------------------------


def test_throttled_login_is_a_json_429_with_retry_after(monkeypatch, api_client):
    monkeypatch.setattr(AuthRateThrottle, "rate", "2/minute", raising=False)
    credentials = {"username": "nobody", "password": "wrong password"}

    statuses = [api_client.post("/api/v1/auth/login", credentials).status_code for _ in range(2)]
    response = api_client.post("/api/v1/auth/login", credentials)

    assert statuses == [401, 401]
    assert_detail(response, 429)
    assert int(response["Retry-After"]) > 0


# --- 500 ----------------------------------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("secret internals: database password is hunter2")


@pytest.mark.parametrize(
    ("target", "method", "url"),
    [
        ("selectors.model_list", "get", "/api/v1/models/"),
        ("selectors.version_list", "get", "/api/v1/models/{pk}/versions/"),
        ("services.model_create", "post", "/api/v1/models/"),
    ],
)
def test_unexpected_exception_is_a_json_500_without_internals(monkeypatch, owner_api, model, target, method, url):
    module, name = target.split(".")
    monkeypatch.setattr({"selectors": selectors, "services": services}[module], name, _boom)
    owner_api.raise_request_exception = False

    response = getattr(owner_api, method)(url.format(pk=model.pk), {"name": "x"} if method == "post" else None)

    assert response.status_code == 500
    assert json_body(response) == {"detail": "Internal server error."}
    assert b"hunter2" not in response.content


# --- 400: Django ValidationError from services, malformed input ----------------------------------


def test_duplicate_model_name_is_a_400_naming_the_field(owner_api, model):
    response = owner_api.post("/api/v1/models/", {"name": model.name}, format="json")

    assert_field_errors(response, "name")


def test_renaming_a_model_onto_another_of_the_owners_is_a_400_naming_the_field(owner_api, user, model):
    other = MLModelFactory(owner=user, name="fraud")

    response = owner_api.patch(f"/api/v1/models/{other.pk}/", {"name": model.name}, format="json")

    assert_field_errors(response, "name")


def test_duplicate_experiment_name_is_a_400_naming_the_field(owner_api, user):
    ExperimentFactory(owner=user, name="sweep")

    response = owner_api.post("/api/v1/experiments/", {"name": "sweep"}, format="json")

    assert_field_errors(response, "name")


def test_illegal_lifecycle_move_is_a_400_naming_the_field(owner_api, model):
    response = owner_api.patch(f"/api/v1/models/{model.pk}/lifecycle/", {"lifecycle": "production"}, format="json")

    body = assert_field_errors(response, "lifecycle")
    assert "staging" in body["lifecycle"][0]


def test_message_only_validation_error_from_a_service_is_a_400_detail(monkeypatch, owner_api, model):
    def refuse(**kwargs):
        raise DjangoValidationError("Refused by a rule of the service.")

    monkeypatch.setattr(services, "version_record", refuse)

    response = owner_api.post(f"/api/v1/models/{model.pk}/versions/", {"note": "n"}, format="json")

    assert assert_detail(response, 400) == "Refused by a rule of the service."


def test_permission_denied_from_a_service_is_a_json_403(monkeypatch, owner_api, model):
    def refuse(**kwargs):
        raise DjangoPermissionDenied("Not yours.")

    monkeypatch.setattr(services, "model_update", refuse)

    response = owner_api.patch(f"/api/v1/models/{model.pk}/", {"description": "d"}, format="json")

    assert_detail(response, 403)


@pytest.mark.parametrize("url", ["/api/v1/models/", "/api/v1/experiments/", "/api/v1/auth/login"])
@pytest.mark.parametrize("body", ['{"name": ', "{'name': 'single quotes'}", "[1, 2", "\x00"])
def test_malformed_json_body_is_a_json_400(owner_api, url, body):
    response = owner_api.generic("POST", url, body, content_type="application/json")

    detail = assert_detail(response, 400)
    assert "JSON" in detail


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", "/api/v1/models/", {"name": "nul-value", "hyperparameters": {"a": "x\x00"}}, "hyperparameters"),
        ("post", "/api/v1/models/", {"name": "nul-key", "hyperparameters": {"\x00": 1}}, "hyperparameters"),
        (
            "post",
            "/api/v1/models/",
            {"name": "nul-nested", "hyperparameters": {"a": [{"b": "\x00"}]}},
            "hyperparameters",
        ),
        ("patch", "/api/v1/models/{pk}/", {"hyperparameters": {"a": "\x00"}}, "hyperparameters"),
        ("post", "/api/v1/models/{pk}/versions/", {"hyperparameters": {"a": "\x00"}}, "hyperparameters"),
        ("post", "/api/v1/experiments/", {"name": "nul", "parameters": {"a": "\x00"}}, "parameters"),
    ],
)
def test_nul_character_in_a_json_field_is_a_400_naming_the_field(owner_api, model, method, url, body, field):
    # PostgreSQL's jsonb cannot store U+0000 (DataError: unsupported Unicode escape sequence), so such a
    # value must be refused as bad input on every database, like DRF refuses it in plain strings.
    owner_api.raise_request_exception = False

    response = getattr(owner_api, method)(url.format(pk=model.pk), body, format="json")

    assert_field_errors(response, field)


def test_suspicious_request_under_the_api_is_a_json_400(owner_api):
    response = owner_api.get("/api/v1/models/", headers={"host": "evil.example"})

    assert_detail(response, 400)


# --- pagination and ordering ----------------------------------------------------------------------

PAGINATED = ["/api/v1/models/", "/api/v1/experiments/", "/api/v1/models/{pk}/versions/", "/api/v1/models/{pk}/history/"]


@pytest.mark.parametrize("url", PAGINATED)
@pytest.mark.parametrize("page_size", ["0", "-1", "101", "abc", "1.5", ""])
def test_bad_page_size_is_a_400_naming_page_size(owner_api, model, url, page_size):
    response = owner_api.get(url.format(pk=model.pk), {"page_size": page_size})

    body = assert_field_errors(response, "page_size")
    assert "100" in body["page_size"][0]


@pytest.mark.parametrize("url", PAGINATED)
@pytest.mark.parametrize("page_size", ["1", "100"])
def test_page_size_within_bounds_is_honoured(owner_api, model, url, page_size):
    ExperimentFactory(owner=model.owner)
    services.lifecycle_move(model=model, actor=model.owner, to_stage="staging")  # one history event

    response = owner_api.get(url.format(pk=model.pk), {"page_size": page_size})

    assert response.status_code == 200, response.content
    assert len(json_body(response)["results"]) == 1


@pytest.mark.parametrize(
    ("url", "ordering"),
    [
        ("/api/v1/models/", "no_such_field"),
        ("/api/v1/models/", "-owner__password"),
        ("/api/v1/models/", "name,bogus"),
        ("/api/v1/experiments/", "parameters"),
    ],
)
def test_unknown_ordering_field_is_a_400_naming_ordering(owner_api, model, url, ordering):
    response = owner_api.get(url, {"ordering": ordering})

    assert_field_errors(response, "ordering")


@pytest.mark.parametrize(("url", "ordering"), [("/api/v1/models/", "-accuracy"), ("/api/v1/experiments/", "name")])
def test_known_ordering_field_is_accepted(owner_api, model, url, ordering):
    response = owner_api.get(url, {"ordering": ordering})

    assert response.status_code == 200, response.content
