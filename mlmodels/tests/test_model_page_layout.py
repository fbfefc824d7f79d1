"""The model page laid out around its questions: what the model is (the head), which version serves
(the stage panel with its one "Move to…" control, the aliases), how the versions compare, what is in
the artifact, who did what (the history). Server-rendered, read with the Django client."""

import html
import io
import json
import re

import pytest
from django.urls import reverse

from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, Stage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def attach(model, content: bytes = b"0123456789", name: str = "w.bin"):
    data = io.BytesIO(content)
    data.name = name
    return services.model_attach_file(model=model, actor=model.owner, file=data)


def page_of(client, model) -> str:
    response = client.get(reverse("model-detail", args=[model.pk]))
    assert response.status_code == 200
    return response.content.decode()


def element(content: str, element_id: str) -> str:
    """The element with ``element_id``, from its opening tag to the end of the document."""
    match = re.search(rf'<(\w+)\b[^>]*\bid="{element_id}"[^>]*>', content)
    assert match, f"no #{element_id}"
    return content[match.start() :]


def textarea(content: str, element_id: str) -> str:
    match = re.search(rf'<textarea\b[^>]*\bid="{element_id}"[^>]*>(.*?)</textarea>', content, flags=re.DOTALL)
    assert match, f"no textarea #{element_id}"
    return html.unescape(match.group(1))


@pytest.fixture
def staged_without_file(user):
    model = MLModelFactory(owner=user, name="no-file")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    return model


def test_the_parts_come_in_the_order_of_the_questions(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")
    content = page_of(owner_client, model)

    ids = [
        "model-head",
        "lifecycle-panel",
        "aliases-panel",
        "metric-cards",
        "charts-panel",
        "versions-panel",
        "compare-panel",
        "artifact-panel",
        "hyperparameters-panel",
        "history-panel",
    ]
    positions = [content.index(f'id="{part}"') for part in ids]
    assert positions == sorted(positions)


def test_the_head_says_what_the_model_is(owner_client, user):
    model = MLModelFactory(owner=user, name="churn", framework="sklearn", task_type="classification")
    services.version_record(model=model, actor=user, data={"accuracy": 0.9})
    services.alias_set(model=model, actor=user, alias="champion", version_number=1)
    head = element(page_of(owner_client, model), "model-head")
    head = head[: head.index('id="model-tags"')]

    assert 'id="stage-badge"' in head and "Development" in head
    assert "version 2" in head
    assert "@champion → v1" in head and 'class="chip alias"' in head
    assert f"owned by {user.username}" in head
    assert "scikit-learn · Classification" in head


def test_framework_and_task_left_out_of_the_head_when_both_are_other(owner_client, user):
    model = MLModelFactory(owner=user, name="plain", framework="other", task_type="other")
    head = element(page_of(owner_client, model), "model-head")
    head = head[: head.index('id="model-tags"')]

    assert "Other" not in head
    assert "·" not in head


def test_only_the_known_half_of_framework_and_task_shows(owner_client, user):
    model = MLModelFactory(owner=user, name="half", framework="other", task_type="classification")
    head = element(page_of(owner_client, model), "model-head")
    head = head[: head.index('id="model-tags"')]

    assert "Classification" in head and "Other" not in head and "·" not in head


def test_the_stage_panel_has_one_move_control_with_one_comment_field(owner_client, staged_without_file):
    content = page_of(owner_client, staged_without_file)
    panel = element(content, "lifecycle-panel")
    panel = panel[: panel.index("</section>")]

    assert panel.count("<form") == 1 and panel.count("<select") == 1 and panel.count("<textarea") == 1
    assert panel.count('name="comment"') == 1
    assert '<label for="lifecycle-to">Move to…</label>' in panel
    options = re.findall(r'<option value="(\w+)"', panel)
    assert options == list(staged_without_file.allowed_moves)
    assert panel.count('type="submit"') == 1


def test_a_refused_move_in_place_keeps_the_comment_typed_and_the_move_chosen(owner_client, staged_without_file):
    model = staged_without_file
    comment = "Beats v1 on recall <by 3 points> & ready"

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "production", "comment": comment}, **HTMX
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content
    assert 'id="lifecycle-error"' in content and "without an artifact file cannot go to production" in content
    assert textarea(content, "lifecycle-comment") == comment
    assert re.search(r'<option value="production"[^>]*\bselected\b', content)
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert not LifecycleEvent.objects.filter(model=model, to_stage=Stage.PRODUCTION).exists()


def test_a_refused_move_without_htmx_shows_the_page_with_the_reason_and_the_comment(owner_client, staged_without_file):
    model = staged_without_file

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "production", "comment": "ship it"}
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" in content
    panel = element(content, "lifecycle-panel")
    assert "without an artifact file cannot go to production" in panel[: panel.index("</section>")]
    assert textarea(content, "lifecycle-comment") == "ship it"


def test_a_move_done_in_place_clears_the_comment_and_brings_the_history(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "staging", "comment": "offline eval ok"}, **HTMX
    )

    content = response.content.decode()
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert textarea(content, "lifecycle-comment") == ""
    history = element(content, "history-panel")
    assert 'hx-swap-oob="true"' in history[: history.index(">")]
    assert "offline eval ok" in history
    stage_badge = element(content, "stage-badge")
    assert 'hx-swap-oob="true"' in stage_badge[: stage_badge.index(">")] and "Staging" in stage_badge[:200]


def test_a_move_without_htmx_still_redirects_with_its_message(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")

    response = owner_client.post(reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "archived"}, follow=True)

    assert response.redirect_chain[-1][0] == f"/models/{model.pk}/"
    assert "churn moved to archived." in response.content.decode()


def test_an_asked_for_production_keeps_its_request_and_message(settings, owner_client, user):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    model = MLModelFactory(owner=user, name="churn")
    attach(model)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "production", "comment": "please"}, **HTMX
    )

    content = response.content.decode()
    assert json.loads(response["HX-Trigger"])["toast"]["message"].startswith("Asked for approval (request #")
    assert "Asked for approval" not in content, "the toast says it, not the panel"
    assert 'id="pending-requests"' in content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING


def test_the_artifact_size_shows_once_with_the_exact_count_on_hover(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")
    attach(model, b"0123456789")
    facts = element(page_of(owner_client, model), "artifact-facts")
    facts = facts[: facts.index("</dl>")]

    assert '<span title="10 bytes">10\xa0bytes</span>' in facts or '<span title="10 bytes">10 bytes</span>' in facts
    assert "(10 bytes)" not in facts
    assert "<dt>Scan</dt>" in facts


def test_the_history_panel_is_its_own_live_region(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING, comment="eval ok")
    content = page_of(owner_client, model)
    history = element(content, "history-panel")
    opening = history[: history.index(">")]

    assert "data-live-events=" in opening and f'data-live-url="/models/{model.pk}/parts/history/"' in opening
    part = owner_client.get(reverse("model-part", args=[model.pk, "history"]), **HTMX).content.decode()
    assert "<html" not in part and 'id="history-panel"' in part and "eval ok" in part
    assert "<html" in owner_client.get(reverse("model-part", args=[model.pk, "history"])).content.decode()


def test_the_versions_table_keeps_the_current_badge_and_roll_back_on_one_line(owner_client, user):
    model = MLModelFactory(owner=user, name="churn")
    services.version_record(model=model, actor=user, data={"accuracy": 0.9})
    content = page_of(owner_client, model)

    assert '<td class="version-cell">v2 <span class="badge">current</span>' in content
    assert '<td class="row-actions">' in content
