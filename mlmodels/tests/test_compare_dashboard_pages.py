"""The version compare (several versions side by side, deltas by direction, hyperparameters diffed key
by key, names, sizes, hashes) and the dashboard (scaled bars, weekly trend, best production models,
pending approvals, recent activity), with their query budgets."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.tests.factories import ApproverFactory
from experiments.tests.factories import ExperimentFactory
from mlmodels import selectors, services
from mlmodels.comparison import MINUS
from mlmodels.models import LifecycleEvent, ModelVersion, Stage
from mlmodels.selectors import DASHBOARD_COUNTS_KEY
from mlmodels.tests.factories import ApprovalRequestFactory, MLModelFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def stream(content: bytes, name: str = "model.bin"):
    data = io.BytesIO(content)
    data.name = name
    return data


@pytest.fixture
def model(user):
    """v1: no file; v2: a 2 KiB file, better accuracy, worse recall, changed hyperparameters, in an
    experiment; v3: the same as v2 but one hyperparameter."""
    model = MLModelFactory(
        owner=user,
        name="churn-model",
        accuracy=0.8,
        precision=0.8,
        recall=0.7,
        hyperparameters={"max_depth": 4, "dropout": 0.5, "criterion": "gini"},
    )
    experiment = ExperimentFactory(owner=user, name="churn-study")
    services.version_record(
        model=model,
        actor=user,
        data={
            "accuracy": 0.9,
            "recall": 0.6,
            "experiment": experiment,
            "hyperparameters": {"max_depth": 6, "criterion": "gini", "optimizer": {"lr": 0.01}, "use_gpu": True},
        },
    )
    services.model_attach_file(model=model, actor=user, file=stream(b"w" * 2048))
    return model


def cells(content: str, label: str) -> list[str]:
    """The cells of the compare table's row headed ``label``."""
    row = re.search(rf"<th scope=\"row\">(?:<code>)?{re.escape(label)}(?:</code>)?</th>(.*?)</tr>", content, re.S)
    assert row, f"no row {label!r}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)


# --- compare ---------------------------------------------------------------------------------------


def test_deltas_are_relative_to_the_first_version_and_coloured_by_direction(owner_client, model):
    content = owner_client.get(f"/models/{model.pk}/compare/?v=1&v=2", **HTMX).content.decode()

    accuracy, recall, precision = cells(content, "Accuracy"), cells(content, "Recall"), cells(content, "Precision")
    assert "delta" not in accuracy[0], "the baseline has no delta"
    assert 'class="delta delta-better"' in accuracy[1] and "▲" in accuracy[1] and "+0.1" in accuracy[1]
    assert 'class="delta delta-worse"' in recall[1] and "▼" in recall[1] and f"{MINUS}0.1" in recall[1]
    assert "(worse than the baseline)" in recall[1], "the direction is said in words too, not by colour alone"
    assert 'class="delta delta-same"' in precision[1] and "±0" in precision[1]
    assert "deltas are relative to the baseline, <strong>v1</strong>" in content


def test_the_baseline_is_the_first_version_named(owner_client, model):
    content = owner_client.get(f"/models/{model.pk}/compare/?v=2&v=1", **HTMX).content.decode()

    accuracy = cells(content, "Accuracy")
    assert "0.9" in accuracy[0] and "delta-worse" in accuracy[1] and f"{MINUS}0.1" in accuracy[1]
    assert re.search(r"v1 <a class=\"make-baseline\" href=\"/models/\d+/compare/\?v=1&amp;v=2\"", content)


def test_hyperparameters_are_diffed_key_by_key_as_json(owner_client, model):
    response = owner_client.get(f"/models/{model.pk}/compare/?v=1&v=2", **HTMX)
    content = response.content.decode()

    rows = {row.key: [cell.change for cell in row.cells] for row in response.context["compare"].hyperparameters}
    assert rows == {
        "criterion": ["", "same"],
        "dropout": ["", "removed"],
        "max_depth": ["", "changed"],
        "optimizer.lr": ["", "added"],
        "use_gpu": ["", "added"],
    }
    assert "<code>true</code>" in cells(content, "use_gpu")[1], "JSON, not Python's True"
    assert "<code>&quot;gini&quot;</code>" in cells(content, "criterion")[0]
    assert f"{MINUS} removed" in cells(content, "dropout")[1] and "absent" in cells(content, "dropout")[1]
    assert "+ added" in cells(content, "optimizer.lr")[1] and "≠ changed" in cells(content, "max_depth")[1]
    assert "{'max_depth'" not in content, "no Python repr"


