"""The dashboard pages for models, as the owner, another user and an anonymous visitor; full pages and
htmx fragments; query budgets; writes refused on the server for anyone but the owner."""

import io
import json
import re

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.roles import APPROVERS_GROUP
from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, ProtectedAlias, Stage
from mlmodels.selectors import DASHBOARD_COUNTS_KEY
from mlmodels.tests.factories import ApprovalRequestFactory, MLModelFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def owner(owner_client):
    return owner_client


@pytest.fixture
def other(other_client):
    return other_client


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn-model", accuracy=0.8)


def with_file(model):
    data = io.BytesIO(b"weights")
    data.name = "w.bin"
    services.model_attach_file(model=model, actor=model.owner, file=data)
    return model


@pytest.mark.parametrize(
    "url",
    ["/", "/models/", "/models/new/", "/models/{pk}/", "/models/{pk}/compare/?a=1&b=1", "/models/{pk}/versions/"],
)
def test_anonymous_visitors_are_sent_to_the_login_page(client, model, url):
    response = client.get(url.format(pk=model.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_dashboard_shows_counts_recent_models_and_events(owner, model, user):
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING, comment="eval ok")

    response = owner.get("/")

    assert response.status_code == 200
    counts = {value: count for value, _, count in response.context["counts"]["lifecycle"]}
    assert counts == {"development": 0, "staging": 1, "production": 0, "archived": 0}
    assert b"churn-model" in response.content
    latest = response.context["activity"][0]
    assert (latest.kind, latest.before, latest.after) == ("lifecycle", "development", "staging")


def test_dashboard_counts_are_cached_and_forgotten_when_a_model_change_commits(
    owner, user, django_capture_on_commit_callbacks
):
    owner.get("/")
    assert cache.get(DASHBOARD_COUNTS_KEY)["total"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        model = MLModelFactory(owner=user)
        assert cache.get(DASHBOARD_COUNTS_KEY)["total"] == 0, "forgotten before the commit"

    assert cache.get(DASHBOARD_COUNTS_KEY) is None
    owner.get("/")
    assert cache.get(DASHBOARD_COUNTS_KEY)["total"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    assert cache.get(DASHBOARD_COUNTS_KEY)["total"] == 1, "a new version changes no dashboard count"

    with django_capture_on_commit_callbacks(execute=True):
        services.lifecycle_move(model=model, actor=user, to_stage="staging")
    assert cache.get(DASHBOARD_COUNTS_KEY) is None

    owner.get("/")
    with django_capture_on_commit_callbacks(execute=True):
        services.model_update(model=model, actor=user, data={"name": "renamed", "description": "new words"})
    assert cache.get(DASHBOARD_COUNTS_KEY) is not None, "a rename changes no dashboard count"

    with django_capture_on_commit_callbacks(execute=True):
        services.model_update(model=model, actor=user, data={"framework": "pytorch"})
    assert cache.get(DASHBOARD_COUNTS_KEY) is None

    owner.get("/")
    with django_capture_on_commit_callbacks(execute=True):
        services.model_delete(model=model, actor=user)
    assert cache.get(DASHBOARD_COUNTS_KEY) is None


def test_model_list_full_page_and_htmx_fragment(owner, model):
    full = owner.get("/models/")
    fragment = owner.get("/models/", **HTMX)

    assert b"<html" in full.content and b'id="model-filters"' in full.content
    assert b"<html" not in fragment.content and b"churn-model" in fragment.content
    assert "HX-Request" in fragment["Vary"]


def test_history_restore_gets_the_full_page(owner, model):
    response = owner.get("/models/?search=churn", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")

    assert b"<html" in response.content


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("search=churn", "churn-model", "vision-model"),
        ("framework=pytorch", "vision-model", "churn-model"),
        ("lifecycle=development", "churn-model", "nothing"),
        ("owner=mine", "churn-model", "vision-model"),
        ("min_accuracy=0.85", "vision-model", "churn-model"),
        ("ordering=-accuracy", "vision-model", "nothing"),
    ],
)
def test_model_list_filters(owner, model, other_user, query, shown, hidden):
    MLModelFactory(owner=other_user, name="vision-model", framework="pytorch", accuracy=0.95)

    response = owner.get(f"/models/?{query}", **HTMX)

    assert shown.encode() in response.content
    assert hidden.encode() not in response.content


def test_model_list_orders_by_a_column(owner, model, other_user):
    MLModelFactory(owner=other_user, name="vision-model", accuracy=0.95)

    rows = [m.name for m in owner.get("/models/?ordering=-accuracy", **HTMX).context["page"].object_list]

    assert rows == ["vision-model", "churn-model"]


def test_model_list_shows_a_friendly_empty_state(owner):
    response = owner.get("/models/?search=nothing-like-this", **HTMX)

    assert b"No models match these filters" in response.content


def test_model_list_reports_invalid_filters_instead_of_failing(owner):
    response = owner.get("/models/?min_accuracy=lots", **HTMX)

    assert response.status_code == 200
    assert b"min_accuracy" in response.content


def test_model_list_query_count_does_not_grow_with_rows(owner, user, django_assert_max_num_queries):
    for _ in range(25):
        MLModelFactory(owner=user)

    # user; count; page of models (+owners)
    with django_assert_max_num_queries(3):
        response = owner.get("/models/", **HTMX)

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 20


def test_model_page_query_count_does_not_grow_with_versions_or_events(
    owner, model, user, django_assert_max_num_queries
):
    for _ in range(10):
        services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    for stage in ("staging", "development", "staging", "development"):
        services.lifecycle_move(model=model, actor=user, to_stage=stage)
    for number in (1, 2, 3):
        services.alias_set(model=model, actor=user, alias="champion", version_number=number)
    for number in (1, 2):
        ApprovalRequestFactory(model=model, version_number=number)

    # user; model (+owner, experiment); versions (+authors); events (+actors); alias changes (+actors);
    # approval requests (+requesters, deciders)
    with django_assert_max_num_queries(6):
        assert owner.get(f"/models/{model.pk}/").status_code == 200


def test_model_page_shows_metrics_chart_versions_and_owner_controls(owner, model, django_assert_max_num_queries):
    # user; model (+owner, experiment); versions (+authors); events (+actors); alias changes (+actors);
    # approval requests.
    with django_assert_max_num_queries(6):
        response = owner.get(f"/models/{model.pk}/")

    content = response.content.decode()
    assert "churn-model" in content
    assert 'aria-label="Accuracy by version"' in content
    assert 'id="upload-form"' in content
    assert 'data-stage="staging"' in content and 'data-stage="archived"' in content
    assert 'data-stage="production"' not in content


def test_other_user_sees_the_model_without_write_controls(other, model):
    content = other.get(f"/models/{model.pk}/").content.decode()

    assert "churn-model" in content
    assert 'id="upload-form"' not in content
    assert "data-stage=" not in content
    assert "/edit/" not in content


def test_compare_marks_the_differences(owner, model, user):
    services.version_record(model=model, actor=user, data={"accuracy": 0.9})

    fragment = owner.get(f"/models/{model.pk}/compare/?a=1&b=2", **HTMX)
    full = owner.get(f"/models/{model.pk}/compare/?a=1&b=2")

    rows = {row.field: row.differs for row in fragment.context["compare"].metrics}
    assert rows["accuracy"] is True and rows["recall"] is False
    assert b"<html" not in fragment.content and b'class="differs"' in fragment.content
    assert b"<html" in full.content and b'class="differs"' in full.content


def test_compare_with_an_unknown_version_says_so(owner, model):
    response = owner.get(f"/models/{model.pk}/compare/?a=1&b=9", **HTMX)

    assert b"There is no version 9 of churn-model. Choose two or more versions of this model." in response.content


def test_promote_in_place_returns_the_lifecycle_panel_with_the_new_stage(owner, model, user):
    response = owner.post(f"/models/{model.pk}/lifecycle/", {"lifecycle": "staging", "comment": "go"}, **HTMX)

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'id="lifecycle-panel"' in response.content and b'hx-swap-oob="true"' in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert LifecycleEvent.objects.get(model=model).comment == "go"


def test_a_refused_move_shows_its_reason_inline(owner, model, user):
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = owner.post(f"/models/{model.pk}/lifecycle/", {"lifecycle": "production"}, **HTMX)

    assert response.status_code == 200
    assert b"without an artifact file cannot go to production" in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING


def test_a_move_without_htmx_redirects_back_with_a_message(owner, model):
    response = owner.post(f"/models/{model.pk}/lifecycle/", {"lifecycle": "archived"}, follow=True)

    assert response.redirect_chain[-1][0] == f"/models/{model.pk}/"
    assert b"moved to archived" in response.content


def test_forged_writes_from_another_user_get_403_and_change_nothing(other, model):
    with_file(model)
    posts = [
        (f"/models/{model.pk}/lifecycle/", {"lifecycle": "staging"}),
        (f"/models/{model.pk}/versions/1/rollback/", {}),
        (f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("x.bin", b"x")}),
        (f"/models/{model.pk}/edit/", {"name": "stolen"}),
        (f"/models/{model.pk}/delete/", {}),
    ]
    for url, data in posts:
        assert other.post(url, data, **HTMX).status_code == 403, url

    model.refresh_from_db()
    assert (model.name, model.lifecycle, model.latest_version) == ("churn-model", Stage.DEVELOPMENT, 2)


def test_posts_without_a_csrf_token_are_refused(user, model):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(f"/models/{model.pk}/lifecycle/", {"lifecycle": "staging"}, **HTMX)

    assert response.status_code == 403
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.DEVELOPMENT


def test_upload_shows_size_and_sha256_and_asks_the_page_to_refresh_versions(owner, model):
    response = owner.post(
        f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("weights.bin", b"abc"), "note": "new"}, **HTMX
    )

    assert response.status_code == 200
    assert "versionsChanged" in json.loads(response["HX-Trigger"])
    assert b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in response.content
    assert MLModel.objects.get(pk=model.pk).latest_version == 2


