"""DELETE /api/v1/models/{id}/versions/{n}/: a version goes with its aliases (audited) and, when no
other version uses it, its file."""

import io

import pytest
from django.contrib.auth.models import Group

from accounts.roles import APPROVERS_GROUP
from accounts.tests.factories import UserFactory
from mlmodels import services
from mlmodels.models import AliasEvent, MLModel, ModelVersion, ProtectedAlias
from mlmodels.storage import artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def version_url(model, number: int) -> str:
    return f"/api/v1/models/{model.pk}/versions/{number}/"


def artifact_exists(key: str) -> bool:
    return artifact_storage().exists(key)


def upload(model, content: bytes):
    data = io.BytesIO(content)
    data.name = "model.bin"
    return services.model_attach_file(model=model, actor=model.owner, file=data)


@pytest.fixture
def three_files(user):
    """Versions 2, 3 and 4 each with their own file (version 1 has none)."""
    model = MLModelFactory(owner=user)
    for content in (b"two", b"three", b"four"):
        upload(model, content)
    return MLModel.objects.get(pk=model.pk)


def test_deleting_a_version_drops_its_aliases_audited_and_its_file(owner_api, user, three_files, captured_events):
    model = three_files
    services.alias_set(model=model, actor=user, alias="challenger", version_number=2)
    services.alias_set(model=model, actor=user, alias="canary", version_number=2)
    services.alias_set(model=model, actor=user, alias="stable", version_number=3)
    key = model.versions.get(version_number=2).file

    with captured_events("alias.deleted", "version.deleted") as events:
        response = owner_api.delete(version_url(model, 2))

    assert response.status_code == 204
    assert not ModelVersion.objects.filter(model=model, version_number=2).exists()
    assert MLModel.objects.get(pk=model.pk).aliases == {"stable": 3}
    dropped = AliasEvent.objects.filter(model=model, to_version=None).order_by("alias")
    assert [(e.alias, e.from_version, e.actor) for e in dropped] == [("canary", 2, user), ("challenger", 2, user)]
    assert [(e.type, e.data.get("alias") or e.data["aliases"]) for e in events] == [
        ("alias.deleted", "canary"),
        ("alias.deleted", "challenger"),
        ("version.deleted", ["canary", "challenger"]),
    ]
    assert not artifact_exists(key)
    assert owner_api.get(version_url(model, 2)).status_code == 404


def test_a_file_another_version_still_uses_stays(owner_api, user, three_files, django_capture_on_commit_callbacks):
    model = three_files
    old = model.versions.get(version_number=2)
    services.model_rollback(version=old, actor=user)  # version 5 shares version 2's file

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert owner_api.delete(version_url(model, 2)).status_code == 204

    assert callbacks  # the clean-up ran, and kept the file
    assert artifact_exists(old.file)


def test_the_current_version_cannot_be_deleted(owner_api, three_files):
    response = owner_api.delete(version_url(three_files, 4))

    assert response.status_code == 400
    assert "current version" in response.json()["version"][0]
    assert ModelVersion.objects.filter(model=three_files).count() == 4


def test_a_version_with_a_protected_alias_is_deleted_by_approvers_only(client_for, owner_api, user, three_files):
    model = three_files
    ProtectedAlias.objects.create(name="champion")
    approver = UserFactory(username="reviewer")
    approver.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    services.alias_set(model=model, actor=approver, alias="champion", version_number=3)
    superuser = UserFactory(username="root2", is_superuser=True)

    refused = owner_api.delete(version_url(model, 3))
    approved = client_for(superuser).delete(version_url(model, 3))

    assert refused.status_code == 403
    assert "@champion" in refused.json()["detail"]
    assert approved.status_code == 204
    assert MLModel.objects.get(pk=model.pk).aliases == {}


def test_others_and_anonymous_clients_cannot_delete_a_version(other_api, api_client, three_files):
    assert other_api.delete(version_url(three_files, 2)).status_code == 403
    assert api_client.delete(version_url(three_files, 2)).status_code == 401
    assert ModelVersion.objects.filter(model=three_files).count() == 4


def test_a_missing_version_is_a_404(owner_api, three_files):
    assert owner_api.delete(version_url(three_files, 99)).status_code == 404
