"""Versions whose artifact is a folder of files (an MLflow model): the services.

These run against the run's storage: local files in every pass, the S3 server in the services pass
(where the tests marked s3 check the server-side copy too).
"""

import hashlib
import io
import pickle
import posixpath
import unicodedata
import zipfile
from datetime import timedelta

import hypothesis
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from hypothesis import strategies as st

from mlmodels import folders, services
from mlmodels.models import ModelVersion, Stage, VersionFile
from mlmodels.storage import StorageUnavailable, artifact_keys, artifact_open_stream, artifacts
from mlmodels.tests.factories import MLModelFactory
from mlmodels.tests.test_scans import dangerous_pickles

pytestmark = pytest.mark.django_db

MLMODEL = b"""artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.7
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.5.0
mlflow_version: 2.14.1
"""
REQUIREMENTS = b"mlflow==2.14.1\nscikit-learn==1.5.0\n"
SAFE_PICKLE = pickle.dumps({"coef": [0.1, 0.2]}, protocol=4)


def stream(content: bytes) -> io.BytesIO:
    return io.BytesIO(content)


def mlflow_folder(model_pkl: bytes = SAFE_PICKLE) -> dict[str, bytes]:
    return {"MLmodel": MLMODEL, "model.pkl": model_pkl, "requirements.txt": REQUIREMENTS, "metadata/notes.txt": b"x"}


def create(model, files: dict[str, bytes], **kwargs) -> ModelVersion:
    return services.version_create_with_files(
        model=model, actor=model.owner, files=[(path, stream(content)) for path, content in files.items()], **kwargs
    )


def stored(key: str) -> bytes:
    source = artifact_open_stream(key)
    try:
        return source.read()
    finally:
        source.close()


def stored_keys(model) -> set[str]:
    return set(artifact_keys(f"users/{model.owner_id}/models/{model.pk}"))


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- creating a folder version -----------------------------------------------------------------------


def test_a_folder_version_stores_each_file_under_the_version_prefix_with_its_size_and_sha256(model):
    files = mlflow_folder()

    version = create(model, files, note="mlflow export")

    model.refresh_from_db()
    assert (version.version_number, version.file, version.file_count, version.note) == (2, None, 4, "mlflow export")
    assert (model.file, model.file_count, model.has_artifact, model.latest_version) == (None, 4, True, 2)
    prefix = f"users/{model.owner_id}/models/{model.pk}/v2/"
    rows = {row.path: row for row in services.version_files(version)}
    assert sorted(rows) == sorted(files)
    for path, content in files.items():
        assert rows[path].key == prefix + path
        assert (rows[path].size, rows[path].sha256) == (len(content), hashlib.sha256(content).hexdigest())
        assert stored(rows[path].key) == content
    assert version.scan_status == "pending"


def test_a_folder_version_takes_metrics_and_a_single_file_upload_afterwards_replaces_it(model, user):
    version = create(model, {"MLmodel": MLMODEL}, data={"accuracy": 0.97})
    assert version.accuracy == 0.97

    data = stream(b"weights")
    data.name = "model.bin"
    single = services.model_attach_file(model=model, actor=user, file=data)

    model.refresh_from_db()
    assert (single.file_count, model.file_count, model.file is not None) == (0, 0, True)
    assert not single.files.exists()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../outside", "'..' segment"),
        ("model/../../etc/passwd", "'..' segment"),
        ("/etc/passwd", "absolute"),
        ("model\\weights.bin", "backslash"),
        ("model\x00.pkl", "control character"),
        ("model\n.pkl", "control character"),
        ("model\u202elkp.exe", "invisible formatting character"),
        ("a//b", "empty segment"),
        ("folder/", "empty segment"),
        ("./MLmodel", "'.' segment"),
        ("", "empty"),
        ("x" * 1025, "longer than 1024"),
        ("%2e%2e/passwd", "contains %"),
        ("c:model.pkl", "contains :"),
        ("n" * 256, "longer than 255 bytes"),
    ],
)
def test_a_hostile_path_is_refused_naming_the_problem_before_anything_is_stored(model, path, problem):
    with pytest.raises(ValidationError) as refused:
        create(model, {"MLmodel": MLMODEL, path: b"evil"})

    assert problem in " ".join(refused.value.messages)
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert stored_keys(model) == set()


