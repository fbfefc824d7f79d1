"""Each metric in the model page's versions table with its change from the version below it: the
rule (``comparison.version_deltas``, over versions already read) and the table that shows it."""

import re

import pytest
from django.urls import reverse

from mlmodels import services
from mlmodels.comparison import EPSILON, MINUS, version_deltas
from mlmodels.models import METRIC_FIELDS, ModelVersion
from mlmodels.tests.factories import MLModelFactory


def version(number: int, **metrics) -> ModelVersion:
    return ModelVersion(
        version_number=number, **{"accuracy": 0.8, "precision": 0.7, "recall": 0.6, "f1_score": 0.65, **metrics}
    )


def accuracy(cells):
    return cells[METRIC_FIELDS.index("accuracy")]


def test_a_rise_is_better_and_a_fall_worse_than_the_version_below():
    rows = version_deltas([version(3, accuracy=0.9), version(2, accuracy=0.8, recall=0.7), version(1, recall=0.6)])

    rise = accuracy(rows[0])
    assert (rise.direction, rise.delta_text, rise.previous) == ("better", "+0.1", 2)
    assert rise.direction_label == "better than v2"
    fall = rows[0][METRIC_FIELDS.index("recall")]
    assert (fall.direction, fall.delta_text, fall.arrow) == ("worse", f"{MINUS}0.1", "▼")
    assert fall.direction_label == "worse than v2"
    assert rows[1][METRIC_FIELDS.index("recall")].direction == "better"


def test_a_change_within_epsilon_is_the_same():
    rows = version_deltas([version(2, accuracy=0.8 + EPSILON / 2), version(1, accuracy=0.8)])

    same = accuracy(rows[0])
    assert (same.direction, same.delta_text, same.arrow) == ("same", "±0", "=")
    assert same.direction_label == "the same as v1"


def test_no_delta_when_either_value_is_missing():
    rows = version_deltas([version(3, accuracy=None), version(2, accuracy=0.8), version(1, accuracy=None)])

    assert accuracy(rows[0]).value is None and accuracy(rows[0]).direction == ""
    assert accuracy(rows[1]).value == 0.8
    assert (accuracy(rows[1]).delta, accuracy(rows[1]).direction, accuracy(rows[1]).delta_text) == (None, "", "")


def test_the_oldest_version_has_no_delta_and_the_next_older_one_that_exists_is_the_reference():
    # Version 2 is gone: version 3 differs from version 1.
    rows = version_deltas([version(3, accuracy=0.7), version(1, accuracy=0.8)])

    assert accuracy(rows[0]).previous == 1 and accuracy(rows[0]).direction == "worse"
    assert all(cell.direction == "" and cell.previous is None for cell in rows[1])
    assert [cell.value for cell in rows[1]] == [0.8, 0.7, 0.6, 0.65]
    assert version_deltas([]) == []


@pytest.mark.django_db
def test_the_versions_table_shows_the_rise_from_the_previous_version(owner_client, user, django_assert_max_num_queries):
    model = MLModelFactory(owner=user, name="churn", accuracy=0.8)
    services.version_record(model=model, actor=user, data={"accuracy": 0.85})

    # As test_pages budgets the model page: the deltas are worked out from the versions already read.
    with django_assert_max_num_queries(6):
        response = owner_client.get(reverse("model-detail", args=[model.pk]))

    content = response.content.decode()
    row = re.search(r'<tr id="version-2".*?</tr>', content, flags=re.DOTALL).group(0)
    delta = re.search(r'<span class="delta delta-better" title="better than v1">(.*?)</span></span>', row)
    assert delta, row
    assert "+0.05" in delta.group(1) and "(better than v1)" in delta.group(1)
    oldest = re.search(r'<tr id="version-1".*?</tr>', content, flags=re.DOTALL).group(0)
    assert 'class="delta' not in oldest


@pytest.mark.django_db
def test_the_versions_fragment_shows_the_deltas_too(owner_client, user):
    model = MLModelFactory(owner=user, name="churn", accuracy=0.8)
    services.version_record(model=model, actor=user, data={"accuracy": 0.75})

    response = owner_client.get(reverse("model-versions", args=[model.pk]), HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="versions"')
    assert 'class="delta delta-worse" title="worse than v1"' in content
    assert f"{MINUS}0.05" in content
