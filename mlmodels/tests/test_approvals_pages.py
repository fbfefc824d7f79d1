"""The approvals on the pages, beyond who may press which button (test_approvals_matrix.py): the
request card on the model page, "Ask for production", the model's one history, the decisions' error
messages and where they send the browser back to; and the tag forms answering htmx in place."""

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import APPROVERS_GROUP
from mlmodels import approvals, services
from mlmodels.models import ApprovalRequest, LifecycleEvent, MLModel, ProtectedAlias, Stage
from registry.validators import MAX_TEXT_LENGTH

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _approvals_on(settings):
    settings.PRODUCTION_NEEDS_APPROVAL = True


@pytest.fixture
def approver_client(approver) -> Client:
    client = Client()
    client.force_login(approver)
    return client


@pytest.fixture
def pending(staged, user) -> ApprovalRequest:
    return services.lifecycle_move(model=staged, actor=user, to_stage=Stage.PRODUCTION, comment="eval ok")


def model_page(client, model) -> str:
    response = client.get(f"/models/{model.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def card(page: str, request: ApprovalRequest) -> str:
    start = page.index(f'<article class="approval-card" id="approval-{request.pk}"')
    return page[start : page.index("</article>", start)]


def still_pending(request: ApprovalRequest) -> bool:
    request = ApprovalRequest.objects.get(pk=request.pk)
    return request.status == "pending" and request.decided_by_id is None


def shown_after(client, response) -> str:
    """The page the browser lands on after a redirect, with the messages queued for it."""
    assert response.status_code == 302, response.status_code
    return client.get(response["Location"]).content.decode()


# --- the request on the model page --------------------------------------------------------------------


def test_an_approver_sees_the_pending_request_on_the_model_page_with_approve_and_reject_forms(
    approver_client, staged, pending
):
    page = model_page(approver_client, staged)

    waiting = page[page.index('id="pending-requests"') :]
    request_card = card(waiting, pending)
    assert "move to production" in request_card and "Asked by owner" in request_card
    assert "<q>eval ok</q>" in request_card
    assert f'action="/approvals/{pending.pk}/approve/"' in request_card
    assert f'action="/approvals/{pending.pk}/reject/"' in request_card
    # Back to this page after the decision.
    assert f'name="next" value="/models/{staged.pk}/"' in request_card
    reject_input = re.search(rf'<input [^>]*id="reject-comment-{pending.pk}"[^>]*>', request_card).group(0)
    approve_input = re.search(rf'<input [^>]*id="approve-comment-{pending.pk}"[^>]*>', request_card).group(0)
    assert " required" in reject_input
    assert "required" not in approve_input
    assert "Cancel my request" not in request_card


def test_the_owner_sees_their_request_with_cancel_and_another_user_sees_it_without_buttons(
    owner_client, other_client, staged, pending
):
    owners = card(model_page(owner_client, staged), pending)
    others = card(model_page(other_client, staged), pending)

    assert "Cancel my request" in owners and "/approve/" not in owners
    assert "move to production" in others
    assert "<form" not in others


def test_without_a_pending_request_the_model_page_has_no_request_card(approver_client, staged):
    assert 'id="pending-requests"' not in model_page(approver_client, staged)


def test_an_owner_is_offered_ask_for_production_when_approvals_apply(settings, owner_client, staged):
    asking = model_page(owner_client, staged)
    settings.PRODUCTION_NEEDS_APPROVAL = False
    moving = model_page(owner_client, staged)

    assert 'data-stage="production">Production (asks an approver)</option>' in asking
    assert 'id="lifecycle-approval-note"' in asking
    assert 'data-stage="production">Production</option>' in moving
    assert "asks an approver" not in moving and 'id="lifecycle-approval-note"' not in moving


def test_an_owner_who_is_an_approver_or_a_superuser_promotes_without_asking(user, superuser_client, staged):
    # A superuser moves anyone's model; an approver who owns the model needs nobody.
    assert 'data-stage="production">Production</option>' in model_page(superuser_client, staged)
    user.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    approving_owner = Client()
    approving_owner.force_login(user)
    page = model_page(approving_owner, staged)
    assert 'data-stage="production">Production</option>' in page and "asks an approver" not in page


def test_the_model_history_lists_moves_alias_changes_requests_and_decisions_in_time_order(
    owner_client, user, approver, staged
):
    ProtectedAlias.objects.create(name="champion")
    services.alias_set(model=staged, actor=user, alias="challenger", version_number=1)
    first = services.lifecycle_move(model=staged, actor=user, to_stage=Stage.PRODUCTION, comment="eval ok")
    approvals.approval_approve(approval=first, actor=approver, comment="looks good")
    second = services.alias_set(model=staged, actor=user, alias="champion", version_number=2, comment="A/B win")
    approvals.approval_reject(approval=second, actor=approver, comment="too early")

    page = model_page(owner_client, staged)
    timeline = page[page.index('<ol class="timeline" id="timeline">') : page.index("</ol>")]
    items = re.findall(r'<li class="history-(\w+)">(.*?)</li>', timeline, flags=re.DOTALL)
    lines = [(kind, " ".join(re.sub(r"<[^>]+>", " ", text).split())) for kind, text in items]

    # Newest first; a decision sits above the move it made.
    assert [kind for kind, _ in lines] == [
        "decided",
        "requested",
        "decided",
        "lifecycle",
        "requested",
        "alias",
        "lifecycle",
    ]
    texts = [text for _, text in lines]
    assert texts[0].startswith(f"request #{second.pk} rejected by reviewer") and "too early" in texts[0]
    assert f"request #{second.pk} owner asked to point @champion at version 2" in texts[1] and "A/B win" in texts[1]
    assert texts[2].startswith(f"request #{first.pk} approved by reviewer") and "looks good" in texts[2]
    assert texts[3].startswith(f"staging → production by reviewer, approving request #{first.pk}")
    assert f"request #{first.pk} owner asked to move to production" in texts[4] and "eval ok" in texts[4]
    assert texts[5].startswith("@challenger set to v1 by owner")
    assert texts[6].startswith("development → staging by owner")
    # The times agree with the order shown.
    stamps = re.findall(r'<time class="muted" datetime="([^"]+)"', timeline)
    assert len(stamps) == 7 and stamps == sorted(stamps, reverse=True)


def test_a_superseded_request_shows_in_the_history_as_cancelled_naming_its_successor(owner_client, user, staged):
    first = services.lifecycle_move(model=staged, actor=user, to_stage=Stage.PRODUCTION, comment="first")
    second = services.lifecycle_move(model=staged, actor=user, to_stage=Stage.PRODUCTION, comment="second")

    page = model_page(owner_client, staged)
    timeline = " ".join(re.sub(r"<[^>]+>", " ", page[page.index('id="timeline"') :]).split())

    assert f"request #{first.pk} cancelled by owner (superseded by #{second.pk})" in timeline
    assert card(page, second) and f'id="approval-{first.pk}"' not in page[: page.index('id="timeline"')]


# --- the decisions' errors and where they go back to ---------------------------------------------------


def test_rejecting_without_a_reason_says_why_and_leaves_the_request_pending(approver_client, staged, pending):
    response = approver_client.post(
        f"/approvals/{pending.pk}/reject/", {"comment": "   ", "next": f"/models/{staged.pk}/"}
    )

    assert response["Location"] == f"/models/{staged.pk}/"
    page = shown_after(approver_client, response)
    assert "Say why the request is rejected: the requester reads it." in page
    assert still_pending(pending)
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING


def test_approving_a_change_that_no_longer_fits_shows_the_conflict_and_leaves_it_pending(
    approver_client, user, staged, pending
):
    services.lifecycle_move(model=staged, actor=user, to_stage=Stage.ARCHIVED)

    response = approver_client.post(f"/approvals/{pending.pk}/approve/", {"next": f"/models/{staged.pk}/"})

    page = shown_after(approver_client, response)
    assert f"Approval request #{pending.pk} can no longer be carried out" in page
    assert "Cannot move from archived to production" in page
    assert "It stays pending" in page
    assert still_pending(pending)
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.ARCHIVED
    assert not LifecycleEvent.objects.filter(model=staged, to_stage=Stage.PRODUCTION).exists()
    # And the card is still there, with its buttons.
    assert f'action="/approvals/{pending.pk}/approve/"' in card(page, pending)


def test_deciding_a_request_already_decided_says_by_whom(approver_client, superuser, staged, pending):
    approvals.approval_reject(approval=pending, actor=superuser, comment="no")

    page = shown_after(approver_client, approver_client.post(f"/approvals/{pending.pk}/approve/", {}))

    assert f"Approval request #{pending.pk} is already rejected by root; nothing was changed." in page
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING


def test_a_comment_too_long_is_refused_with_a_message(approver_client, staged, pending):
    response = approver_client.post(f"/approvals/{pending.pk}/approve/", {"comment": "x" * (MAX_TEXT_LENGTH + 1)})

    assert "Ensure this value has at most 10000 characters" in shown_after(approver_client, response)
    assert still_pending(pending)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/approvals/", "http://testserver.evil.example/"]
)
def test_the_decision_forms_never_send_the_browser_off_site(approver_client, staged, pending, target):
    response = approver_client.post(f"/approvals/{pending.pk}/approve/", {"next": target})

    assert response.status_code == 302
    assert response["Location"] == f"/models/{staged.pk}/"
    assert ApprovalRequest.objects.get(pk=pending.pk).status == "approved"


