"""Who may do what on the approvals routes and pages, and on the tag, alias and lifecycle routes the
approvals touch: the owner, another user, an approver (who does not own the model), a superuser and an
anonymous visitor, with PRODUCTION_NEEDS_APPROVAL on (and off where it changes the answer). A refusal
leaves nothing half-written: the request stays pending, no audit row appears, tags stay as they were."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from mlmodels import services
from mlmodels.models import AliasEvent, ApprovalRequest, LifecycleEvent, MLModel, ProtectedAlias, Stage
from mlmodels.tests.factories import ApprovalRequestFactory, MLModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
APPROVALS = "/api/v1/approvals/"
ROLES = ("owner", "other", "approver", "superuser", "anonymous")
SIGNED_IN = ROLES[:-1]
LOGIN = "/accounts/login/?next="
DECIDED_STATUS = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}


@pytest.fixture(autouse=True)
def _approvals_on(settings):
    settings.PRODUCTION_NEEDS_APPROVAL = True


@pytest.fixture
def people(user, other_user, approver, superuser) -> dict:
    return {"owner": user, "other": other_user, "approver": approver, "superuser": superuser, "anonymous": None}


@pytest.fixture
def api_as(people, client_for):
    """``api_as(role)``: an API client with a JWT of that role's user (none for anonymous)."""

    def make(role: str) -> APIClient:
        person = people[role]
        return APIClient() if person is None else client_for(person)

    return make


@pytest.fixture
def page_as(people):
    """``page_as(role)``: a browser-like client signed in (session) as that role's user."""

    def make(role: str) -> Client:
        client = Client()
        if people[role] is not None:
            client.force_login(people[role])
        return client

    return make


@pytest.fixture
def pending(staged, user):
    """The owner's pending request to move ``staged`` to production."""
    request = services.lifecycle_move(model=staged, actor=user, to_stage=Stage.PRODUCTION, comment="eval ok")
    assert request is not None and request.is_pending
    return request


@pytest.fixture
def champion(db):
    return ProtectedAlias.objects.create(name="champion")


def fresh(model: MLModel) -> MLModel:
    return MLModel.objects.get(pk=model.pk)


def production_moves(model: MLModel) -> int:
    return LifecycleEvent.objects.filter(model=model, to_stage=Stage.PRODUCTION).count()


def assert_still_pending(request: ApprovalRequest) -> None:
    request = ApprovalRequest.objects.get(pk=request.pk)
    assert (request.status, request.decided_by_id, request.decided_at, request.decision_comment) == (
        "pending",
        None,
        None,
        "",
    )


def assert_login_redirect(response, path: str) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN), response["Location"]
    assert path in response["Location"]


# --- API: /api/v1/approvals/ ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_signed_in_user_reads_the_approvals_list_and_a_request_anonymous_gets_401(api_as, pending, role):
    api = api_as(role)

    listed = api.get(APPROVALS)
    one = api.get(f"{APPROVALS}{pending.pk}/")

    if role == "anonymous":
        assert (listed.status_code, one.status_code) == (401, 401)
        return
    assert (listed.status_code, one.status_code) == (200, 200)
    assert [row["id"] for row in listed.json()["results"]] == [pending.pk]
    assert (one.json()["id"], one.json()["status"]) == (pending.pk, "pending")
    assert one.json()["action"] == {"type": "lifecycle", "to_stage": "production"}


API_DECISIONS = {
    "approve": {"owner": 403, "other": 403, "approver": 200, "superuser": 200, "anonymous": 401},
    "reject": {"owner": 403, "other": 403, "approver": 200, "superuser": 200, "anonymous": 401},
    # Only the requester withdraws a request; deciding it is for the approvers.
    "cancel": {"owner": 200, "other": 403, "approver": 403, "superuser": 403, "anonymous": 401},
}


@pytest.mark.parametrize(
    "verb, role, expected",
    [(verb, role, code) for verb, codes in API_DECISIONS.items() for role, code in codes.items()],
)
def test_who_may_approve_reject_or_cancel_a_request_through_the_api(
    api_as, people, staged, pending, verb, role, expected
):
    body = {} if verb == "cancel" else {"comment": "checked the offline eval"}

    response = api_as(role).post(f"{APPROVALS}{pending.pk}/{verb}/", body, format="json")

    assert response.status_code == expected, response.content[:300]
    if expected != 200:
        assert_still_pending(pending)
        assert fresh(staged).lifecycle == Stage.STAGING
        assert production_moves(staged) == 0
        return
    decided = ApprovalRequest.objects.get(pk=pending.pk)
    assert response.json()["status"] == decided.status == DECIDED_STATUS[verb]
    assert decided.decided_by == people[role]
    approved = verb == "approve"
    assert fresh(staged).lifecycle == (Stage.PRODUCTION if approved else Stage.STAGING)
    assert production_moves(staged) == (1 if approved else 0)


