import hashlib
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from experiments.models import Experiment
from mlmodels.models import LifecycleEvent, MLModel, ModelVersion, Stage
from mlmodels.storage import artifact_storage

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    return re.search(r"username admin\s+password (\S+)", output).group(1)


def counts() -> tuple[int, ...]:
    User = get_user_model()
    return tuple(
        manager.count()
        for manager in (User.objects, Experiment.objects, MLModel.objects, ModelVersion.objects, LifecycleEvent.objects)
    )


def test_seed_demo_creates_a_varied_registry():
    seed()

    assert MLModel.objects.count() == 50
    assert set(MLModel.objects.values_list("lifecycle", flat=True)) == set(Stage.values)
    assert MLModel.objects.values("framework").distinct().count() >= 8
    assert MLModel.objects.values("task_type").distinct().count() == 5
    assert Experiment.objects.count() == 5
    assert all(model.latest_version >= 2 for model in MLModel.objects.all())
    assert not MLModel.objects.filter(lifecycle=Stage.PRODUCTION, file__isnull=True).exists()


def test_seed_demo_stores_real_artifact_files_with_matching_checksums():
    seed()

    model = MLModel.objects.filter(lifecycle=Stage.PRODUCTION).first()
    with artifact_storage().open(model.file, "rb") as stored:
        content = stored.read()
    assert len(content) == model.file_size > 0
    assert hashlib.sha256(content).hexdigest() == model.file_sha256


def test_seed_demo_is_idempotent():
    seed()
    first = counts()

    seed()

    assert counts() == first


def test_seed_demo_prints_a_fresh_working_superuser_password_each_run():
    first = printed_password(seed())
    second = printed_password(seed())

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert first != second
    assert len(second) >= 12
    assert admin.check_password(second)
    assert not admin.check_password(first)


def test_seed_demo_team_members_cannot_log_in_with_any_default_password():
    seed()

    for member in get_user_model().objects.exclude(username="admin"):
        assert not member.has_usable_password()