def test_upload_without_a_file_shows_the_error(owner, model):
    response = owner.post(f"/models/{model.pk}/upload/", {}, **HTMX)

    assert b"This field is required" in response.content
    assert "HX-Trigger" not in response


def test_create_form_registers_a_model_and_shows_inline_errors(owner, user):
    bad = owner.post("/models/new/", {"name": "", "framework": "onnx", "task_type": "other", "accuracy": "2"})
    good = owner.post(
        "/models/new/", {"name": "fresh", "framework": "onnx", "task_type": "other", "hyperparameters": '{"a": 1}'}
    )

    assert bad.status_code == 200
    assert b"This field is required" in bad.content and b"less than or equal to 1" in bad.content
    created = MLModel.objects.get(name="fresh")
    assert good["Location"] == f"/models/{created.pk}/"
    assert (created.owner, created.hyperparameters) == (user, {"a": 1})


def test_create_form_reports_a_duplicate_name_on_the_name_field(owner, model):
    response = owner.post("/models/new/", {"name": "churn-model", "framework": "onnx", "task_type": "other"})

    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        f"The name “churn-model” is taken by {model.owner.username}'s model (#{model.pk}); "
        "model names are unique across the registry."
    ]


def test_edit_form_changes_metrics_as_a_new_version(owner, model):
    form = {"name": "churn-model", "framework": "sklearn", "task_type": "classification", "accuracy": "0.95"}

    owner.post(f"/models/{model.pk}/edit/", form)

    model.refresh_from_db()
    assert (model.accuracy, model.latest_version) == (0.95, 2)