PATH_PIECES = st.sampled_from(
    ["MLmodel", "model.pkl", "..", ".", "", "/", "\\", "%2e", "\x00", "\n", "~", "//", "c:", "artifacts", "ü"]
)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.one_of(st.text(max_size=60), st.lists(PATH_PIECES, max_size=10).map("/".join)))
def test_no_path_the_folder_validator_accepts_leaves_the_version_folder(raw):
    try:
        folders.validate_file_path(raw)
    except ValidationError:
        return
    assert posixpath.normpath(raw) == raw  # nothing to collapse: no '..', '.', '//' or trailing '/'
    assert posixpath.normpath(posixpath.join("/srv/media/users/1/models/2/v3", raw)).startswith(
        "/srv/media/users/1/models/2/v3/"
    )
    assert not folders.FORBIDDEN_CHARACTERS.intersection(raw)
    assert not any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in raw)


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (["model.pkl", "model.pkl"], "given twice"),
        (["model", "model/weights.bin"], "both a file and the folder"),
        ([], "at least one file"),
    ],
)
def test_a_set_of_paths_that_cannot_be_one_folder_is_refused(model, paths, problem):
    with pytest.raises(ValidationError, match=problem):
        services.version_create_with_files(model=model, actor=model.owner, files=[(p, stream(b"x")) for p in paths])

    assert stored_keys(model) == set()


def test_too_many_files_are_refused(model, monkeypatch):
    monkeypatch.setattr(folders, "MAX_FILES_PER_VERSION", 3)

    with pytest.raises(ValidationError, match="at most 3 files"):
        create(model, {f"shard-{n}": b"x" for n in range(4)})


class BrokenStream(io.BytesIO):
    """A client that disconnects after sending part of a file: the read fails."""

    def read(self, size=-1):
        raise OSError("connection reset by peer")


def test_a_failure_midway_removes_the_files_already_stored_and_writes_no_row(model):
    files = [("MLmodel", stream(MLMODEL)), ("model.pkl", stream(SAFE_PICKLE)), ("weights.bin", BrokenStream())]

    with pytest.raises(StorageUnavailable):
        services.version_create_with_files(model=model, actor=model.owner, files=files)

    model.refresh_from_db()
    assert (model.latest_version, model.file_count) == (1, 0)
    assert not VersionFile.objects.exists()
    assert stored_keys(model) == set()


def test_only_the_owner_or_a_superuser_creates_a_folder_version(model, other_user):
    with pytest.raises(PermissionDenied):
        services.version_create_with_files(model=model, actor=other_user, files=[("MLmodel", stream(MLMODEL))])

    assert stored_keys(model) == set()


def test_the_version_created_event_summarises_the_folder_and_asks_for_its_scan(model, captured_events):
    with captured_events("version.created") as events:
        create(model, mlflow_folder())

    (event,) = events
    assert event.data["file"] is None
    assert event.data["files"] == {
        "count": 4,
        "size": sum(len(content) for content in mlflow_folder().values()),
        "paths": ["MLmodel", "metadata/notes.txt", "model.pkl", "requirements.txt"],
    }


# --- reading a folder back -------------------------------------------------------------------------------


def test_one_file_opens_as_a_stream_and_an_unknown_or_hostile_path_is_refused(model):
    version = create(model, mlflow_folder())

    file, source = services.version_file_open(version, "metadata/notes.txt")
    try:
        assert (file.path, source.read()) == ("metadata/notes.txt", b"x")
    finally:
        source.close()
    with pytest.raises(LookupError):
        services.version_file_open(version, "missing.txt")
    with pytest.raises(ValidationError):
        services.version_file_open(version, "../v1/anything")


def test_the_zip_is_produced_in_chunks_and_unzips_to_the_same_bytes(model, monkeypatch):
    big = bytes(range(256)) * 4096  # 1 MiB
    files = {**mlflow_folder(), "weights/big.bin": big}
    version = create(model, files)
    monkeypatch.setattr(folders, "ZIP_CHUNK", 64 * 1024)

    chunks = list(services.version_zip_stream(version))

    # Built as it is read: no chunk holds much more than one read of a file.
    assert len(chunks) > 16 and max(len(chunk) for chunk in chunks) < 128 * 1024
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(files)
        for path, content in files.items():
            assert hashlib.sha256(archive.read(path)).hexdigest() == hashlib.sha256(content).hexdigest()


# --- versions that keep a folder -----------------------------------------------------------------------


def test_a_metrics_only_version_after_a_folder_keeps_the_same_files(model, user):
    folder = create(model, mlflow_folder())

    later = services.version_record(model=model, actor=user, data={"accuracy": 0.5})

    assert later.file_count == 4
    assert sorted(later.files.values_list("path", "key")) == sorted(folder.files.values_list("path", "key"))