def test_experiment_and_author_are_names_with_links_not_ids(owner_client, model, user):
    content = owner_client.get(f"/models/{model.pk}/compare/?v=1&v=2", **HTMX).content.decode()

    experiment = cells(content, "Experiment")
    assert "none" in experiment[0]
    experiment_id = model.versions.get(version_number=2).experiment_id
    assert f'<a href="/experiments/{experiment_id}/">churn-study</a>' in experiment[1]
    assert f'<a href="/models/?owner={user.pk}"' in cells(content, "Author")[1] and ">owner</a>" in content
    assert "Experiment id" not in content and "experiment_id" not in content


def test_sizes_are_human_and_hashes_short_with_a_copy_button(owner_client, model):
    digest = hashlib.sha256(b"w" * 2048).hexdigest()

    content = owner_client.get(f"/models/{model.pk}/compare/?v=2&v=3", **HTMX).content.decode()

    size = cells(content, "File size")
    assert "2.0\xa0KB" in size[1] and "2048" not in size[1].split(">", 1)[1]
    sha = cells(content, "SHA-256")[1]
    assert f'<code class="sha" title="{digest}">{digest[:12]}…</code>' in sha
    assert f'data-copy="{digest}"' in sha and ">Copy</button>" in sha
    assert "model.bin" in cells(content, "File")[1]


def test_the_model_page_loads_the_compare_script_and_styles(owner_client, model):
    content = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert "/static/js/compare.js" in content and "/static/css/pages.css" in content
    assert "<script>" not in content, "no inline script: the CSP forbids it"


def test_three_versions_side_by_side(owner_client, model):
    response = owner_client.get(f"/models/{model.pk}/compare/?v=1&v=2&v=3", **HTMX)
    content = response.content.decode()

    assert [version.version_number for version in response.context["compare"].versions] == [1, 2, 3]
    assert "Comparing <strong>3 versions</strong>" in content
    assert len(cells(content, "Accuracy")) == 3
    assert re.findall(r'<th scope="col" class="compare-version">v(\d+)', content) == ["1", "2", "3"]


def test_the_two_version_url_still_works(owner_client, model):
    response = owner_client.get(f"/models/{model.pk}/compare/?a=1&b=3")

    assert response.status_code == 200 and b"<html" in response.content
    assert [version.version_number for version in response.context["compare"].versions] == [1, 3]
    form = response.content.decode().split('id="compare-form"', 1)[1].split("</form>", 1)[0]
    assert re.findall(r'value="(\d+)" checked', form) == ["1", "3"], "the form shows what is compared"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("v=1", "Choose two or more versions to compare."),
        ("v=1&v=1", "Choose two or more versions to compare."),
        ("v=x&v=1", "“x” is not a version number."),
        ("v=1&v=2&v=3&v=4&v=5&v=6&v=7&v=8&v=9", "Choose at most 8 versions"),
        ("v=1&v=7", "There is no version 7 of churn-model."),
    ],
)
def test_a_choice_that_cannot_be_compared_says_why(owner_client, model, query, message):
    response = owner_client.get(f"/models/{model.pk}/compare/?{query}", **HTMX)

    assert response.status_code == 200
    assert message in response.content.decode()


def test_a_one_version_model_says_there_is_nothing_to_compare(owner_client, user):
    single = MLModelFactory(owner=user, name="lonely")

    page = owner_client.get(f"/models/{single.pk}/").content.decode()
    answer = owner_client.get(f"/models/{single.pk}/compare/?a=1&b=1", **HTMX).content.decode()

    assert "lonely has one version: nothing to compare yet." in page
    assert 'name="v"' not in page and "v1 with v1" not in page
    assert "lonely has one version: nothing to compare yet." in answer


