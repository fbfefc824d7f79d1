"""Artifact scans (mlmodels/scans.py): crafted pickles are unsafe without ever being loaded; clean
models and safetensors files are clean, with their metadata."""

import io
import json
import pickle
import struct
import sys
import types
import zipfile

import pytest
from django.core.management import call_command

from mlmodels import services
from mlmodels.models import MLModel, ModelVersion, ProtectedAlias
from mlmodels.scans import CLEAN, UNKNOWN, UNSAFE, scan_bytes
from mlmodels.tests.factories import MLModelFactory
from registry.celery import app


class Payload:
    """Pickles to a call of ``target(*args)``: what a malicious model file does when loaded."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def dangerous_pickles():
    import builtins
    import os
    import subprocess

    return {
        "os.system": Payload(os.system, "echo owned"),
        "builtins.exec": Payload(builtins.exec, "print('owned')"),
        "subprocess.Popen": Payload(subprocess.Popen, ["echo", "owned"]),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.exec", "subprocess.Popen"])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_that_would_run_code_is_unsafe_and_names_the_call(name, protocol):
    content = pickle.dumps({"weights": [1, 2], "hook": dangerous_pickles()[name]}, protocol=protocol)

    report = scan_bytes(content, file_name="model.pkl")

    assert report.status == UNSAFE
    # Pickle names the call as the running Python found it (os.system is posix.system; protocols
    # before 3 name builtins __builtin__): the function is the same.
    function = name.rpartition(".")[2]
    assert [finding.rpartition(".")[2] for finding in report.findings] == [function], report
    assert report.format == "pickle"


def test_a_pytorch_style_zip_with_a_malicious_pickle_inside_is_unsafe():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("archive/data.pkl", pickle.dumps(dangerous_pickles()["os.system"], protocol=2))
        zipped.writestr("archive/version", "3\n")

    report = scan_bytes(archive.getvalue(), file_name="model.pt")

    assert (report.status, report.format) == (UNSAFE, "pytorch")
    assert report.findings and "system" in report.findings[0]


def test_a_plain_data_pickle_is_clean():
    report = scan_bytes(pickle.dumps({"coef": [0.1, 0.2], "classes": ["a", "b"]}), file_name="model.joblib")

    assert (report.status, report.format, report.findings) == (CLEAN, "joblib", [])


def test_a_pickled_class_of_a_library_is_listed_but_leaves_the_file_clean(monkeypatch):
    # A scikit-learn model pickles a reference to its own class; the scan reads it, never imports it.
    library = types.ModuleType("modelling_library")

    class LogisticRegression:
        def __init__(self):
            self.coef = [0.1, 0.2]

    LogisticRegression.__module__, LogisticRegression.__qualname__ = library.__name__, "LogisticRegression"
    library.LogisticRegression = LogisticRegression
    monkeypatch.setitem(sys.modules, library.__name__, library)
    content = pickle.dumps(LogisticRegression(), protocol=4)

    report = scan_bytes(content, file_name="model.pkl")

    assert report.status == CLEAN
    assert "modelling_library.LogisticRegression" in report.metadata["imports"]


def safetensors_file(tensors: dict, metadata: dict | None = None) -> bytes:
    header, offset = {}, 0
    for name, (dtype, shape, size) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata is not None:
        header["__metadata__"] = metadata
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + b"\x00" * offset


def test_a_safetensors_file_is_clean_with_its_tensors_dtypes_and_parameter_count():
    content = safetensors_file(
        {"embed.weight": ("F32", [10, 4], 160), "head.bias": ("F16", [4], 8)}, metadata={"format": "pt"}
    )

    report = scan_bytes(content, file_name="model.safetensors")

    assert (report.status, report.format) == (CLEAN, "safetensors")
    assert report.metadata == {"tensors": 2, "dtypes": ["F16", "F32"], "parameters": 44, "metadata": {"format": "pt"}}


@pytest.mark.parametrize("content", [b"", b"just some text weights", b"\x00\x01\x02" * 100])
def test_a_file_of_no_known_format_is_unknown(content):
    assert scan_bytes(content, file_name="weights.bin").status == UNKNOWN


# --- the scan of every stored file, and what an unsafe one may not do ---------------------------------


@pytest.fixture
def scans_in_process():
    """Tasks run in this process once the change commits (as on the embedded defaults), whatever
    broker the run has."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` the change inside is delivered as if its transaction committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def upload(api, model, content: bytes, name: str):
    data = io.BytesIO(content)
    data.name = name
    response = api.post("/api/v1/files/upload", {"model_id": model.pk, "file": data}, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["version"]


@pytest.mark.django_db
def test_an_uploaded_pickle_that_runs_code_is_recorded_unsafe_and_shown_in_the_api(
    owner_api, user, scans_in_process, captured_events
):
    model = MLModelFactory(owner=user)
    with captured_events("artifact.scanned") as events:
        number = upload(owner_api, model, pickle.dumps(dangerous_pickles()["os.system"]), "model.pkl")

    answer = owner_api.get(f"/api/v1/models/{model.pk}/versions/{number}/").json()
    assert (answer["scan_status"], answer["artifact_format"]) == ("unsafe", "pickle")
    assert answer["scan_findings"] == ["posix.system"] and answer["scanned_at"]
    assert [(e.type, e.data["version"], e.data["status"]) for e in events] == [("artifact.scanned", number, "unsafe")]


@pytest.mark.django_db
def test_a_model_whose_current_artifact_is_unsafe_cannot_go_to_production_nor_get_a_protected_alias(
    owner_api, client_for, user, superuser, scans_in_process, committed
):
    ProtectedAlias.objects.create(name="champion")
    model = MLModelFactory(owner=user)
    with committed():
        number = upload(owner_api, model, pickle.dumps(dangerous_pickles()["builtins.exec"], protocol=4), "m.pkl")
    services.lifecycle_move(model=model, actor=user, to_stage="staging")

    refused = owner_api.patch(f"/api/v1/models/{model.pk}/lifecycle/", {"lifecycle": "production"})
    no_alias = client_for(superuser).put(f"/api/v1/models/{model.pk}/aliases/champion/", {"version": number})
    ordinary = owner_api.put(f"/api/v1/models/{model.pk}/aliases/challenger/", {"version": number})

    assert refused.status_code == 400
    assert "artifact is unsafe: loading it would call builtins.exec" in refused.json()["lifecycle"][0]
    assert no_alias.status_code == 400
    assert "cannot receive a protected alias" in no_alias.json()["version"][0]
    assert ordinary.status_code == 200  # an ordinary alias says nothing about safety
    assert MLModel.objects.get(pk=model.pk).lifecycle == "staging"


@pytest.mark.django_db
def test_a_safetensors_upload_is_clean_with_its_metadata_and_a_version_without_a_file_has_no_scan(
    owner_api, user, scans_in_process, committed
):
    model = MLModelFactory(owner=user)
    with committed():
        number = upload(owner_api, model, safetensors_file({"w": ("F32", [3, 3], 36)}), "model.safetensors")

    answer = owner_api.get(f"/api/v1/models/{model.pk}/versions/{number}/").json()
    first = owner_api.get(f"/api/v1/models/{model.pk}/versions/1/").json()
    assert (answer["scan_status"], answer["artifact_format"]) == ("clean", "safetensors")
    assert answer["artifact_metadata"]["parameters"] == 9
    assert (first["scan_status"], first["scanned_at"]) == ("", None)


@pytest.mark.django_db
def test_rescan_scans_the_versions_still_pending(owner_api, user, scans_in_process):
    model = MLModelFactory(owner=user)
    number = upload(owner_api, model, pickle.dumps(dangerous_pickles()["subprocess.Popen"]), "m.pkl")  # not committed
    assert ModelVersion.objects.get(model=model, version_number=number).scan_status == "pending"
    out = io.StringIO()

    call_command("rescan", stdout=out)

    assert ModelVersion.objects.get(model=model, version_number=number).scan_status == "unsafe"
    assert "Queued 1 scan(s)." in out.getvalue()


@pytest.mark.django_db
def test_a_rollback_to_a_scanned_version_carries_its_scan_and_an_unsafe_one_never_reaches_production(
    owner_api, user, scans_in_process, committed
):
    model = MLModelFactory(owner=user)
    with committed():
        unsafe = upload(owner_api, model, pickle.dumps(dangerous_pickles()["os.system"]), "m.pkl")
    with committed():
        safe = upload(owner_api, model, safetensors_file({"w": ("F32", [2], 8)}), "m.safetensors")
    services.lifecycle_move(model=model, actor=user, to_stage="staging")
    services.lifecycle_move(model=model, actor=user, to_stage="production")

    refused = owner_api.post(f"/api/v1/models/{model.pk}/versions/{unsafe}/rollback/", {})
    services.lifecycle_move(model=model, actor=user, to_stage="staging")
    with committed():
        copy = services.model_rollback(version=ModelVersion.objects.get(model=model, version_number=unsafe), actor=user)

    assert refused.status_code == 400
    assert "It cannot serve production" in refused.json()["version"][0]
    assert copy.version_number == safe + 1  # the refusal wrote no version
    # Not "pending" while its rescan runs: the stage gate sees the copy as the file it is.
    assert (copy.scan_status, copy.scan_findings) == ("unsafe", ["posix.system"])
    refused_again = owner_api.patch(f"/api/v1/models/{model.pk}/lifecycle/", {"lifecycle": "production"})
    assert refused_again.status_code == 400


CONDA_YAML = b"channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip<=24.0\n- pip:\n  - mlflow==3.17.2\n"


def test_a_text_file_that_opens_like_a_pickle_opcode_is_text_not_a_broken_pickle():
    # MLflow's conda.yaml opens with "c", protocol 0's GLOBAL: read as a pickle it would be an error,
    # and every MLflow model folder's scan with it.
    report = scan_bytes(CONDA_YAML, file_name="conda.yaml")

    assert (report.status, report.format) == ("unknown", "text")


@pytest.mark.parametrize("name", ["conda.yaml", "notes.txt", "model"])
def test_a_text_pickle_is_still_judged_as_a_pickle_whatever_its_name(name):
    whole = b"cos\nsystem\n(S'echo owned'\ntR."
    cut_short = b"cos\nsystem\n(S'echo owned'\n"

    assert scan_bytes(whole, file_name=name).findings == ["os.system"]
    assert scan_bytes(cut_short, file_name=name).status == "unsafe"
    assert scan_bytes(b"cbuiltins\nlen\n(S'ab'\ntR.", file_name=name).status == "clean"


def test_a_zip_of_numpy_arrays_scans_with_numpy_a_runtime_requirement():
    # skops (MLflow 3's default for scikit-learn) stores arrays as .npy inside a zip, and picklescan
    # imports numpy to read them: a deployment without numpy scanned every such model "error".
    from pathlib import Path

    import numpy as np

    array = io.BytesIO()
    np.save(array, np.arange(4.0))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("schema.json", "{}")
        zipped.writestr("coef_.npy", array.getvalue())
    requirements = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()

    assert scan_bytes(archive.getvalue(), file_name="model.skops").status == CLEAN
    assert any(line.startswith("numpy==") for line in requirements.splitlines())
