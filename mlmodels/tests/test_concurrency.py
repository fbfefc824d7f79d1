"""Version numbers under concurrent writers, on whichever database the run is configured for
(SQLite by default; PostgreSQL in the services pass of CI)."""

import hashlib
import io
import itertools
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from accounts.tests.factories import ApproverFactory
from mlmodels import approvals, services
from mlmodels.approvals import SUPERSEDED_COMMENT
from mlmodels.models import ALLOWED_MOVES, ApprovalRequest, LifecycleEvent, MLModel, ModelVersion
from mlmodels.storage import artifact_delete, artifact_keys, artifact_storage
from mlmodels.tests.factories import MLModelFactory
from registry.errors import Conflict

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


def run_in_threads(count: int, work) -> list[BaseException]:
    """Run ``work(n)`` in ``count`` threads released together; returns the unexpected errors."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def runner(number: int) -> None:
        try:
            start.wait()
            work(number)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_lifecycle_moves_are_serialized_and_the_audit_trail_agrees(user):
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"weights")
    data.name = "w.bin"
    services.model_attach_file(model=model, actor=user, file=data)
    # Each thread tries a path of moves; many are refused because another thread moved first.
    paths = [["staging", "production"], ["archived", "development"], ["staging", "development"], ["staging"]] * 2
    refused = []

    def move(number: int) -> None:
        for stage in paths[number]:
            try:
                services.lifecycle_move(model=MLModel.objects.get(pk=model.pk), actor=user, to_stage=stage)
            except ValidationError:
                refused.append(stage)

    assert not run_in_threads(len(paths), move)

    events = list(LifecycleEvent.objects.filter(model=model).order_by("created_at", "id"))
    assert events, "no move succeeded"
    # Every event starts where the previous one ended, and only allowed moves were recorded.
    assert events[0].from_stage == "development"
    for before, after in itertools.pairwise(events):
        assert after.from_stage == before.to_stage
    assert all(e.to_stage in ALLOWED_MOVES[e.from_stage] for e in events)
    assert MLModel.objects.get(pk=model.pk).lifecycle == events[-1].to_stage
    assert len(events) + len(refused) == sum(len(p) for p in paths)


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_create_distinct_versions_each_with_its_own_object(user):
    model = MLModelFactory(owner=user)
    prefix = f"users/{user.pk}/models/{model.pk}"
    # Ids restart after each test's flush; an earlier test may have left objects under this prefix.
    for key in artifact_keys(prefix):
        artifact_delete(key)

    def upload(number: int) -> None:
        data = io.BytesIO(f"weights of upload {number}".encode())
        data.name = "model.bin"
        services.model_attach_file(model=MLModel.objects.get(pk=model.pk), actor=user, file=data)

    assert not run_in_threads(6, upload)

    versions = list(ModelVersion.objects.filter(model=model).exclude(file=None))
    assert sorted(v.version_number for v in versions) == [2, 3, 4, 5, 6, 7]
    assert len({v.file for v in versions}) == 6
    storage = artifact_storage()
    contents = set()
    for version in versions:
        assert version.file == f"users/{user.pk}/models/{model.pk}/v{version.version_number}/model.bin"
        with storage.open(version.file, "rb") as stored:
            content = stored.read()
        assert hashlib.sha256(content).hexdigest() == version.file_sha256
        contents.add(content)
    assert len(contents) == 6
    # Nothing left behind in the staging area.
    assert sorted(artifact_keys(prefix)) == sorted(v.file for v in versions)


@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_of_one_alias_end_consistent_with_every_move_audited(user):
    model = MLModelFactory(owner=user)
    for accuracy in (0.81, 0.82, 0.83):
        services.version_record(model=model, actor=user, data={"accuracy": accuracy})

    def move(thread_number: int) -> None:
        target = thread_number % 4 + 1
        services.alias_set(model=MLModel.objects.get(pk=model.pk), actor=user, alias="champion", version_number=target)

    errors = run_in_threads(THREADS, move)

    assert not errors, errors
    final = MLModel.objects.get(pk=model.pk).aliases["champion"]
    trail = list(model.alias_events.order_by("id").values_list("from_version", "to_version"))
    # Each move starts where the one before it ended; the last one ends where the alias points now.
    assert trail[0][0] is None
    assert all(earlier[1] == later[0] for earlier, later in itertools.pairwise(trail))
    assert trail[-1][1] == final


# --- approvals under races -------------------------------------------------------------------------


def _staged_with_file(user) -> MLModel:
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"weights")
    data.name = "w.bin"
    services.model_attach_file(model=model, actor=user, file=data)
    services.lifecycle_move(model=model, actor=user, to_stage="staging")
    return model


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "decisions", [("approve", "approve"), ("approve", "reject")], ids=["both-approve", "one-rejects"]
)
def test_two_approvers_deciding_one_request_at_once_make_exactly_one_decision(settings, user, decisions):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    deciders = [ApproverFactory(username="first-reviewer"), ApproverFactory(username="second-reviewer")]
    model = _staged_with_file(user)
    request = services.lifecycle_move(model=model, actor=user, to_stage="production", comment="eval ok")
    assert request is not None and request.is_pending
    decided, conflicts = [], []

    def decide(number: int) -> None:
        approval = ApprovalRequest.objects.get(pk=request.pk)
        try:
            if decisions[number] == "approve":
                approvals.approval_approve(approval=approval, actor=deciders[number], comment=f"yes {number}")
            else:
                approvals.approval_reject(approval=approval, actor=deciders[number], comment=f"no {number}")
        except Conflict as conflict:
            conflicts.append((number, str(conflict)))
        else:
            decided.append(number)

    errors = run_in_threads(2, decide)

    assert not errors, errors
    assert len(decided) == 1 and len(conflicts) == 1, (decided, conflicts)
    winner, (loser, message) = decided[0], conflicts[0]
    assert loser != winner
    final = ApprovalRequest.objects.get(pk=request.pk)
    status = "approved" if decisions[winner] == "approve" else "rejected"
    assert (final.status, final.decided_by_id) == (status, deciders[winner].pk), f"on {connection.vendor}"
    assert final.decision_comment == ("yes" if status == "approved" else "no") + f" {winner}"
    assert f"is already {status} by {deciders[winner].username}; nothing was changed." in message
    moves = LifecycleEvent.objects.filter(model=model, to_stage="production")
    assert moves.count() == (1 if status == "approved" else 0)
    if status == "approved":
        assert (moves.get().actor_id, moves.get().approval_id) == (deciders[winner].pk, request.pk)
    assert MLModel.objects.get(pk=model.pk).lifecycle == ("production" if status == "approved" else "staging")


@pytest.mark.django_db(transaction=True)
def test_requests_for_one_change_filed_at_once_leave_one_pending_the_others_superseded_in_a_chain(settings, user):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    model = _staged_with_file(user)
    filers = 4

    def ask(number: int) -> None:
        services.lifecycle_request(
            model=MLModel.objects.get(pk=model.pk), actor=user, to_stage="production", comment=f"ask {number}"
        )

    errors = run_in_threads(filers, ask)

    # The model's row lock queues the filers: each one finds the pending request of the one before it
    # and supersedes it, so none collides with the one-pending-per-change index.
    assert not errors, errors
    requests = list(ApprovalRequest.objects.filter(model=model).order_by("created_at", "id"))
    assert len(requests) == filers, f"on {connection.vendor}"
    last = requests[-1]
    assert last.status == "pending" and last.superseded_by_id is None
    assert ApprovalRequest.objects.filter(model=model, status="pending").count() == 1
    for older, newer in itertools.pairwise(requests):
        assert (older.status, older.superseded_by_id) == ("cancelled", newer.pk)
        assert (older.decided_by_id, older.decision_comment) == (user.pk, SUPERSEDED_COMMENT)
    assert sorted(r.comment for r in requests) == [f"ask {n}" for n in range(filers)]
    assert MLModel.objects.get(pk=model.pk).lifecycle == "staging"
    assert not LifecycleEvent.objects.filter(model=model, to_stage="production").exists()