def test_delete_asks_for_confirmation_then_deletes(owner, model):
    assert b"Delete model" in owner.get(f"/models/{model.pk}/delete/").content

    response = owner.post(f"/models/{model.pk}/delete/")

    assert response["Location"] == "/models/"
    assert not MLModel.objects.exists()


def test_an_upload_over_the_limit_shows_the_limit_and_changes_nothing(owner, model, settings):
    settings.MAX_UPLOAD_BYTES = 5

    response = owner.post(f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("w.bin", b"123456")}, **HTMX)

    assert b"File too large: 6 bytes; the limit is 5 bytes." in response.content
    assert MLModel.objects.get(pk=model.pk).latest_version == 1


# --- In-place refresh after an upload or a rollback ----------------------------------------------


def oob(content: str, element_id: str) -> str:
    """The out-of-band fragment with ``element_id`` in an htmx response (its opening tag onwards)."""
    match = re.search(rf'<(\w+)\b[^>]*\bid="{element_id}"[^>]*>', content)
    assert match, f"no #{element_id} in the response"
    assert 'hx-swap-oob="true"' in match.group(0), f"#{element_id} is not swapped out of band"
    return content[match.start() :]


def test_upload_response_refreshes_every_part_of_the_page_it_changes_out_of_band(
    owner, model, django_assert_max_num_queries
):
    services.version_record(model=model, actor=model.owner, data={"accuracy": 0.85})  # v2, no file yet

    # user; model (+owner, experiment); the write: savepoint, row lock, savepoint, file-key check,
    # release, model update, version insert, release; then one for every fragment: the versions (+authors).
    with django_assert_max_num_queries(11):
        response = owner.post(
            f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("weights.bin", b"abc"), "note": "n"}, **HTMX
        )

    content = response.content.decode()
    assert b"<html" not in response.content
    head = oob(content, "model-head")
    assert "version 3" in head.split("</h1>")[1][:400]
    assert f'href="/api/v1/models/{model.pk}/download/"' in head, "the Download button appears after a first upload"
    artifact = oob(content, "artifact-facts")
    assert "weights.bin" in artifact[:600] and "No artifact file yet" not in artifact[:600]
    assert "Download" in artifact[:1000]
    assert "v3: 0.85" in oob(content, "charts-panel")
    assert 'id="version-3"' in oob(content, "versions")
    compare = oob(content, "compare-form")
    assert compare[: compare.index("</form>")].count('name="v" value="3"') == 1
    assert "0.85" in oob(content, "metric-cards")[:300]
    fields = oob(content, "upload-fields")
    assert 'type="file"' in fields and 'value="n"' not in fields[:600]
    oob(content, "lifecycle-feedback")  # a stale "upload a file first" refusal goes away