def test_the_decision_forms_go_back_to_the_page_they_were_on(owner_client, staged, pending):
    response = owner_client.post(f"/approvals/{pending.pk}/cancel/", {"next": "/approvals/"})

    assert response["Location"] == "/approvals/"
    assert f"Request #{pending.pk} cancelled." in shown_after(owner_client, response)
    assert ApprovalRequest.objects.get(pk=pending.pk).status == "cancelled"


def test_without_a_next_the_decision_goes_back_to_the_model_page(approver_client, staged, pending):
    response = approver_client.post(f"/approvals/{pending.pk}/reject/", {"comment": "latency"})

    assert response["Location"] == f"/models/{staged.pk}/"
    assert f"Request #{pending.pk} (churn: move to production) rejected." in shown_after(approver_client, response)


def test_the_owner_asking_through_the_lifecycle_form_is_told_a_request_was_filed(owner_client, staged):
    response = owner_client.post(
        f"/models/{staged.pk}/lifecycle/", {"lifecycle": "production", "comment": "please"}, **HTMX
    )

    request = ApprovalRequest.objects.get(model=staged)
    content = response.content.decode()
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["toast"]["message"].startswith(
        f"Asked for approval (request #{request.pk})"
    )
    assert card(content, request)
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING


# --- the tag forms ------------------------------------------------------------------------------------


