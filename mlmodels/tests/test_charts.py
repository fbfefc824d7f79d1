"""The model page's metric charts (mlmodels.charts): what they draw, mark and say, and the page around them."""

import itertools
import math
import re
from types import SimpleNamespace

import pytest

from mlmodels import services
from mlmodels.charts import PAD, fmt, line_chart, metric_charts, nice_range
from mlmodels.tests.factories import MLModelFactory


def version(number, accuracy=None, precision=None, recall=None, f1_score=None):
    return SimpleNamespace(
        version_number=number, accuracy=accuracy, precision=precision, recall=recall, f1_score=f1_score
    )


VERSIONS = [
    version(1, 0.81),
    version(2, 0.83, recall=0.7),
    version(3, 0.86, recall=0.74),
    version(4, 0.85, recall=0.75),
]


# --- the drawing ----------------------------------------------------------------------------------


def test_only_recorded_metrics_are_drawn_and_the_cards_still_get_all_four():
    charts = metric_charts(VERSIONS)

    assert [metric.label for metric in charts.recorded] == ["Accuracy", "Recall"]
    assert [metric.label for metric in charts.unrecorded] == ["Precision", "F1 score"]
    assert [series.key for series in charts.overlay.series] == ["accuracy", "recall"]
    # The cards iterate every metric for its latest value, recorded or not.
    assert [(chart.label, chart.latest) for chart in charts] == [
        ("Accuracy", 0.85),
        ("Precision", None),
        ("Recall", 0.75),
        ("F1 score", None),
    ]


def test_no_metric_recorded_draws_no_chart():
    charts = metric_charts([version(1), version(2)])

    assert charts.overlay is None and charts.recorded == []


def test_versions_are_the_x_axis_in_order_with_the_current_version_and_aliases_marked():
    charts = metric_charts(VERSIONS, aliases={"champion": 3, "challenger": 4, "stale": 99})
    overlay = charts.overlay

    assert [tick.label for tick in overlay.x_ticks] == ["v1", "v2", "v3", "v4"]
    xs = [tick.x for tick in overlay.x_ticks]
    assert xs == sorted(xs) and xs[0] == PAD and xs[-1] == 100 - PAD
    marks = {tick.label: [mark.text for mark in tick.marks] for tick in overlay.x_ticks}
    assert marks == {"v1": [], "v2": [], "v3": ["@champion"], "v4": ["current", "@challenger"]}
    assert [tick.label for tick in overlay.x_ticks if tick.current] == ["v4"]
    assert {(rule.x, rule.kind) for rule in overlay.rules} == {(xs[2], "alias"), (xs[3], "current")}
    # An alias of a version not in the list (deleted) marks nothing.
    assert "@stale" not in str(overlay)


def test_each_column_carries_its_values_for_hover_and_for_screen_readers():
    overlay = metric_charts(VERSIONS, aliases={"champion": 3}).overlay

    v1, _, v3, v4 = overlay.columns
    assert v1.label == "v1: Accuracy 0.81"  # recall was not recorded for v1: not listed
    assert v3.label == "v3 · @champion: Accuracy 0.86, Recall 0.74"
    assert [(line.label, line.value) for line in v3.lines] == [("Accuracy", "0.86"), ("Recall", "0.74")]
    # A tooltip slides along its point by the point's share of the width, so it stays inside the plot.
    assert -0.1 * v1.tip_width < v1.tip_x <= 0 and v4.tip_x < -0.9 * v4.tip_width
    # The columns tile the plot: hovering anywhere over it finds a version.
    assert v1.left == 0 and math.isclose(v4.left + v4.width, 100)
    assert all(math.isclose(a.left + a.width, b.left, abs_tol=0.01) for a, b in itertools.pairwise(overlay.columns))


def test_the_small_multiple_of_a_metric_names_each_value():
    accuracy = metric_charts(VERSIONS).recorded[0].chart

    assert accuracy.title == "Accuracy by version" and not accuracy.interactive
    assert [column.heading for column in accuracy.columns] == ["v1: 0.81", "v2: 0.83", "v3: 0.86", "v4: 0.85"]
    assert len(accuracy.series[0].points) == 4


def test_the_y_range_hugs_the_values_in_round_steps_within_0_and_1():
    overlay = metric_charts(VERSIONS).overlay

    labels = [label for _, label in overlay.y_ticks]
    assert labels == ["0.65", "0.70", "0.75", "0.80", "0.85", "0.90"]  # 0.7 to 0.86, with air
    ys = [y for y, _ in overlay.y_ticks]
    assert ys == sorted(ys, reverse=True)  # higher values higher up
    assert nice_range([0.1, 0.99], unit=True)[:2] == (0.0, 1.0)
    assert nice_range([0.5]) == (0.45, 0.55, 0.025)
    assert nice_range([1200, 5600])[:2] == (0, 6000)