# --- API: tags ----------------------------------------------------------------------------------------

TAG_CODES = {
    "owner": (200, 204),
    "superuser": (200, 204),
    "other": (403, 403),
    "approver": (403, 403),  # approving production is no licence to change someone's model
    "anonymous": (401, 401),
}


@pytest.mark.parametrize("where", ["model", "version"])
@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_and_superusers_set_and_remove_tags_of_a_model_and_its_versions(
    api_as, user, staged, role, where
):
    services.tag_set(model=staged, actor=user, key="team", value="risk", version_number=None if where == "model" else 1)
    url = f"{MODELS}{staged.pk}/tags/team/" if where == "model" else f"{MODELS}{staged.pk}/versions/1/tags/team/"

    def tags() -> dict:
        model = fresh(staged)
        return model.tags if where == "model" else model.versions.get(version_number=1).tags

    api = api_as(role)
    put_code, delete_code = TAG_CODES[role]

    put = api.put(url, {"value": "payments"}, format="json")
    assert put.status_code == put_code, put.content[:300]
    assert tags() == ({"team": "payments"} if put_code == 200 else {"team": "risk"})
    if put_code == 200:
        assert put.json() == {"key": "team", "value": "payments"}

    delete = api.delete(url)
    assert delete.status_code == delete_code
    assert tags() == ({} if delete_code == 204 else {"team": "risk"})


# --- API: aliases -------------------------------------------------------------------------------------


def alias_url(model, alias: str) -> str:
    return f"{MODELS}{model.pk}/aliases/{alias}/"


ORDINARY_ALIAS_CODES = {
    "owner": (200, 204),
    "superuser": (200, 204),
    "approver": (403, 403),
    "other": (403, 403),
    "anonymous": (401, 401),
}


@pytest.mark.parametrize("role", ROLES)
def test_an_ordinary_alias_is_the_owners_to_change_and_everyone_signed_in_reads_it(api_as, user, staged, role):
    services.alias_set(model=staged, actor=user, alias="challenger", version_number=1)
    events_before = AliasEvent.objects.count()
    api = api_as(role)
    put_code, delete_code = ORDINARY_ALIAS_CODES[role]

    read = api.get(alias_url(staged, "challenger"))
    assert read.status_code == (401 if role == "anonymous" else 200)
    if role != "anonymous":
        assert read.json()["version_number"] == 1

    moved = api.put(alias_url(staged, "challenger"), {"version": 2}, format="json")
    assert moved.status_code == put_code, moved.content[:300]
    assert fresh(staged).aliases == {"challenger": 2 if put_code == 200 else 1}

    removed = api.delete(alias_url(staged, "challenger"))
    assert removed.status_code == delete_code
    assert fresh(staged).aliases == ({} if delete_code == 204 else {"challenger": 1})
    assert AliasEvent.objects.count() == events_before + (2 if put_code == 200 else 0)
    assert not ApprovalRequest.objects.exists()


def protected_alias_codes(role: str, approvals_on: bool) -> tuple[int, int]:
    return {
        "approver": (200, 204),
        "superuser": (200, 204),
        "owner": (202, 202) if approvals_on else (403, 403),
        "other": (403, 403),
        "anonymous": (401, 401),
    }[role]