def fragment(response) -> str:
    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div class="tags-panel" id="model-tags">'), content[:200]
    assert "<html" not in content and 'id="main"' not in content
    return content


def test_the_tag_forms_answer_htmx_with_the_tags_fragment(owner_client, staged):
    added = fragment(owner_client.post(f"/models/{staged.pk}/tags/", {"key": "team", "value": "payments"}, **HTMX))

    assert 'href="/models/?tag=team:payments">team: payments</a>' in added
    assert 'id="tag-error"' not in added and '<details class="tag-add">' in added
    assert MLModel.objects.get(pk=staged.pk).tags == {"team": "payments"}

    removed = fragment(owner_client.post(f"/models/{staged.pk}/tags/delete/", {"key": "team"}, **HTMX))

    assert "team: payments" not in removed
    assert MLModel.objects.get(pk=staged.pk).tags == {}


@pytest.mark.parametrize(
    "key, message",
    [
        ("k" * 251, "Ensure this value has at most 250 characters (it has 251)."),
        ("bad\u0007key", "Contains control or invisible characters (U+0007)."),
        ("zero\u200bwidth", "Contains control or invisible characters (U+200B)."),
    ],
    ids=["251-characters", "bell-character", "zero-width-space"],
)
def test_a_bad_tag_key_is_an_error_in_place_and_changes_nothing(owner_client, user, staged, key, message):
    services.tag_set(model=staged, actor=user, key="team", value="risk")

    content = fragment(owner_client.post(f"/models/{staged.pk}/tags/", {"key": key, "value": "v"}, **HTMX))

    error = re.search(r'<p class="error" role="alert" id="tag-error">(.*?)</p>', content).group(1)
    assert message in error
    assert '<details class="tag-add" open>' in content
    assert MLModel.objects.get(pk=staged.pk).tags == {"team": "risk"}


def test_a_bad_tag_key_without_htmx_comes_back_as_a_message_on_the_model_page(owner_client, staged):
    response = owner_client.post(f"/models/{staged.pk}/tags/", {"key": "bad\u0007key", "value": "v"})

    assert response["Location"] == f"/models/{staged.pk}/"
    assert "Contains control or invisible characters (U+0007)." in shown_after(owner_client, response)
    assert MLModel.objects.get(pk=staged.pk).tags == {}


def test_removing_a_tag_that_is_not_there_is_an_error_in_place_not_a_404(owner_client, user, staged):
    services.tag_set(model=staged, actor=user, key="team", value="risk")

    in_place = fragment(owner_client.post(f"/models/{staged.pk}/tags/delete/", {"key": "ghost"}, **HTMX))
    redirected = owner_client.post(f"/models/{staged.pk}/tags/delete/", {"key": "ghost"})

    assert "No tag “ghost” here." in in_place and 'id="tag-error"' in in_place
    assert "team: risk" in in_place
    assert "No tag “ghost” here." in shown_after(owner_client, redirected)
    assert MLModel.objects.get(pk=staged.pk).tags == {"team": "risk"}


def test_removing_a_tag_without_saying_which_is_an_error_in_place(owner_client, staged):
    content = fragment(owner_client.post(f"/models/{staged.pk}/tags/delete/", {}, **HTMX))

    assert "Say which tag to remove." in content


def test_a_comment_refused_for_a_nul_character_is_not_called_too_long(approver_client, staged, pending):
    response = approver_client.post(f"/approvals/{pending.pk}/reject/", {"comment": "bad\x00reason"})

    page = shown_after(approver_client, response)
    assert still_pending(pending)
    assert "The comment is too long." not in page
    assert "Null characters are not allowed." in page