def test_a_folder_version_shows_its_file_count_and_scan(owner_client, model, user):
    services.version_create_with_files(
        model=model, actor=user, files=[("weights/a.bin", stream(b"abc")), ("config.json", stream(b"{}"))]
    )

    content = owner_client.get(f"/models/{model.pk}/compare/?v=3&v=4", **HTMX).content.decode()

    assert "2 files" in cells(content, "Files")[1]
    assert "folder" in cells(content, "File")[1]
    scan = cells(content, "Scan")
    assert all("badge scan-" in cell or "not scanned" in cell for cell in scan)


def test_compare_query_budget_is_the_same_for_2_and_8_versions(
    owner_client, model, user, django_assert_max_num_queries
):
    for n in range(5):
        services.version_record(model=model, actor=user, data={"accuracy": 0.5 + n / 100})
    # The user, the model (+owner, experiment), the versions (+experiments, runs, authors); the
    # session comes from the cache.
    with django_assert_max_num_queries(3) as two:
        owner_client.get(f"/models/{model.pk}/compare/?v=1&v=2", **HTMX)
    with django_assert_max_num_queries(3) as eight:
        owner_client.get(f"/models/{model.pk}/compare/?" + "&".join(f"v={n}" for n in range(1, 9)), **HTMX)
    assert len(two) == len(eight)


# --- dashboard ---------------------------------------------------------------------------------------


def test_framework_bars_are_scaled_to_the_largest_count_with_the_count_as_text(owner_client, user):
    for framework, count in (("sklearn", 4), ("pytorch", 2), ("onnx", 1)):
        for _ in range(count):
            MLModelFactory(owner=user, framework=framework)

    response = owner_client.get("/")
    content = response.content.decode()

    assert [(value, count, share) for value, _, count, share in response.context["framework_bars"]] == [
        ("sklearn", 4, 100),
        ("pytorch", 2, 50),
        ("onnx", 1, 25),
    ]
    assert re.search(r'width: 100%"></span></span>\s*<span class="hbar-count">4<', content)
    assert re.search(r'width: 25%"></span></span>\s*<span class="hbar-count">1<', content)
    assert "/static/css/pages.css" in content


def test_the_trend_counts_versions_and_promotions_per_week(owner_client, user):
    model = MLModelFactory(owner=user)  # v1, this week
    services.model_attach_file(model=model, actor=user, file=stream(b"w"))  # v2
    services.version_record(model=model, actor=user, data={"accuracy": 0.5})  # v3
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)
    now = timezone.now()
    ModelVersion.objects.filter(version_number__in=[2, 3]).update(created_at=now - timedelta(weeks=2))
    ModelVersion.objects.filter(version_number=1).update(created_at=now - timedelta(weeks=20))  # too old
    LifecycleEvent.objects.filter(to_stage=Stage.STAGING).update(created_at=now - timedelta(weeks=2))

    trend = owner_client.get("/").context["trend"]

    assert len(trend) == 12
    assert trend[-1].start == (now.date() - timedelta(days=now.weekday()))
    assert [(week.versions, week.promotions) for week in trend][-3:] == [(2, 0), (0, 0), (0, 1)]
    assert sum(week.versions for week in trend) == 2
    assert trend[-3].versions_height == 100 and trend[-1].promotions_height == 50


def test_the_trend_has_a_table_equivalent(owner_client, user):
    MLModelFactory(owner=user)

    content = owner_client.get("/").content.decode()

    assert 'role="img" aria-label="Versions registered and promotions to production per week' in content
    assert "<summary>Counts per week</summary>" in content
    assert content.count('<td class="num">') >= 24


def promote(model):
    services.model_attach_file(model=model, actor=model.owner, file=stream(b"w"))
    services.lifecycle_move(model=model, actor=model.owner, to_stage=Stage.STAGING)
    services.lifecycle_move(model=model, actor=model.owner, to_stage=Stage.PRODUCTION)


def test_best_production_models_by_accuracy(owner_client, user):
    for n, accuracy in enumerate((0.70, 0.95, 0.80, 0.90, 0.60, 0.85)):
        promote(MLModelFactory(owner=user, name=f"prod-{n}", accuracy=accuracy))
    promote(MLModelFactory(owner=user, name="no-accuracy", accuracy=None))
    services.lifecycle_move(
        model=MLModelFactory(owner=user, name="staged-star", accuracy=0.99), actor=user, to_stage=Stage.STAGING
    )

    response = owner_client.get("/")

    assert [model.name for model in response.context["best_production"]] == [
        "prod-1",
        "prod-3",
        "prod-5",
        "prod-2",
        "prod-0",
    ]
    panel = response.content.decode().split('id="best-production-title"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<a href="/models/\d+/">prod-1</a>', panel) and "0.95" in panel
    assert "staged-star" not in panel and "prod-4" not in panel and "no-accuracy" not in panel