@pytest.mark.parametrize("approvals_on", [True, False], ids=["approvals-on", "approvals-off"])
@pytest.mark.parametrize("role", ROLES)
def test_a_protected_alias_is_set_by_approvers_and_superusers_and_asked_for_by_the_owner(
    settings, api_as, approver, staged, champion, role, approvals_on
):
    services.alias_set(model=staged, actor=approver, alias="champion", version_number=1)
    settings.PRODUCTION_NEEDS_APPROVAL = approvals_on
    events_before = AliasEvent.objects.count()
    api = api_as(role)
    put_code, delete_code = protected_alias_codes(role, approvals_on)

    read = api.get(alias_url(staged, "champion"))
    assert read.status_code == (401 if role == "anonymous" else 200)

    moved = api.put(alias_url(staged, "champion"), {"version": 2, "comment": "wins the A/B test"}, format="json")
    assert moved.status_code == put_code, moved.content[:300]
    if put_code == 403:
        assert "only approvers and superusers" in moved.json()["detail"]
    if put_code == 202:
        assert moved.json()["action"] == {"type": "alias", "alias": "champion", "version": 2}
        assert moved.json()["status"] == "pending"
    assert fresh(staged).aliases == {"champion": 2 if put_code == 200 else 1}

    removed = api.delete(alias_url(staged, "champion"))
    assert removed.status_code == delete_code
    if delete_code == 202:
        assert removed.json()["action"] == {"type": "alias", "alias": "champion", "version": None}
    assert fresh(staged).aliases == ({} if delete_code == 204 else {"champion": 1})

    assert AliasEvent.objects.count() == events_before + (2 if put_code == 200 else 0)
    pending = ApprovalRequest.objects.filter(status="pending")
    if put_code == 202:
        # The removal superseded the request to move it: one pending request per alias.
        assert list(pending.values_list("alias", "version_number", "requested_by")) == [
            ("champion", None, staged.owner_id)
        ]
        assert ApprovalRequest.objects.filter(status="cancelled", superseded_by__isnull=False).count() == 1
    else:
        assert not ApprovalRequest.objects.exists()


# --- API: lifecycle -----------------------------------------------------------------------------------


def lifecycle_code(role: str, approvals_on: bool) -> int:
    return {
        "owner": 202 if approvals_on else 200,
        "approver": 403,  # not the model's owner: approving is not moving someone's model
        "superuser": 200,
        "other": 403,
        "anonymous": 401,
    }[role]


@pytest.mark.parametrize("approvals_on", [True, False], ids=["approvals-on", "approvals-off"])
@pytest.mark.parametrize("role", ROLES)
def test_who_moves_a_model_to_production_and_who_only_asks(settings, api_as, staged, role, approvals_on):
    settings.PRODUCTION_NEEDS_APPROVAL = approvals_on
    expected = lifecycle_code(role, approvals_on)

    response = api_as(role).patch(
        f"{MODELS}{staged.pk}/lifecycle/", {"lifecycle": "production", "comment": "ship it"}, format="json"
    )

    assert response.status_code == expected, response.content[:300]
    if expected == 200:
        assert response.json()["lifecycle"] == "production"
        assert fresh(staged).lifecycle == Stage.PRODUCTION
        assert production_moves(staged) == 1
        assert not ApprovalRequest.objects.exists()
        return
    assert fresh(staged).lifecycle == Stage.STAGING
    assert production_moves(staged) == 0
    if expected == 202:
        request = ApprovalRequest.objects.get()
        assert response.json()["id"] == request.pk
        assert (request.status, request.to_stage, request.requested_by_id) == ("pending", "production", staged.owner_id)
    else:
        assert not ApprovalRequest.objects.exists()


# --- pages: the inbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_inbox_shows_each_role_the_buttons_it_may_use(page_as, pending, role):
    response = page_as(role).get("/approvals/")

    if role == "anonymous":
        assert_login_redirect(response, "/approvals/")
        return
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="approval-{pending.pk}"' in page
    decides = f'data-approve="{pending.pk}"' in page, f'data-reject="{pending.pk}"' in page
    cancels = f'action="/approvals/{pending.pk}/cancel/"' in page
    if role in ("approver", "superuser"):
        assert decides == (True, True) and not cancels
    elif role == "owner":
        assert decides == (False, False) and cancels and "Cancel my request" in page
    else:
        assert decides == (False, False) and not cancels and "Cancel my request" not in page


def test_an_approver_gets_no_decide_buttons_for_their_own_request_only_cancel(page_as, approver):
    own = ApprovalRequestFactory(model=MLModelFactory(owner=approver), requested_by=approver)

    page = page_as("approver").get("/approvals/").content.decode()

    mine = page[page.index('id="mine"') : page.index('id="decided"')]
    assert f'id="approval-{own.pk}"' in mine
    assert f'data-approve="{own.pk}"' not in page and f'data-reject="{own.pk}"' not in page
    assert f'action="/approvals/{own.pk}/cancel/"' in mine


# --- pages: decisions ---------------------------------------------------------------------------------

PAGE_DECISIONS = {
    "approve": {"owner": 403, "other": 403, "approver": 302, "superuser": 302, "anonymous": "login"},
    "reject": {"owner": 403, "other": 403, "approver": 302, "superuser": 302, "anonymous": "login"},
    "cancel": {"owner": 302, "other": 403, "approver": 403, "superuser": 403, "anonymous": "login"},
}
DONE = {"approve": "approved and carried out", "reject": "rejected", "cancel": "cancelled"}


