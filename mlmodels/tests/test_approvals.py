"""Approvals (PRODUCTION_NEEDS_APPROVAL) through /api/v1/: requests for production and for protected
aliases, and their decisions."""

import pytest

from accounts.tests.factories import ApproverFactory
from mlmodels import services
from mlmodels.models import ApprovalRequest, LifecycleEvent, MLModel, ProtectedAlias, Stage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
APPROVALS = "/api/v1/approvals/"


def detail(model, suffix: str = "") -> str:
    return f"{MODELS}{model.pk}/{suffix}"


def approval(request_id: int, suffix: str = "") -> str:
    return f"{APPROVALS}{request_id}/{suffix}"


@pytest.fixture(autouse=True)
def _approvals_on(settings):
    settings.PRODUCTION_NEEDS_APPROVAL = True


@pytest.fixture
def second_approver(db):
    return ApproverFactory(username="second-reviewer")


@pytest.fixture
def approver_api(client_for, approver):
    return client_for(approver)


def ask_for_production(api, model, comment="offline eval passed"):
    return api.patch(detail(model, "lifecycle/"), {"lifecycle": "production", "comment": comment})


def test_an_owner_asking_for_production_gets_202_and_a_pending_request_not_the_move(owner_api, staged, captured_events):
    with captured_events("approval.requested", "lifecycle.changed") as events:
        response = ask_for_production(owner_api, staged)

    assert response.status_code == 202
    body = response.json()
    assert {k: body[k] for k in ("model", "action", "requested_by", "comment", "status")} == {
        "model": {"id": staged.pk, "name": "churn"},
        "action": {"type": "lifecycle", "to_stage": "production"},
        "requested_by": {"id": staged.owner_id, "username": "owner"},
        "comment": "offline eval passed",
        "status": "pending",
    }
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING
    assert [(e.type, e.data["approval_id"]) for e in events] == [("approval.requested", body["id"])]


