"""Folder versions through API v1 and the model page: upload, listing, per-file and zip downloads."""

import hashlib
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlmodels import services
from mlmodels.models import ModelVersion, VersionFile
from mlmodels.storage import artifact_keys
from mlmodels.tests.factories import MLModelFactory
from mlmodels.tests.test_download_headers import assert_inert, streamed
from mlmodels.tests.test_faults import storage_down  # noqa: F401 (a fixture)
from mlmodels.tests.test_version_files import MLMODEL, SAFE_PICKLE, create, mlflow_folder

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


def upload(api, model, files: dict[str, bytes], *, with_paths: bool = True, **fields):
    parts = [SimpleUploadedFile(path.rsplit("/", 1)[-1], content) for path, content in files.items()]
    data = {"file": parts, **fields}
    if with_paths:
        data["path"] = list(files)
    return api.post(f"{MODELS}{model.pk}/versions/files/", data, format="multipart")


def stored_keys(model) -> set[str]:
    return set(artifact_keys(f"users/{model.owner_id}/models/{model.pk}"))


# --- upload -----------------------------------------------------------------------------------------


def test_a_folder_uploads_as_a_new_version_listing_its_files(owner_api, model):
    files = mlflow_folder()

    response = upload(owner_api, model, files, note="mlflow export", accuracy="0.9")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version_number"], body["file_path"], body["file_count"], body["note"]) == (
        2,
        None,
        4,
        "mlflow export",
    )
    assert body["accuracy"] == 0.9
    assert body["files"] == [
        {"path": path, "size": len(files[path]), "sha256": hashlib.sha256(files[path]).hexdigest()}
        for path in sorted(files)
    ]
    assert owner_api.get(f"{MODELS}{model.pk}/versions/2/").json()["files"] == body["files"]
    listed = owner_api.get(f"{MODELS}{model.pk}/versions/").json()["results"]
    assert [version["files"] for version in listed] == [body["files"], []]


def test_without_paths_each_file_is_named_by_its_part(owner_api, model):
    response = upload(owner_api, model, {"MLmodel": MLMODEL, "model.pkl": SAFE_PICKLE}, with_paths=False)

    assert response.status_code == 201, response.json()
    assert [file["path"] for file in response.json()["files"]] == ["MLmodel", "model.pkl"]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../etc/passwd", "'..' segment"),
        ("/etc/passwd", "absolute"),
        ("model\\x.pkl", "backslash"),
        ("a//b", "empty segment"),
        ("model\x01.pkl", "control character"),
        ("x%2f..", "contains %"),
    ],
)
def test_a_hostile_path_is_a_400_naming_the_problem_and_stores_nothing(owner_api, model, path, problem):
    response = upload(owner_api, model, {"MLmodel": MLMODEL, path: b"evil"})

    assert response.status_code == 400
    assert problem in str(response.json())
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert stored_keys(model) == set()