def test_a_rollback_to_a_folder_version_reuses_its_files_and_its_scan(model, user):
    folder = create(model, mlflow_folder())
    services.version_scan(model_id=model.pk, version_number=folder.version_number)
    data = stream(b"weights")
    data.name = "model.bin"
    services.model_attach_file(model=model, actor=user, file=data)
    folder.refresh_from_db()

    rolled = services.model_rollback(version=folder, actor=user)

    model.refresh_from_db()
    assert (rolled.file, rolled.file_count, model.file, model.file_count) == (None, 4, None, 4)
    assert sorted(rolled.files.values_list("path", "key", "sha256")) == sorted(
        folder.files.values_list("path", "key", "sha256")
    )
    assert (rolled.scan_status, rolled.artifact_format) == (folder.scan_status, "mlflow")


# --- deletes -----------------------------------------------------------------------------------------


def test_deleting_a_version_keeps_the_files_a_rollback_still_uses_and_removes_them_with_the_last(
    model, user, committed
):
    folder = create(model, mlflow_folder())
    keys = set(folder.files.values_list("key", flat=True))
    data = stream(b"weights")
    data.name = "model.bin"
    services.model_attach_file(model=model, actor=user, file=data)  # v3
    rolled = services.model_rollback(version=folder, actor=user)  # v4: the same keys
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})  # v5: the same keys again

    with committed():
        services.version_delete(model=model, actor=user, version_number=folder.version_number)
    assert keys <= stored_keys(model)

    with committed():
        services.version_delete(model=model, actor=user, version_number=rolled.version_number)
    assert keys <= stored_keys(model)

    data = stream(b"newer weights")
    data.name = "model.bin"
    services.model_attach_file(model=model, actor=user, file=data)  # v6, so that v5 may go
    with committed():
        services.version_delete(model=model, actor=user, version_number=5)
    assert not keys & stored_keys(model)


def test_deleting_a_model_removes_its_folder_files_once_the_delete_commits(model, user, committed):
    create(model, mlflow_folder())
    prefix = f"users/{model.owner_id}/models/{model.pk}"  # the delete takes the instance's id away
    assert len(set(artifact_keys(prefix))) == 4

    with committed() as callbacks:
        services.model_delete(model=model, actor=user)
        # Nothing is removed before the commit: a rolled-back delete loses no file.
        assert len(set(artifact_keys(prefix))) == 4
    assert callbacks
    assert set(artifact_keys(prefix)) == set()


# --- scans -----------------------------------------------------------------------------------------------


def test_each_file_is_scanned_and_the_folder_gets_the_mlmodel_format_and_the_worst_status(model):
    version = create(model, mlflow_folder())

    report = services.version_scan(model_id=model.pk, version_number=version.version_number)

    version.refresh_from_db()
    # requirements.txt and notes.txt are no format the scanner reads, but text companions run nothing:
    # the folder is as clean as its model files.
    assert (report.status, version.scan_status, version.artifact_format) == ("clean", "clean", "mlflow")
    assert sorted(version.artifact_metadata["flavors"]) == ["python_function", "sklearn"]
    files = version.artifact_metadata["files"]
    assert {path: files[path]["status"] for path in files} == {
        "MLmodel": "clean",
        "model.pkl": "clean",
        "requirements.txt": "unknown",
        "metadata/notes.txt": "unknown",
    }
    assert files["MLmodel"]["format"] == "mlflow" and files["model.pkl"]["format"] == "pickle"


def test_an_unsafe_pickle_inside_a_folder_makes_the_version_unsafe_and_production_refused(model, user):
    evil = pickle.dumps(dangerous_pickles()["os.system"], protocol=2)
    version = create(model, mlflow_folder(model_pkl=evil))
    services.version_scan(model_id=model.pk, version_number=version.version_number)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    version.refresh_from_db()
    assert version.scan_status == "unsafe"
    assert version.scan_findings == ["model.pkl: posix.system"]
    with pytest.raises(ValidationError, match=r"model\.pkl: posix\.system"):
        services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)


def test_a_clean_folder_version_may_go_to_production(model, user):
    version = create(model, {"MLmodel": MLMODEL, "model.pkl": SAFE_PICKLE})
    services.version_scan(model_id=model.pk, version_number=version.version_number)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)

    model.refresh_from_db()
    assert model.lifecycle == Stage.PRODUCTION


# --- from files already stored -------------------------------------------------------------------------


