import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from mlmodels import services
from mlmodels.storage import artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def damaged_registry(user):
    """One healthy file, one stored object no row points to, one row whose object is gone."""
    storage = artifact_storage()
    healthy = MLModelFactory(owner=user, name="healthy")
    data = io.BytesIO(b"fine")
    data.name = "fine.bin"
    healthy_key = services.model_attach_file(model=healthy, actor=user, file=data).file

    orphan_key = storage.save(f"users/{user.pk}/models/999999/v1/leftover.bin", ContentFile(b"nobody's"))

    broken = MLModelFactory(owner=user, name="broken")
    data = io.BytesIO(b"lost")
    data.name = "lost.bin"
    missing_key = services.model_attach_file(model=broken, actor=user, file=data).file
    storage.delete(missing_key)
    return {"healthy": healthy_key, "orphan": orphan_key, "missing": missing_key, "user_id": user.pk}


def run_audit(*args) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("storage_audit", *args, stdout=out)
    except SystemExit as exit_:
        return out.getvalue(), exit_.code
    return out.getvalue(), 0


def test_audit_lists_orphans_and_missing_objects_and_fails(damaged_registry):
    output, code = run_audit("--min-age", "0")

    assert f"orphan   {damaged_registry['orphan']}" in output
    assert f"missing  {damaged_registry['missing']}" in output
    assert damaged_registry["healthy"] not in output
    assert code == 1
    assert artifact_storage().exists(damaged_registry["orphan"])


def test_audit_fix_removes_orphans_only(damaged_registry):
    output, code = run_audit("--min-age", "0", "--fix")

    storage = artifact_storage()
    assert f"orphan   {damaged_registry['orphan']}  (removed)" in output
    assert not storage.exists(damaged_registry["orphan"])
    assert storage.exists(damaged_registry["healthy"])
    assert code == 1  # the missing object is still reported


def test_recent_objects_are_not_called_orphans(damaged_registry):
    output, _ = run_audit()  # default: only objects older than an hour

    assert damaged_registry["orphan"] not in output
    assert f"missing  {damaged_registry['missing']}" in output


def test_a_clean_registry_passes_the_audit(user, settings):
    if settings.USE_S3:
        pytest.skip("the shared test bucket holds other tests' objects")
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"ok")
    data.name = "ok.bin"
    services.model_attach_file(model=model, actor=user, file=data)

    output, code = run_audit("--min-age", "0")

    assert code == 0
    assert "0 orphaned object(s), 0 row(s) pointing at a missing object." in output


def test_negative_min_age_is_refused():
    with pytest.raises(CommandError, match="--min-age must be 0 or more"):
        call_command("storage_audit", "--min-age", "-5")


def test_audit_of_one_owner_prefix_sees_only_that_owner(damaged_registry, other_user):
    stranger = MLModelFactory(owner=other_user, name="stranger")
    data = io.BytesIO(b"theirs")
    data.name = "theirs.bin"
    services.model_attach_file(model=stranger, actor=other_user, file=data)
    artifact_storage().delete(stranger.versions.get(version_number=stranger.latest_version).file)

    mine = services.storage_audit(min_age=timedelta(0), prefix=f"users/{damaged_registry['user_id']}")
    theirs = services.storage_audit(min_age=timedelta(0), prefix=f"users/{other_user.pk}")

    assert (mine.orphans, mine.missing) == ([damaged_registry["orphan"]], [damaged_registry["missing"]])
    assert theirs.orphans == [] and len(theirs.missing) == 1
    assert theirs.missing[0].startswith(f"users/{other_user.pk}/")


@pytest.mark.django_db
def test_a_staged_upload_leaves_no_empty_folder_behind(user, settings):
    if settings.USE_S3:
        pytest.skip("S3 has no folders")
    model = MLModelFactory(owner=user)
    models_folder = Path(settings.MEDIA_ROOT) / "users" / str(user.pk) / "models" / str(model.pk)
    for content in (b"first", b"second"):
        upload = io.BytesIO(content)
        upload.name = "model.bin"
        services.model_attach_file(model=model, actor=user, file=upload)

    assert sorted(path.name for path in models_folder.iterdir()) == ["v2", "v3"]


@pytest.mark.django_db
def test_a_failed_staged_upload_leaves_no_empty_folder_behind(user, settings, monkeypatch):
    if settings.USE_S3:
        pytest.skip("S3 has no folders")
    model = MLModelFactory(owner=user)
    models_folder = Path(settings.MEDIA_ROOT) / "users" / str(user.pk) / "models" / str(model.pk)
    upload = io.BytesIO(b"x")
    upload.name = "model.bin"
    monkeypatch.setattr(services, "_save_with_version", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db")))

    with pytest.raises(RuntimeError):
        services.model_attach_file(model=model, actor=user, file=upload)

    assert not models_folder.exists() or not any(models_folder.rglob("*"))