def test_a_missing_value_leaves_a_point_out_and_the_line_joins_its_neighbours():
    chart = line_chart(
        id="c",
        title="t",
        x_title="x",
        x_heading="x",
        labels=["a", "b", "c", "d"],
        series=[("loss", "loss", [1.0, None, float("nan"), 0.5])],
    )

    series = chart.series[0]
    assert [point.text for point in series.points] == ["a: 1", "d: 0.5"]
    assert len(series.segments) == 1
    assert [row.values for row in chart.rows] == [["1"], ["—"], ["NaN"], ["0.5"]]
    assert [column.heading for column in chart.columns] == ["a: 1", "c: NaN", "d: 0.5"]


def test_many_positions_thin_the_labels_but_keep_the_marked_ones():
    versions = [version(n, 0.5 + n / 100) for n in range(1, 41)]

    overlay = metric_charts(versions, aliases={"champion": 17}).overlay

    shown = [tick.label for tick in overlay.x_ticks]
    assert len(shown) <= 16 and {"v1", "v17", "v40"} <= set(shown)
    assert any(tick.minor for tick in overlay.x_ticks)
    assert not any(tick.minor for tick in overlay.x_ticks if tick.label in ("v1", "v17", "v40"))


def test_values_read_with_four_significant_digits():
    assert [fmt(v) for v in (0.85, 0.123456, 1234.5678, None, float("nan"), float("inf"))] == [
        "0.85",
        "0.1235",
        "1235",
        "—",
        "NaN",
        "∞",
    ]


# --- the page -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_model_page_draws_the_overlay_with_a_legend_marks_and_a_table(owner_client, user):
    model = MLModelFactory(owner=user, name="churn", accuracy=0.81, precision=None, recall=None, f1_score=None)
    services.version_record(model=model, actor=user, data={"accuracy": 0.86, "recall": 0.74})
    services.alias_set(model=model, actor=user, alias="challenger", version_number=1)

    html = owner_client.get(f"/models/{model.pk}/").content.decode()

    panel = html[html.index('id="charts-panel"') :]
    panel = panel[: panel.index("</section>")]
    assert 'aria-label="Metrics by version"' in panel
    assert 'aria-label="Accuracy by version"' in panel and 'aria-label="Recall by version"' in panel
    assert "Precision by version" not in panel and "F1 score by version" not in panel
    assert "Not recorded by any version: Precision, F1 score." in panel
    legend = panel[panel.index('class="viz-legend"') : panel.index("</ul>")]
    assert "Accuracy" in legend and "Recall" in legend and "Precision" not in legend
    assert ">@challenger</text>" in panel and 'class="viz-mark viz-mark-current"' in panel
    assert 'aria-label="v1 · @challenger: Accuracy 0.81"' in panel
    assert "v2: 0.86" in panel
    assert re.search(r"<summary>Metrics by version as a table</summary>", panel)
    assert "/static/css/charts.css" in html and "/static/js/charts.js" in html


@pytest.mark.django_db
def test_the_refreshed_charts_come_without_a_second_stylesheet(owner_client, user):
    model = MLModelFactory(owner=user, name="churn", accuracy=0.81)

    fragment = owner_client.get(f"/models/{model.pk}/parts/figures/", HTTP_HX_REQUEST="true").content.decode()

    assert 'id="charts-panel" aria-labelledby="charts-heading" hx-swap-oob="true"' in fragment
    assert "charts.css" not in fragment and "charts.js" not in fragment


@pytest.mark.django_db
def test_a_model_without_metrics_says_so_instead_of_drawing_empty_frames(owner_client, user):
    model = MLModelFactory(owner=user, name="bare", accuracy=None, precision=None, recall=None, f1_score=None)

    html = owner_client.get(f"/models/{model.pk}/").content.decode()

    assert "No version recorded a metric yet" in html
    assert "by version" not in html.split('id="charts-panel"')[1].split("</section>")[0]


def test_labels_slant_only_when_they_would_not_fit_side_by_side_on_a_phone():
    def chart(labels):
        return line_chart(
            id="c", title="t", x_title="x", x_heading="x", labels=labels, series=[("m", "m", [0.5] * len(labels))]
        )

    assert not chart([f"lr-{n}" for n in range(5)]).rotate
    assert not metric_charts([version(n, 0.5) for n in range(1, 41)]).overlay.rotate
    slanted = chart([f"sweep-lr-{n:02d}-batch-64" for n in range(30)])
    assert slanted.rotate
    assert {tick.label for tick in slanted.x_ticks} >= {"sweep-lr-00-ba…", "sweep-lr-29-ba…"}
    assert {tick.full for tick in slanted.x_ticks} >= {"sweep-lr-00-batch-64"}
