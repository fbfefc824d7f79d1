"""A Python client generated from the served schema imports cleanly and runs a whole journey.

openapi-python-client (pinned in requirements-dev.txt) generates a client from /api/schema/ the way a
user would (its default ruff post-hooks included), with --fail-on-warning, so an operation it cannot
generate is a failure too. Every module of the generated package is imported, then the client drives
the live server: register, log in by username, register a model, record a version, upload an artifact
(multipart, through the client's File type), promote it to staging then production, and list models.
"""

import importlib
import io
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "registry_generated_client"
SCHEMA_URL = "/api/schema/?format=json"
GENERATE_TIMEOUT_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 30
PASSWORD = "a long generated-client passphrase"


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    """The name of the client package generated from the live server's schema, importable from tmp_path."""
    response = httpx.get(live_server.url + SCHEMA_URL, timeout=REQUEST_TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text[:300]
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(response.json()))
    config_path = tmp_path / "client-config.json"
    config_path.write_text(json.dumps({"package_name_override": PACKAGE}))

    # The post-hooks run `ruff`, found on PATH: the one installed next to this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(schema_path),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config_path),
            "--fail-on-warning",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=GENERATE_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"openapi-python-client failed:\n{result.stdout}\n{result.stderr}"

    monkeypatch.syspath_prepend(str(tmp_path))
    yield PACKAGE
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def import_every_module(package_name: str):
    """The package, after importing each of its modules; a module that fails to import fails the test."""
    package = importlib.import_module(package_name)
    failures = []
    for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        try:
            importlib.import_module(module.name)
        except Exception as error:  # report every module that fails, not only the first
            failures.append(f"{module.name}: {type(error).__name__}: {error}")
    assert not failures, "the generated client does not import:\n" + "\n".join(failures)
    return package


def parsed(response, status: int):
    """The parsed body of a generated client's detailed response, after checking its status."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.parsed is not None
    return response.parsed


def test_generated_client_imports_and_runs_the_whole_journey(live_server, generated_client):
    client_package = import_every_module(generated_client)

    def module(name):
        return importlib.import_module(f"{PACKAGE}.{name}")

    auth_register_create = module("api.auth.auth_register_create")
    auth_login_create = module("api.auth.auth_login_create")
    models_create = module("api.models.models_create")
    models_versions_create = module("api.models.models_versions_create")
    models_lifecycle_partial_update = module("api.models.models_lifecycle_partial_update")
    models_list = module("api.models.models_list")
    files_upload_create = module("api.files.files_upload_create")
    models = module("models")
    types = module("types")
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)

    with client_package.Client(base_url=live_server.url, timeout=timeout) as anonymous:
        user = parsed(
            auth_register_create.sync_detailed(
                client=anonymous,
                body=models.RegisterRequest(username="ada", email="ada@example.com", password=PASSWORD),
            ),
            201,
        )
        assert isinstance(user, models.User) and user.username == "ada"

        tokens = parsed(
            auth_login_create.sync_detailed(
                client=anonymous, body=models.LoginRequest(username="ada", password=PASSWORD)
            ),
            200,
        )
        assert isinstance(tokens, models.TokenPair) and tokens.access

    with client_package.AuthenticatedClient(base_url=live_server.url, token=tokens.access, timeout=timeout) as api:
        model = parsed(
            models_create.sync_detailed(
                client=api,
                body=models.MLModelWriteRequest(
                    name="churn-xgb", framework=models.FrameworkEnum.XGBOOST, accuracy=0.91
                ),
            ),
            201,
        )
        assert isinstance(model, models.MLModel) and model.owner_id == user.id

        version = parsed(
            models_versions_create.sync_detailed(
                id=model.id, client=api, body=models.VersionCreateRequest(accuracy=0.93, note="nightly retrain")
            ),
            201,
        )
        assert isinstance(version, models.ModelVersion) and version.version_number == 2

        artifact = b"generated-client weights " * 40
        upload = parsed(
            files_upload_create.sync_detailed(
                client=api,
                body=models.UploadRequest(
                    file=types.File(
                        payload=io.BytesIO(artifact), file_name="weights.bin", mime_type="application/octet-stream"
                    ),
                    model_id=model.id,
                    note="first artifact",
                ),
            ),
            201,
        )
        assert isinstance(upload, models.UploadResult)
        assert (upload.version, upload.size) == (3, len(artifact))

        for stage in (models.StageEnum.STAGING, models.StageEnum.PRODUCTION):
            moved = parsed(
                models_lifecycle_partial_update.sync_detailed(
                    id=model.id,
                    client=api,
                    body=models.PatchedLifecycleMoveRequest(lifecycle=stage, comment=f"to {stage.value}"),
                ),
                200,
            )
            assert moved.lifecycle == stage

        page = parsed(models_list.sync_detailed(client=api), 200)
        listed = {row.id: row for row in page.results}
        assert model.id in listed, listed
        assert listed[model.id].lifecycle == models.StageEnum.PRODUCTION
        assert listed[model.id].latest_version == 3
        assert listed[model.id].file_size == len(artifact)