def test_a_failed_upload_refreshes_nothing(owner, model):
    response = owner.post(f"/models/{model.pk}/upload/", {}, **HTMX)

    assert b"hx-swap-oob" not in response.content


def test_rollback_answers_in_place_with_the_versions_table_and_the_refreshed_page(
    owner, model, user, django_assert_max_num_queries
):
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    # user; model; version 1; the write (8, as for an upload); the versions (+authors) for every fragment.
    with django_assert_max_num_queries(12):
        response = owner.post(f"/models/{model.pk}/versions/1/rollback/", **HTMX)

    assert "HX-Refresh" not in response
    assert "versionsChanged" in json.loads(response["HX-Trigger"])
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="versions"'), "the versions table is the swap's target"
    assert json.loads(response["HX-Trigger"])["toast"] == {
        "message": "Rolled back to version 1: recorded as version 3.",
        "level": "success",
    }
    assert "version 3" in oob(content, "model-head")
    assert "0.8" in oob(content, "metric-cards")[:300]
    oob(content, "charts-panel"), oob(content, "compare-form"), oob(content, "hyperparameters-panel")
    model.refresh_from_db()
    assert (model.latest_version, model.accuracy) == (3, 0.8)


def test_a_refused_rollback_shows_its_reason_above_the_versions_table(owner, model, user):
    with_file(model)  # v2 has a file, v1 has none
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)

    response = owner.post(f"/models/{model.pk}/versions/1/rollback/", **HTMX)

    assert b"Version 1 has no artifact file" in response.content
    assert b"hx-swap-oob" not in response.content
    assert MLModel.objects.get(pk=model.pk).latest_version == 2


def test_a_rollback_without_htmx_redirects_back_with_a_message(owner, model, user):
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    response = owner.post(f"/models/{model.pk}/versions/1/rollback/", follow=True)

    assert response.redirect_chain[-1][0] == f"/models/{model.pk}/"
    assert b"recorded as version 3" in response.content


# --- Read-only note -----------------------------------------------------------------------------


def test_other_user_is_told_why_the_model_is_read_only(other, model):
    content = other.get(f"/models/{model.pk}/").content.decode()

    assert "Read-only: owned by owner" in content


def test_the_owner_sees_no_read_only_note(owner, model):
    assert b"Read-only" not in owner.get(f"/models/{model.pk}/").content


# --- Out-of-range input ---------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["fragment", "full-page"])
@pytest.mark.parametrize("a", ["99999999999999999999", "-99999999999999999999", "0"])
def test_compare_with_a_version_number_beyond_the_database_range_says_no_such_version(owner, model, headers, a):
    response = owner.get(f"/models/{model.pk}/compare/?a={a}&b=1", **headers)

    assert response.status_code == 200
    assert f"There is no version {a} of churn-model.".encode() in response.content


@pytest.fixture
def many_models(user):
    for index in range(25):  # two pages of 20
        MLModelFactory(owner=user, name=f"crowd-{index:02d}")


def test_a_page_past_the_last_redirects_to_the_last_page_and_says_so(owner, many_models):
    response = owner.get("/models/?search=crowd&page=99")

    assert response.status_code == 302
    assert response["Location"] == "/models/?search=crowd&page=2"
    shown = owner.get(response["Location"])
    assert b"There is no page 99: showing page 2, the last." in shown.content
    assert shown.context["page"].number == 2


