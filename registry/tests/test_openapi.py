"""The OpenAPI schema: valid, served, documented with a JWT scheme, and true to what the API answers.

The last test runs schemathesis over every operation of the schema against the app itself (in-process,
through WSGI), signed in as a user who owns real rows, and fails on any 5xx or any response that the
schema does not describe.
"""

import io
import json
import re
import zlib

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.drainage import GENERATOR_STATS
from hypothesis import HealthCheck
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.storage import signed_download_token
from mlmodels.tests.factories import MLModelFactory
from registry.api.throttles import AuthRateThrottle

SCHEMA_URL = "/api/schema/?format=json"

# Operations that answer without a sign-in: how an anonymous client gets an account and its tokens,
# and the signed download, whose token is the credential.
PUBLIC_OPERATIONS = {
    ("POST", "/api/v1/auth/register/"),
    ("POST", "/api/v1/auth/login/"),
    ("POST", "/api/v1/auth/refresh/"),
    ("GET", "/api/v1/files/signed/{token}"),  # the signed token is the credential
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
NO_BODY_STATUSES = {"204", "205"}  # statuses that carry no content by definition (RFC 9110)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


# --- the schema itself --------------------------------------------------------------------------


def test_spectacular_validate_fail_on_warn_is_clean(tmp_path, capsys):
    GENERATOR_STATS.reset()  # count only this generation's warnings and errors
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    output = capsys.readouterr()
    assert "Warning" not in output.err and "Error" not in output.err, output.err
    assert target.read_text().startswith("openapi: 3.")


@pytest.fixture
def served_schema(client) -> dict:
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


def test_schema_is_served_to_anonymous_clients(client):
    for url in ("/api/schema/", SCHEMA_URL):
        response = client.get(url)

        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/vnd.oai.openapi")
        assert b"openapi: 3." in response.content or b'"openapi": "3.' in response.content


def test_schema_declares_a_bearer_jwt_scheme_required_by_every_private_operation(served_schema):
    schemes = served_schema["components"]["securitySchemes"]
    jwt = [
        name for name, scheme in schemes.items() if scheme.get("type") == "http" and scheme.get("scheme") == "bearer"
    ]
    assert len(jwt) == 1 and schemes[jwt[0]].get("bearerFormat") == "JWT", schemes

    public = set()
    for method, path, operation in operations(served_schema):
        requirements = operation.get("security", served_schema.get("security", []))
        if not requirements or {} in requirements:
            public.add((method, path))
        else:
            assert any(jwt[0] in requirement for requirement in requirements), (method, path, requirements)
    assert public == PUBLIC_OPERATIONS


def test_every_operation_documents_a_successful_response(served_schema):
    missing = []
    for method, path, operation in operations(served_schema):
        successes = {code: spec for code, spec in operation["responses"].items() if code.startswith("2")}
        described = [
            code
            for code, spec in successes.items()
            if code in NO_BODY_STATUSES or any("schema" in media for media in spec.get("content", {}).values())
        ]
        if not described:
            missing.append(f"{method} {path}: 2xx responses {sorted(successes)} have no schema")
    assert not missing, "\n".join(missing)
    assert len(list(operations(served_schema))) >= 28


def test_every_api_route_is_in_the_schema(served_schema):
    documented = {path.rstrip("/") for path in served_schema["paths"]}
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/models",
        "/api/v1/models/{id}",
        "/api/v1/models/{id}/lifecycle",
        "/api/v1/models/{id}/versions",
        "/api/v1/models/{id}/versions/{number}",
        "/api/v1/models/{id}/versions/{number}/rollback",
        "/api/v1/models/{id}/history",
        "/api/v1/models/{id}/download",
        "/api/v1/experiments",
        "/api/v1/experiments/{id}",
        "/api/v1/files/upload",
        "/api/v1/files/download/{path}",
        "/api/v1/files/presigned-url/{path}",
    ):
        assert path in documented


# --- request content types ------------------------------------------------------------------------

UPLOAD_OPERATION = ("POST", "/api/v1/files/upload/")
# A folder version's files, each a part of its own.
FOLDER_UPLOAD_OPERATION = ("POST", "/api/v1/models/{id}/versions/files/")


def test_json_operations_take_only_json_and_the_upload_only_multipart(served_schema):
    # Advertising form and multipart bodies too made generated clients unusable (openapi-python-client
    # emitted code that failed at import); the API parses JSON, and multipart for the uploads alone.
    bodies = {
        (method, path): sorted(operation["requestBody"]["content"])
        for method, path, operation in operations(served_schema)
        if "requestBody" in operation
    }

    assert bodies.pop(UPLOAD_OPERATION, None) == ["multipart/form-data"]
    assert bodies.pop(FOLDER_UPLOAD_OPERATION, None) == ["multipart/form-data"]
    assert len(bodies) >= 13, sorted(bodies)
    not_json = {operation: types for operation, types in bodies.items() if types != ["application/json"]}
    assert not not_json, not_json


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("name=form-posted", "application/x-www-form-urlencoded"),
        (
            '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nform-posted\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
    ids=["urlencoded", "multipart"],
)
def test_a_json_operation_answers_a_form_body_with_a_json_415(client_for, user, body, content_type):
    response = client_for(user).generic("POST", "/api/v1/models/", body, content_type=content_type)

    assert response.status_code == 415, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": f'Unsupported media type "{content_type}" in request.'}


