"""Version numbers under concurrent writers, on whichever database the run is configured for
(SQLite by default; PostgreSQL in the services pass of CI)."""

import threading

import pytest
from django.db import connection, connections

from mlmodels import services
from mlmodels.models import MLModel, ModelVersion
from mlmodels.tests.factories import MLModelFactory

THREADS = 8
VERSIONS_PER_THREAD = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_version_records_get_distinct_consecutive_numbers(user):
    model = MLModelFactory(owner=user)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def record_versions(thread_number: int) -> None:
        try:
            start.wait()
            for i in range(VERSIONS_PER_THREAD):
                services.version_record(
                    model=MLModel.objects.get(pk=model.pk),
                    actor=user,
                    data={"accuracy": round((thread_number * VERSIONS_PER_THREAD + i) / 1000, 3)},
                    note=f"thread {thread_number} #{i}",
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record_versions, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    numbers = sorted(ModelVersion.objects.filter(model=model).values_list("version_number", flat=True))
    total = THREADS * VERSIONS_PER_THREAD
    assert numbers == list(range(1, total + 2)), f"on {connection.vendor}"
    assert MLModel.objects.get(pk=model.pk).latest_version == total + 1
    assert ModelVersion.objects.filter(model=model, note__startswith="thread").count() == total