def test_approving_carries_the_move_out_and_the_history_shows_request_and_decision(
    owner_api, approver_api, approver, staged, captured_events
):
    request_id = ask_for_production(owner_api, staged).json()["id"]

    with captured_events("approval.decided", "lifecycle.changed") as events:
        response = approver_api.post(approval(request_id, "approve/"), {"comment": "looks good"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decided_by"]["username"]) == ("approved", "reviewer")
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.PRODUCTION
    move = LifecycleEvent.objects.filter(model=staged, to_stage=Stage.PRODUCTION).get()
    assert (move.actor, move.approval_id, move.comment) == (approver, request_id, "offline eval passed")
    history = owner_api.get(detail(staged, "history/")).json()["results"][0]
    assert history["approval"] == {
        "id": request_id,
        "requested_by": {"id": staged.owner_id, "username": "owner"},
        "comment": "offline eval passed",
        "decision_comment": "looks good",
    }
    assert [e.type for e in events] == ["lifecycle.changed", "approval.decided"]
    assert events[1].data["status"] == "approved"


def test_nobody_decides_their_own_request_not_even_an_approver(client_for, approver, staged):
    staged.owner = approver
    staged.save()
    settings_api = client_for(approver)
    # An approver's own move needs nobody: it is made at once.
    assert ask_for_production(settings_api, staged).status_code == 200

    model = MLModelFactory(owner=approver)
    request = ApprovalRequest.objects.create(
        model=model, action="lifecycle", to_stage="production", requested_by=approver
    )
    refused = settings_api.post(approval(request.pk, "approve/"), {})

    assert refused.status_code == 403
    assert "Nobody decides their own request" in refused.json()["detail"]
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


def test_only_approvers_decide_and_only_the_requester_cancels(owner_api, other_api, approver_api, staged):
    request_id = ask_for_production(owner_api, staged).json()["id"]

    assert other_api.post(approval(request_id, "approve/"), {}).status_code == 403
    assert other_api.post(approval(request_id, "reject/"), {"comment": "no"}).status_code == 403
    assert other_api.post(approval(request_id, "cancel/")).status_code == 403
    assert approver_api.post(approval(request_id, "cancel/")).status_code == 403
    cancelled = owner_api.post(approval(request_id, "cancel/"))

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert owner_api.post(approval(request_id, "cancel/")).status_code == 409


def test_a_rejection_needs_a_comment_and_changes_nothing(owner_api, approver_api, staged):
    request_id = ask_for_production(owner_api, staged).json()["id"]

    no_reason = approver_api.post(approval(request_id, "reject/"), {"comment": "  "})
    rejected = approver_api.post(approval(request_id, "reject/"), {"comment": "latency regressed"})

    assert no_reason.status_code == 400
    assert "comment" in no_reason.json()
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    assert rejected.json()["decision_comment"] == "latency regressed"
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING
    assert approver_api.post(approval(request_id, "approve/"), {}).status_code == 409


def test_a_change_no_longer_valid_is_a_409_and_the_request_stays_pending(owner_api, approver_api, user, staged):
    request_id = ask_for_production(owner_api, staged).json()["id"]
    services.lifecycle_move(model=staged, actor=user, to_stage=Stage.ARCHIVED)

    response = approver_api.post(approval(request_id, "approve/"), {})

    assert response.status_code == 409
    assert "Cannot move from archived to production" in response.json()["detail"]
    assert ApprovalRequest.objects.get(pk=request_id).status == "pending"
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.ARCHIVED
    assert not LifecycleEvent.objects.filter(model=staged, to_stage=Stage.PRODUCTION).exists()


def test_a_move_that_could_never_be_approved_is_refused_at_once(owner_api, user):
    model = MLModelFactory(owner=user)  # in development, without a file

    response = ask_for_production(owner_api, model)

    assert response.status_code == 400
    assert not ApprovalRequest.objects.exists()


def test_a_newer_request_supersedes_the_pending_one_for_the_same_change(owner_api, staged, captured_events):
    first = ask_for_production(owner_api, staged, comment="first").json()["id"]
    with captured_events("approval.decided", "approval.requested") as events:
        second = ask_for_production(owner_api, staged, comment="second").json()["id"]

    old = ApprovalRequest.objects.get(pk=first)
    assert (old.status, old.superseded_by_id) == ("cancelled", second)
    assert ApprovalRequest.objects.filter(model=staged, status="pending").get().pk == second
    assert [(e.type, e.data["approval_id"]) for e in events] == [
        ("approval.decided", first),
        ("approval.requested", second),
    ]
    assert events[0].data["superseded_by"] == second


def test_the_list_filters_by_status_model_and_mine(owner_api, other_api, approver_api, user, other_user, staged):
    pending = ask_for_production(owner_api, staged).json()["id"]
    theirs = MLModelFactory(owner=other_user)
    rejected = ApprovalRequest.objects.create(
        model=theirs, action="lifecycle", to_stage="production", requested_by=other_user
    )
    approver_api.post(approval(rejected.pk, "reject/"), {"comment": "no"})

    def ids(api, query=""):
        response = api.get(f"{APPROVALS}{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(owner_api) == [rejected.pk, pending]
    assert ids(owner_api, "?status=pending") == [pending]
    assert ids(owner_api, "?status=rejected") == [rejected.pk]
    assert ids(owner_api, f"?model={theirs.pk}") == [rejected.pk]
    assert ids(other_api, "?mine=1") == [rejected.pk]
    assert owner_api.get(f"{APPROVALS}?status=maybe").status_code == 400
    assert owner_api.get(f"{APPROVALS}?model=abc").status_code == 400
    assert owner_api.get(approval(pending)).json()["status"] == "pending"
    assert owner_api.get(approval(99999999999999999999)).status_code == 404


def test_anonymous_clients_get_401_everywhere(api_client, staged):
    request = ApprovalRequest.objects.create(model=staged, action="lifecycle", to_stage="production")

    assert api_client.get(APPROVALS).status_code == 401
    assert api_client.get(approval(request.pk)).status_code == 401
    for verb in ("approve/", "reject/", "cancel/"):
        assert api_client.post(approval(request.pk, verb), {}).status_code == 401


# --- protected aliases ------------------------------------------------------------------------------


@pytest.fixture
def champion(db):
    return ProtectedAlias.objects.create(name="champion")


def test_an_owner_sets_an_ordinary_alias_but_asks_for_a_protected_one(owner_api, approver_api, staged, champion):
    challenger = owner_api.put(detail(staged, "aliases/challenger/"), {"version": 2})
    asked = owner_api.put(detail(staged, "aliases/champion/"), {"version": 2, "comment": "wins the A/B test"})

    assert challenger.status_code == 200
    assert asked.status_code == 202
    assert asked.json()["action"] == {"type": "alias", "alias": "champion", "version": 2}
    assert MLModel.objects.get(pk=staged.pk).aliases == {"challenger": 2}

    approved = approver_api.post(approval(asked.json()["id"], "approve/"), {})

    assert approved.status_code == 200
    assert MLModel.objects.get(pk=staged.pk).aliases == {"challenger": 2, "champion": 2}
    event = staged.alias_events.get(alias="champion")
    assert (event.actor.username, event.approval_id, event.to_version) == ("reviewer", asked.json()["id"], 2)


def test_removing_a_protected_alias_is_asked_for_too(owner_api, approver_api, approver, staged, champion):
    services.alias_set(model=staged, actor=approver, alias="champion", version_number=1)

    asked = owner_api.delete(detail(staged, "aliases/champion/"))
    approver_api.post(approval(asked.json()["id"], "approve/"), {})

    assert asked.status_code == 202
    assert asked.json()["action"] == {"type": "alias", "alias": "champion", "version": None}
    assert MLModel.objects.get(pk=staged.pk).aliases == {}


def test_someone_elses_protected_alias_is_still_403_and_files_nothing(other_api, staged, champion):
    response = other_api.put(detail(staged, "aliases/champion/"), {"version": 1})

    assert response.status_code == 403
    assert "only approvers and superusers" in response.json()["detail"]
    assert not ApprovalRequest.objects.exists()


def test_an_alias_request_for_a_version_gone_missing_is_a_404_at_once(owner_api, staged, champion):
    assert owner_api.put(detail(staged, "aliases/champion/"), {"version": 9}).status_code == 404
    assert not ApprovalRequest.objects.exists()


def test_requests_for_different_aliases_of_one_model_wait_side_by_side(owner_api, staged, champion):
    ProtectedAlias.objects.create(name="production")
    owner_api.put(detail(staged, "aliases/champion/"), {"version": 1})
    owner_api.put(detail(staged, "aliases/production/"), {"version": 2})
    ask_for_production(owner_api, staged)

    assert ApprovalRequest.objects.filter(model=staged, status="pending").count() == 3


def test_with_approvals_off_a_protected_alias_is_403_and_production_is_a_move(settings, owner_api, staged, champion):
    settings.PRODUCTION_NEEDS_APPROVAL = False

    refused = owner_api.put(detail(staged, "aliases/champion/"), {"version": 1})
    moved = ask_for_production(owner_api, staged)

    assert refused.status_code == 403
    assert "ask for it" not in refused.json()["detail"]
    assert (moved.status_code, moved.json()["lifecycle"]) == (200, "production")
    assert not ApprovalRequest.objects.exists()