def test_the_upload_answers_a_json_body_with_a_json_415(client_for, user):
    response = client_for(user).post("/api/v1/files/upload", {"model_id": 1}, format="json")

    assert response.status_code == 415, response.content
    assert response.json() == {"detail": 'Unsupported media type "application/json" in request.'}


def test_browsable_api_still_offers_a_json_form_to_a_session_user(client, user):
    client.force_login(user)

    response = client.get("/api/v1/models/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    media_types = re.search(r'<select[^>]*name="_content_type"[^>]*>(.*?)</select>', html, re.DOTALL)
    assert media_types, "no raw data form on the browsable API page"
    assert re.findall(r'<option value="([^"]+)"', media_types.group(1)) == ["application/json"]


# --- Swagger UI ---------------------------------------------------------------------------------


def test_swagger_ui_renders_from_local_assets_only(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert re.findall(r"https?://", html) == [], "the docs page must work offline: no absolute URLs"
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    for asset in assets:
        # Static files, and the page's own init script (served split from the page for the CSP).
        assert asset.startswith("/static/") or asset == "/api/docs/?script=", asset
        assert client.get(asset).status_code == 200, asset
    assert '"/api/schema/"' in client.get("/api/docs/?script=").content.decode()


def test_swagger_ui_does_not_call_the_online_validator(client):
    # Swagger UI's default validatorUrl is https://validator.swagger.io/validator: on any host but
    # localhost it loads a badge from there, sending it the schema's URL. Offline docs must turn it off.
    script = client.get("/api/docs/?script=").content.decode()

    match = re.search(r"const swaggerSettings = (\{.*?\});", script, re.DOTALL)
    assert match, "swaggerSettings not found in Swagger UI's init script"
    swagger_settings = json.loads(match.group(1))
    assert "validatorUrl" in swagger_settings and swagger_settings["validatorUrl"] in (None, "none"), swagger_settings


# --- schemathesis ---------------------------------------------------------------------------------

# Loaded once, anonymously, from the app itself through WSGI (no server, no network).
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application())


@pytest.fixture
def _keep_test_connection_open():
    """Django's WSGI handler closes "old" database connections at the start and end of each request,
    which inside a test's transaction closes the test's own connection. Django's test client disconnects
    these handlers; schemathesis calls the WSGI app directly, so this fixture does the same."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, user, other_user, _keep_test_connection_open, monkeypatch):
    """A signed-in user who owns an experiment and a model with an artifact (versions 1 and 2) and a
    lifecycle event, next to another user's model: detail, version, history and file routes have real
    targets. Returns the Authorization header and the real values for path parameters."""
    # Register and login are throttled per client address at 20/minute; all these cases come from one
    # address, and the throttle has tests of its own (test_api_errors.py).
    monkeypatch.setattr(AuthRateThrottle, "rate", "100000/minute", raising=False)
    experiment = ExperimentFactory(owner=user)
    model = MLModelFactory(owner=user, experiment=experiment)
    data = io.BytesIO(b"weights " * 64)
    data.name = "weights.bin"
    version = services.model_attach_file(model=model, actor=user, file=data)
    services.lifecycle_move(model=model, actor=user, to_stage="staging", comment="offline eval passed")
    MLModelFactory(owner=other_user)
    return {
        "headers": {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"},
        "path_parameters": {
            "id": model.pk,
            "number": version.version_number,
            "path": version.file,
            "token": signed_download_token(version.file, user_id=user.pk),
        },
        "experiment_id": experiment.pk,
    }


def _aims_at_real_rows(case) -> bool:
    """About half the cases with path parameters get the real rows' values instead of generated ones,
    so success responses are checked too. Decided from the generated case itself, so Hypothesis replays
    the same request when it reruns a failing example."""
    generated = json.dumps(case.path_parameters or {}, sort_keys=True, default=repr)
    return bool(case.path_parameters) and zlib.crc32(generated.encode()) % 2 == 0


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, seeded):
    if _aims_at_real_rows(case):
        real = dict(seeded["path_parameters"])
        if case.path.startswith("/api/v1/experiments/"):
            real["id"] = seeded["experiment_id"]
        case.path_parameters = {name: real.get(name, value) for name, value in case.path_parameters.items()}

    case.call_and_validate(headers=seeded["headers"], checks=[not_a_server_error, response_schema_conformance])