def test_as_many_paths_as_files_are_needed(owner_api, model):
    response = owner_api.post(
        f"{MODELS}{model.pk}/versions/files/",
        {"file": [SimpleUploadedFile("a", b"1"), SimpleUploadedFile("b", b"2")], "path": ["a"]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"path": ["One path per file: 2 files, 1 paths."]}


def test_an_upload_without_files_is_a_400(owner_api, model):
    response = owner_api.post(f"{MODELS}{model.pk}/versions/files/", {"note": "empty"}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()


def test_another_user_cannot_upload_a_folder_and_nothing_is_stored(other_api, model):
    response = upload(other_api, model, {"MLmodel": MLMODEL})

    assert response.status_code == 403
    assert stored_keys(model) == set()


def test_anonymous_requests_to_the_folder_routes_are_refused(api_client, model):
    version = create(model, mlflow_folder())
    base = f"{MODELS}{model.pk}/versions/"
    number = version.version_number

    assert api_client.post(f"{base}files/", {}, format="multipart").status_code == 401
    assert api_client.get(f"{base}{number}/files/").status_code == 401
    assert api_client.get(f"{base}{number}/files/MLmodel/").status_code == 401
    assert api_client.get(f"{base}{number}/download/").status_code == 401


def test_an_upload_while_storage_is_down_is_a_503_that_changes_nothing(owner_api, model, storage_down):  # noqa: F811
    response = upload(owner_api, model, mlflow_folder())

    assert response.status_code == 503
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert not VersionFile.objects.exists()


# --- downloads ------------------------------------------------------------------------------------------


def test_the_files_of_a_version_are_listed(owner_api, model):
    version = create(model, mlflow_folder())

    response = owner_api.get(f"{MODELS}{model.pk}/versions/{version.version_number}/files/")

    assert response.status_code == 200
    assert [file["path"] for file in response.json()["results"]] == sorted(mlflow_folder())


@pytest.mark.parametrize("path", ["MLmodel", "metadata/notes.txt"])
def test_one_file_downloads_as_inert_bytes(other_api, model, path):
    version = create(model, mlflow_folder())

    response = other_api.get(f"{MODELS}{model.pk}/versions/{version.version_number}/files/{path}/")

    assert response.status_code == 200
    assert_inert(response)
    assert response["Content-Length"] == str(len(mlflow_folder()[path]))
    assert streamed(response) == mlflow_folder()[path]


@pytest.mark.parametrize(
    ("path", "status"),
    [("missing.txt", 404), ("../v1/MLmodel", 400), ("..%2F..%2Fetc%2Fpasswd", 400), ("a%00b", 400)],
)
def test_an_unknown_or_hostile_file_path_is_a_404_or_a_400(owner_api, model, path, status):
    version = create(model, mlflow_folder())

    response = owner_api.get(f"{MODELS}{model.pk}/versions/{version.version_number}/files/{path}/")

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")


def test_the_model_download_of_a_folder_version_streams_a_zip_of_the_same_bytes(owner_api, model):
    files = {**mlflow_folder(), "weights/big.bin": bytes(range(256)) * 8192}
    create(model, files)

    response = owner_api.get(f"{MODELS}{model.pk}/download/")

    assert response.status_code == 200
    assert response.streaming
    assert_inert(response)
    assert 'filename="churn-v2.zip"' in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(streamed(response))) as archive:
        assert {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()} == {
            path: hashlib.sha256(content).hexdigest() for path, content in files.items()
        }


def test_a_version_downloads_its_own_artifact_a_zip_or_its_file(owner_api, model, user):
    folder = create(model, mlflow_folder())
    data = io.BytesIO(b"weights")
    data.name = "model.bin"
    single = services.model_attach_file(model=model, actor=user, file=data)

    zipped = owner_api.get(f"{MODELS}{model.pk}/versions/{folder.version_number}/download/")
    plain = owner_api.get(f"{MODELS}{model.pk}/versions/{single.version_number}/download/")
    empty = owner_api.get(f"{MODELS}{model.pk}/versions/1/download/")

    with zipfile.ZipFile(io.BytesIO(streamed(zipped))) as archive:
        assert sorted(archive.namelist()) == sorted(mlflow_folder())
    assert streamed(plain) == b"weights"
    assert_inert(plain)
    assert empty.status_code == 404


def test_a_top_level_folder_file_is_also_served_by_its_storage_path(owner_api, model):
    version = create(model, mlflow_folder())
    key = version.files.get(path="MLmodel").key

    response = owner_api.get(f"/api/v1/files/download/{key}")

    assert response.status_code == 200
    assert streamed(response) == MLMODEL


# --- query budgets ----------------------------------------------------------------------------------------


def test_the_versions_list_takes_one_query_more_for_its_folders_however_many(
    owner_api, model, django_assert_max_num_queries
):
    create(model, mlflow_folder())
    owner_api.get(f"{MODELS}{model.pk}/versions/")  # the first request may count the rows

    # The user (JWT), the model, the page of versions, the files of its folder versions.
    with django_assert_max_num_queries(5) as few:
        assert owner_api.get(f"{MODELS}{model.pk}/versions/").status_code == 200
    for _ in range(5):
        create(model, mlflow_folder())
    owner_api.get(f"{MODELS}{model.pk}/versions/")
    with django_assert_max_num_queries(5) as many:
        assert owner_api.get(f"{MODELS}{model.pk}/versions/").status_code == 200
    assert len(few) == len(many)


# --- the model page ------------------------------------------------------------------------------------------


def test_the_model_page_lists_a_folder_versions_files_with_sizes_links_and_scan_lines(owner_client, model, user):
    version = create(model, mlflow_folder())
    services.version_scan(model_id=model.pk, version_number=version.version_number)

    content = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert "folder, 4 files" in content
    assert f"/api/v1/models/{model.pk}/versions/2/download/" in content
    for path in mlflow_folder():
        assert f"/api/v1/models/{model.pk}/versions/2/files/{path}/" in content
        assert f"<code>{path}</code>" in content
    assert "MLflow model · flavors python_function, sklearn" in content
    assert "4 files: 2 unknown, 2 clean" in content


def test_the_model_page_takes_one_query_more_for_folder_versions_however_many(
    owner_client, model, django_assert_max_num_queries
):
    create(model, mlflow_folder())
    # user; model (+owner, experiment); versions (+authors); their files; events; alias changes;
    # approval requests
    with django_assert_max_num_queries(7) as few:
        assert owner_client.get(f"/models/{model.pk}/").status_code == 200
    for _ in range(5):
        create(model, mlflow_folder())
    with django_assert_max_num_queries(7) as many:
        assert owner_client.get(f"/models/{model.pk}/").status_code == 200
    assert len(few) == len(many)


def test_the_model_head_and_artifact_facts_offer_the_folder_as_a_zip(owner_client, model):
    create(model, mlflow_folder())

    content = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert f'href="/api/v1/models/{model.pk}/download/" download>Download artifact' in content
    assert "Download as zip" in content and "No artifact file yet" not in content


def test_the_admin_shows_a_folder_versions_files(superuser_client, model):
    version = create(model, mlflow_folder())

    response = superuser_client.get(f"/admin/mlmodels/modelversion/{version.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    for path in mlflow_folder():
        assert path in content