def test_a_version_from_a_stored_folder_copies_every_file_under_its_own_prefix(model, user):
    first = create(model, mlflow_folder())
    source = f"users/{model.owner_id}/models/{model.pk}/v{first.version_number}/"

    with_copy = services.version_create_from_stored(model=model, actor=user, source_prefix=source, note="copied")

    prefix = f"users/{model.owner_id}/models/{model.pk}/v{with_copy.version_number}/"
    copies = {file.path: file for file in with_copy.files.all()}
    originals = {file.path: file for file in first.files.all()}
    assert sorted(copies) == sorted(originals)
    for path, copy in copies.items():
        assert copy.key == prefix + path
        assert (copy.size, copy.sha256) == (originals[path].size, originals[path].sha256)
        assert stored(copy.key) == mlflow_folder()[path]


@pytest.mark.parametrize(
    "source",
    [
        "../users/1",
        "/users/1/models/1/v1",
        "media/users/1",
        "s3://bucket/users/1",
        "users/1/../2",
        "users/abc/models",
        "users",
        "",
        "users/{owner}/models/{model}/uploads/abc",
        "users/{owner}/models/{model}",
        "users/{owner}/models",
        "users/{owner}/models/{model}/v1x",
        "users/{owner}/models/{model}/v1%2f..",
    ],
)
def test_a_source_outside_the_registry_namespace_or_in_flight_is_refused(model, user, source):
    source = source.format(owner=model.owner_id, model=model.pk)
    with pytest.raises(ValidationError):
        services.version_create_from_stored(model=model, actor=user, source_prefix=source)

    assert ModelVersion.objects.filter(model=model).count() == 1


def test_a_source_that_names_nothing_is_a_lookup_error(model, user):
    missing_version = f"users/{model.owner_id}/models/{model.pk}/v9"
    with pytest.raises(LookupError):
        services.version_create_from_stored(model=model, actor=user, source_prefix=missing_version)
    with pytest.raises(LookupError):
        services.version_create_from_stored(model=model, actor=user, source_prefix="users/999999/experiments/1")
    with pytest.raises(ValidationError, match="No stored files"):
        services.version_create_from_stored(model=model, actor=user, source_prefix=f"users/{user.pk}/runs/1")


# --- the storage audit ---------------------------------------------------------------------------------------


def test_the_storage_audit_knows_folder_files_and_reports_a_missing_one(model):
    version = create(model, mlflow_folder())
    # The model's own prefix: on S3 the test bucket holds the objects of other tests too.
    prefix = f"users/{model.owner_id}/models/{model.pk}"
    audit = services.storage_audit(min_age=timedelta(0), prefix=prefix)
    assert audit.orphans == [] and audit.missing == []

    gone = version.files.get(path="model.pkl").key
    artifacts().delete(gone)

    audit = services.storage_audit(min_age=timedelta(0), prefix=prefix)
    assert audit.orphans == [] and audit.missing == [gone]


# --- both storage backends: the copy inside the storage -------------------------------------------------------


def test_the_store_copies_inside_the_storage_with_size_and_sha256(model):
    store = artifacts()
    original = store.store(key=f"users/{model.owner_id}/models/{model.pk}/v1/a.bin", source=stream(b"abc" * 1000))

    copy = store.copy(source_key=original.key, target_key=f"users/{model.owner_id}/models/{model.pk}/v2/dir/a.bin")

    assert (copy.size, copy.sha256) == (original.size, original.sha256)
    assert stored(copy.key) == b"abc" * 1000
    assert stored(original.key) == b"abc" * 1000


@pytest.mark.s3
def test_s3_copy_is_one_copy_object_call_for_a_small_object(model, monkeypatch):
    store = artifacts()
    original = store.store(key=f"users/{model.owner_id}/models/{model.pk}/v1/b.bin", source=stream(b"s3" * 100))
    client = store.storage.bucket.meta.client
    calls = []
    real = client.copy_object
    monkeypatch.setattr(client, "copy_object", lambda **kwargs: calls.append(kwargs) or real(**kwargs))

    copy = store.copy(source_key=original.key, target_key=original.key.replace("/v1/", "/v2/"), size=original.size)

    assert len(calls) == 1 and copy.sha256 == original.sha256
    for key in (original.key, copy.key):
        store.delete(key)


def test_a_binary_file_the_scanner_cannot_read_leaves_the_folder_unknown(model):
    version = create(model, {"MLmodel": MLMODEL, "model.pkl": SAFE_PICKLE, "weights.bin": b"\x00\x01opaque"})

    report = services.version_scan(model_id=model.pk, version_number=version.version_number)

    assert report.status == "unknown"