@pytest.mark.parametrize(
    "verb, role, expected",
    [(verb, role, code) for verb, codes in PAGE_DECISIONS.items() for role, code in codes.items()],
)
def test_the_decision_buttons_decide_for_those_who_may_and_refuse_the_rest_leaving_it_pending(
    page_as, people, staged, pending, verb, role, expected
):
    client = page_as(role)
    url = f"/approvals/{pending.pk}/{verb}/"

    response = client.post(url, {"comment": "looked at it", "next": "/approvals/"})

    if expected == "login":
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected
    if expected != 302:
        assert_still_pending(pending)
        assert fresh(staged).lifecycle == Stage.STAGING
        assert production_moves(staged) == 0
        if expected == 403:
            assert "data-error-reason" in response.content.decode()
        return
    assert response["Location"] == "/approvals/"
    shown = client.get(response["Location"]).content.decode()
    assert f"Request #{pending.pk}" in shown and DONE[verb] in shown
    decided = ApprovalRequest.objects.get(pk=pending.pk)
    assert (decided.status, decided.decided_by) == (DECIDED_STATUS[verb], people[role])
    assert fresh(staged).lifecycle == (Stage.PRODUCTION if verb == "approve" else Stage.STAGING)
    assert production_moves(staged) == (1 if verb == "approve" else 0)


# --- pages: tags --------------------------------------------------------------------------------------

TAG_PAGE_CODES = {"owner": 302, "superuser": 302, "other": 403, "approver": 403, "anonymous": "login"}


@pytest.mark.parametrize("role", ROLES)
def test_the_tag_forms_change_tags_for_the_owner_and_superusers_only(page_as, user, staged, role):
    services.tag_set(model=staged, actor=user, key="team", value="risk")
    client = page_as(role)
    expected = TAG_PAGE_CODES[role]
    set_url, delete_url = f"/models/{staged.pk}/tags/", f"/models/{staged.pk}/tags/delete/"

    set_response = client.post(set_url, {"key": "stage", "value": "beta"})
    after_set = fresh(staged).tags
    delete_response = client.post(delete_url, {"key": "team"})
    after_delete = fresh(staged).tags

    if expected == "login":
        assert_login_redirect(set_response, set_url)
        assert_login_redirect(delete_response, delete_url)
    else:
        assert (set_response.status_code, delete_response.status_code) == (expected, expected)
    if expected == 302:
        assert set_response["Location"] == delete_response["Location"] == f"/models/{staged.pk}/"
        assert after_set == {"team": "risk", "stage": "beta"}
        assert after_delete == {"stage": "beta"}
        shown = client.get(f"/models/{staged.pk}/").content.decode()
        assert "Tag “team” removed." in shown
    else:
        assert after_set == after_delete == {"team": "risk"}


# --- pages: the navigation ----------------------------------------------------------------------------


@pytest.fixture
def waiting(people, staged, pending, approver):
    """Two requests by the owner and one by the approver wait; one more, by the owner, was rejected."""
    ApprovalRequestFactory(model=staged, alias="champion", requested_by=people["owner"])
    ApprovalRequestFactory(model=MLModelFactory(owner=approver), requested_by=approver)
    rejected = ApprovalRequestFactory(model=staged, alias="canary", requested_by=people["owner"])
    rejected.status, rejected.decided_by = "rejected", people["superuser"]
    rejected.save()


@pytest.mark.parametrize(
    "role, count",
    [("approver", 2), ("superuser", 3), ("owner", None), ("other", None)],
)
def test_the_navigation_counts_the_requests_waiting_for_an_approver_and_only_for_approvers(
    page_as, waiting, role, count
):
    page = page_as(role).get("/").content.decode()

    nav = page[page.index('<nav class="nav" aria-label="Main">') : page.index("</nav>")]
    assert 'href="/approvals/"' in nav and "Approvals" in nav
    if count is None:
        assert 'class="nav-count"' not in page
    else:
        assert f'<span class="nav-count" aria-label="{count} waiting">{count}</span>' in nav


@pytest.mark.parametrize("role", SIGNED_IN)
def test_with_approvals_off_the_navigation_has_no_approvals_link(settings, page_as, waiting, role):
    settings.PRODUCTION_NEEDS_APPROVAL = False

    page = page_as(role).get("/").content.decode()

    assert 'href="/approvals/"' not in page
    assert 'class="nav-count"' not in page