def test_pending_approvals_with_a_link_to_the_inbox(settings, owner_client, user):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    model = MLModelFactory(owner=user, name="awaiting")
    for _ in range(7):
        ApprovalRequestFactory(model=model)

    response = owner_client.get("/")
    panel = response.content.decode().split('id="dashboard-approvals"', 1)[1].split("</section>", 1)[0]

    assert len(response.context["pending_approvals"]) == 5
    assert panel.count("point @protected-") == 5 and "awaiting" in panel
    assert '<a href="/approvals/">All 7 in the approvals inbox</a>' in panel


def test_no_approvals_panel_when_approvals_are_off(owner_client, user):
    content = owner_client.get("/").content.decode()

    assert 'id="dashboard-approvals"' not in content


def test_recent_activity_lists_moves_aliases_and_versions_newest_first(owner_client, user):
    model = MLModelFactory(owner=user, name="active")
    services.version_record(model=model, actor=user, data={"accuracy": 0.5}, note="retrained")
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    activity = owner_client.get("/").context["activity"]
    fragment = owner_client.get("/?part=activity", **HTMX).content.decode()

    assert [entry.kind for entry in activity][:4] == ["lifecycle", "alias", "version", "version"]
    assert fragment.lstrip().startswith('<section class="panel" id="dashboard-activity"')
    assert "@champion set to v2" in fragment and "version 2 registered" in fragment and "“retrained”" in fragment
    assert 'badge stage-staging">staging</span>' in fragment and "by owner" in fragment
    assert "<html" not in fragment and 'id="dashboard-live"' not in fragment


def test_the_activity_panel_refreshes_live(owner_client, user):
    content = owner_client.get("/").content.decode()

    region = re.search(r'<section class="panel" id="dashboard-activity"[^>]*>', content).group(0)
    assert 'data-live-events="lifecycle.changed alias.set alias.deleted version.created version.deleted"' in region
    assert 'data-live-url="/?part=activity"' in region


def test_the_activity_has_one_entry_per_event_however_many(owner_client, user):
    model = MLModelFactory(owner=user, name="busy")
    for n in range(15):
        services.version_record(model=model, actor=user, data={"accuracy": n / 20})

    activity = selectors.recent_activity(user=user)

    assert len(activity) == 10
    assert [entry.to_version for entry in activity] == list(range(16, 6, -1))


@pytest.mark.parametrize(
    ("url", "headers", "budget"),
    [
        # The user (the session comes from the cache); the counts (two, cached after the first request:
        # counted here); the trend; the best production models; the recent models (+owners); the
        # activity; the pending approvals; the approver's permissions (two) and the navigation's count.
        # The fragment of #dashboard-live leaves out the activity, the approvals and the navigation.
        ("/", {}, 11),
        ("/", HTMX, 6),
        ("/?part=activity", HTMX, 2),
        ("/?part=approvals", HTMX, 2),
    ],
)
def test_dashboard_query_budgets_hold_for_many_rows(
    settings, client, url, headers, budget, django_assert_max_num_queries
):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    approver = ApproverFactory(username="approver")
    client.force_login(approver)

    def queries() -> int:
        cache.delete(DASHBOARD_COUNTS_KEY)  # counted, as on the first request after a change
        with django_assert_max_num_queries(budget) as captured:
            response = client.get(url, **headers)
        assert response.status_code == 200
        return len(captured)

    def seed(count: int, first: int) -> None:
        for n in range(first, first + count):
            model = MLModelFactory(owner=approver, name=f"m-{n}", framework=("sklearn", "onnx")[n % 2])
            services.alias_set(model=model, actor=approver, alias="canary", version_number=1)
            services.lifecycle_move(model=model, actor=approver, to_stage=Stage.STAGING)
            ApprovalRequestFactory(model=model)

    seed(2, 0)
    few = queries()
    seed(12, 2)
    many = queries()
    assert few == many