def test_a_page_that_is_not_a_number_redirects_to_the_first_page(owner, many_models):
    response = owner.get("/models/?page=abc&ordering=name")

    assert response["Location"] == "/models/?ordering=name"
    assert b"is not a page number: showing the first page" in owner.get(response["Location"]).content


def test_an_htmx_request_for_a_missing_page_gets_the_corrected_url_pushed(owner, many_models):
    response = owner.get("/models/?page=99", **HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/models/?page=2"
    assert b"There is no page 99: showing page 2, the last." in response.content
    assert response.context["page"].number == 2


def test_a_page_in_range_is_not_redirected(owner, many_models):
    response = owner.get("/models/?page=2")

    assert response.status_code == 200
    assert "HX-Push-Url" not in response
    assert b"There is no page" not in response.content


def test_favicon_ico_sends_browsers_to_the_svg_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    assert client.get(response["Location"]).status_code == 200


def test_tags_show_as_chips_that_filter_the_list_on_the_list_and_the_model_page(owner, user):
    tagged = MLModelFactory(owner=user, name="tagged", tags={"team": "payments"})
    MLModelFactory(owner=user, name="untagged")

    listed = owner.get("/models/?tag=team:payments").content.decode()
    page = owner.get(f"/models/{tagged.pk}/").content.decode()

    assert 'href="?tag=team:payments"' in listed and "untagged" not in listed
    assert 'href="/models/?tag=team:payments">team: payments</a>' in page


def test_the_model_page_shows_alias_chips_on_the_versions_and_every_alias_change(owner, user, model):
    services.version_record(model=model, actor=user, data={"accuracy": 0.9})
    services.alias_set(model=model, actor=user, alias="champion", version_number=1)
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)
    services.alias_set(model=model, actor=user, alias="canary", version_number=1)
    services.alias_delete(model=model, actor=user, alias="canary")

    page = owner.get(f"/models/{model.pk}/").content.decode()

    assert (
        '<a class="chip alias" href="/models/?alias=champion" title="Models with the alias champion">@champion</a>'
        in page
    )
    assert "@champion → v2" in page
    timeline = page[page.index('id="timeline"') :]
    assert "moved v1 → v2" in timeline and "set to v1" in timeline and "removed from v1" in timeline


def test_the_owner_sets_and_removes_an_alias_on_the_model_page(owner, user, model):
    set_response = owner.post(f"/models/{model.pk}/aliases/", {"alias": "challenger", "version": "1"}, follow=True)

    assert MLModel.objects.get(pk=model.pk).aliases == {"challenger": 1}
    assert "@challenger now points at version 1." in set_response.content.decode()
    bad = owner.post(f"/models/{model.pk}/aliases/", {"alias": "Latest", "version": "1"}, follow=True).content.decode()
    assert "An alias is lowercase" in bad
    owner.post(f"/models/{model.pk}/aliases/challenger/delete/")
    assert MLModel.objects.get(pk=model.pk).aliases == {}


def test_others_get_a_403_and_a_protected_alias_needs_an_approver_on_the_page(owner, other, other_user, model):
    ProtectedAlias.objects.create(name="champion")

    assert other.post(f"/models/{model.pk}/aliases/", {"alias": "challenger", "version": "1"}).status_code == 403
    refused = owner.post(f"/models/{model.pk}/aliases/", {"alias": "champion", "version": "1"})
    assert refused.status_code == 403 and "only approvers and superusers" in refused.content.decode()
    other_user.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    assert other.post(f"/models/{model.pk}/aliases/", {"alias": "champion", "version": "1"}).status_code == 302
    assert MLModel.objects.get(pk=model.pk).aliases == {"champion": 1}


def test_the_filter_form_filters_by_tag_and_keeps_it_in_the_form(owner, user):
    MLModelFactory(owner=user, name="payments-model", tags={"team": "payments"})
    MLModelFactory(owner=user, name="risk-model", tags={"team": "risk"})

    page = owner.get("/models/?tag=team:payments").content.decode()

    assert 'id="id_tag" name="tag" value="team:payments"' in page
    assert "payments-model" in page and "risk-model" not in page
    refused = owner.get("/models/?tag=:payments", **HTMX)
    assert refused.status_code == 200 and "tag" in refused.content.decode()
