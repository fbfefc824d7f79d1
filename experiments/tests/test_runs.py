"""The rules of runs (experiments.runs and the run selectors): MLflow's, which the MLflow facade relies on."""

import math
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments import runs, selectors
from experiments.models import LifecycleStage, Run, RunLatestMetric, RunMetric, RunParam, RunStatus, RunTag
from experiments.tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="sweep")


@pytest.fixture
def run(experiment, user):
    return runs.run_create(experiment=experiment, actor=user, name="baseline", start_time=1_000)


def metric(key, value, *, step=0, timestamp=1_000):
    return {"key": key, "value": value, "step": step, "timestamp": timestamp}


def nothing_logged(run) -> bool:
    return not (
        RunMetric.objects.filter(run=run).exists()
        or RunLatestMetric.objects.filter(run=run).exists()
        or RunParam.objects.filter(run=run).exists()
        or RunTag.objects.filter(run=run).exclude(key=runs.RUN_NAME_TAG).exists()
    )


# --- creating and changing a run ------------------------------------------------------------------------


def test_create_starts_a_running_run_with_a_generated_name_repeated_in_its_name_tag(experiment, user):
    run = runs.run_create(experiment=experiment, actor=user)

    assert len(run.run_id) == 32 and int(run.run_id, 16) >= 0 and run.run_id == run.run_id.lower()
    assert (run.status, run.lifecycle_stage, run.user, run.end_time) == (RunStatus.RUNNING, "active", user, None)
    adjective, noun, number = run.name.split("-")
    assert adjective.isalpha() and noun.isalpha() and 0 <= int(number) <= 999
    assert RunTag.objects.get(run=run, key="mlflow.runName").value == run.name
    assert run.artifact_uri == f"mlflow-artifacts:/{experiment.pk}/{run.run_id}/artifacts"
    assert run.start_time > 1_700_000_000_000  # now, in epoch milliseconds


def test_create_takes_its_name_from_the_run_name_tag_and_refuses_a_conflicting_one(experiment, user):
    named = runs.run_create(experiment=experiment, actor=user, tags={"mlflow.runName": "from-tag", "team": "ml"})

    assert named.name == "from-tag"
    assert dict(named.tags.values_list("key", "value")) == {"mlflow.runName": "from-tag", "team": "ml"}
    with pytest.raises(
        ValidationError, match=re.escape("Both 'run_name' argument and 'mlflow.runName' tag are specified")
    ):
        runs.run_create(experiment=experiment, actor=user, name="a", tags=[{"key": "mlflow.runName", "value": "b"}])
    assert Run.objects.count() == 1


def test_only_the_experiment_owner_or_a_superuser_creates_runs_and_the_creator_is_the_run_user(
    experiment, other_user, superuser
):
    with pytest.raises(PermissionDenied):
        runs.run_create(experiment=experiment, actor=other_user)

    by_superuser = runs.run_create(experiment=experiment, actor=superuser)
    assert by_superuser.user == superuser


def test_the_creator_the_experiment_owner_and_a_superuser_change_a_run_nobody_else(
    experiment, user, superuser, other_user
):
    run = runs.run_create(experiment=experiment, actor=superuser, name="by-root")

    runs.run_log_batch(run=run, actor=user, params=[{"key": "a", "value": "1"}])  # the experiment's owner
    runs.run_log_batch(run=run, actor=superuser, params=[{"key": "b", "value": "2"}])  # its creator
    for change in (
        lambda: runs.run_log_batch(run=run, actor=other_user, params=[{"key": "c", "value": "3"}]),
        lambda: runs.run_update(run=run, actor=other_user, status=RunStatus.KILLED),
        lambda: runs.run_set_tag(run=run, actor=other_user, key="x", value="y"),
        lambda: runs.run_delete_tag(run=run, actor=other_user, key="mlflow.runName"),
        lambda: runs.run_delete(run=run, actor=other_user),
    ):
        with pytest.raises(PermissionDenied):
            change()

    run.refresh_from_db()
    assert (run.status, run.lifecycle_stage) == (RunStatus.RUNNING, "active")
    assert set(run.params.values_list("key", flat=True)) == {"a", "b"}


def test_update_sets_status_end_time_and_name_and_the_name_tag_follows(run, user):
    runs.run_update(run=run, actor=user, status=RunStatus.FINISHED, end_time=5_000, name="renamed")

    run.refresh_from_db()
    assert (run.status, run.end_time, run.name, run.duration_ms) == ("FINISHED", 5_000, "renamed", 4_000)
    assert run.tags.get(key="mlflow.runName").value == "renamed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"end_time": -1}, "end_time"),
        ({"end_time": "soon"}, "end_time"),
        ({"name": "x" * 251}, "name"),
        ({"name": "tab\there"}, "name"),
    ],
)
def test_update_refuses_bad_values_naming_the_field(run, user, change, field):
    with pytest.raises(ValidationError) as error:
        runs.run_update(run=run, actor=user, **change)

    assert field in error.value.message_dict
    run.refresh_from_db()
    assert (run.status, run.end_time, run.name) == ("RUNNING", None, "baseline")


def test_setting_the_run_name_tag_renames_the_run(run, user, captured_events):
    with captured_events() as events:
        runs.run_set_tag(run=run, actor=user, key="mlflow.runName", value="from-the-tag")
        runs.run_set_tag(run=run, actor=user, key="mlflow.runName", value="")  # MLflow: changes nothing

    run.refresh_from_db()
    assert run.name == run.tags.get(key="mlflow.runName").value == "from-the-tag"
    assert [(event.type, event.data.get("fields")) for event in events] == [
        ("run.logged", None),
        ("run.updated", ["name"]),
    ]


def test_tags_overwrite_and_delete_and_a_missing_tag_is_a_lookup_error(run, user):
    runs.run_set_tag(run=run, actor=user, key="mlflow.source.name", value="train.py")
    runs.run_log_batch(
        run=run,
        actor=user,
        tags=[{"key": "mlflow.source.name", "value": "a.py"}, {"key": "mlflow.source.name", "value": "b.py"}],
    )
    assert run.tags.get(key="mlflow.source.name").value == "b.py"  # the last of a batch wins

    runs.run_delete_tag(run=run, actor=user, key="mlflow.source.name")

    assert not run.tags.filter(key="mlflow.source.name").exists()
    with pytest.raises(LookupError, match=re.escape("No tag with name: mlflow.source.name in run with id")):
        runs.run_delete_tag(run=run, actor=user, key="mlflow.source.name")


def test_a_deleted_run_refuses_every_change_until_it_is_restored(run, user):
    runs.run_delete(run=run, actor=user)
    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.DELETED and run.deleted_time is not None

    for change in (
        lambda: runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 1.0)]),
        lambda: runs.run_update(run=run, actor=user, status=RunStatus.FINISHED),
        lambda: runs.run_set_tag(run=run, actor=user, key="x", value="y"),
        lambda: runs.run_delete_tag(run=run, actor=user, key="mlflow.runName"),
    ):
        with pytest.raises(ValidationError, match=re.escape("must be in the 'active' state. Current state is deleted")):
            change()
    assert nothing_logged(run)

    runs.run_restore(run=run, actor=user)
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 1.0)])
    assert run.latest_metrics.get().value == 1.0 and run.deleted_time is None


# --- params ---------------------------------------------------------------------------------------------


def test_a_param_logged_again_with_its_value_is_a_no_op_and_with_another_value_refuses_the_whole_batch(run, user):
    runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "0.1"}])
    again = runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "0.1"}])
    assert again.params == 0

    with pytest.raises(ValidationError) as error:
        runs.run_log_batch(
            run=run,
            actor=user,
            metrics=[metric("loss", 0.5)],
            params=[{"key": "depth", "value": "3"}, {"key": "lr", "value": "0.2"}],
            tags=[{"key": "team", "value": "ml"}],
        )

    (message,) = error.value.message_dict["params"]
    assert message.startswith(
        "Changing param values is not allowed. Param with key='lr' was already logged with value='0.1'"
    )
    assert dict(run.params.values_list("key", "value")) == {"lr": "0.1"}
    assert not RunMetric.objects.exists() and not run.tags.filter(key="team").exists()


def test_duplicate_param_keys_in_one_batch_are_refused(run, user):
    with pytest.raises(ValidationError, match=r"Duplicate parameter keys have been submitted: \['lr'\]"):
        runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "1"}, {"key": "lr", "value": "1"}])


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("params", {"key": "p", "value": "x" * 6001}),
        ("tags", {"key": "t", "value": "x" * 8001}),
        ("params", {"key": "k" * 251, "value": "1"}),
        ("params", {"key": "p", "value": 3}),
        ("params", {"key": "p", "value": "nul\x00"}),
        ("tags", {"key": "t"}),
        ("tags", {"key": "t", "value": "v", "extra": 1}),
    ],
)
def test_param_and_tag_keys_and_values_follow_mlflow_limits(run, user, field, entry):
    with pytest.raises(ValidationError) as error:
        runs.run_log_batch(run=run, actor=user, **{field: [entry]})

    assert field in error.value.message_dict
    assert nothing_logged(run)


def test_values_at_the_limits_are_kept(run, user):
    runs.run_log_batch(
        run=run, actor=user, params=[{"key": "k" * 250, "value": "x" * 6000}], tags=[{"key": "t", "value": "y" * 8000}]
    )

    assert run.params.get().value == "x" * 6000 and run.tags.get(key="t").value == "y" * 8000


@pytest.mark.parametrize("key", ["a$b", "../up", "/root", "a//b", "a/./b", "", ".", "new\nline", None, 7])
def test_metric_names_follow_mlflow_rules(run, user, key):
    with pytest.raises(ValidationError) as error:
        runs.run_log_batch(run=run, actor=user, metrics=[metric(key, 1.0)])

    assert "metric name" in error.value.message_dict["metrics"][0].lower()


@pytest.mark.parametrize("key", ["loss", "train/loss", "val loss", "f1:macro", "über-metrik", "a.b-c_d"])
def test_mlflow_metric_names_are_accepted(run, user, key):
    runs.run_log_batch(run=run, actor=user, metrics=[metric(key, 1.0)])

    assert run.latest_metrics.get().key == key


# --- batches --------------------------------------------------------------------------------------------


def many(prefix: str, count: int):
    if prefix == "metrics":
        return [metric(f"m{n}", float(n)) for n in range(count)]
    return [{"key": f"{prefix}{n}", "value": str(n)} for n in range(count)]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"metrics": many("metrics", 1001)}, "at most 1000 metrics. Got 1001 metrics"),
        ({"params": many("p", 101)}, "at most 100 params. Got 101 params"),
        ({"tags": many("t", 101)}, "at most 100 tags. Got 101 tags"),
        ({"metrics": many("metrics", 901), "params": many("p", 100)}, "at most 1000 metrics, params, and tags"),
    ],
)
def test_a_batch_over_mlflow_limits_is_refused_whole(run, user, batch, message):
    with pytest.raises(ValidationError, match=message):
        runs.run_log_batch(run=run, actor=user, **batch)

    assert nothing_logged(run)


def test_a_batch_at_the_limits_is_written(run, user):
    logged = runs.run_log_batch(
        run=run, actor=user, metrics=many("metrics", 800), params=many("p", 100), tags=many("t", 100)
    )

    assert (logged.metrics, logged.params, logged.tags) == (800, 100, 100)
    assert RunMetric.objects.filter(run=run).count() == 800


def test_one_bad_entry_refuses_the_whole_batch_naming_it(run, user):
    with pytest.raises(ValidationError) as error:
        runs.run_log_batch(
            run=run,
            actor=user,
            metrics=[metric("loss", 0.5), metric("acc", "high"), metric("ok", 1.0, step="x")],
            params=[{"key": "lr", "value": "0.1"}],
        )

    messages = error.value.message_dict["metrics"]
    assert messages[0].startswith("metrics[1]: Got invalid value 'high' for metric 'acc'")
    assert messages[1].startswith("metrics[2]: Got invalid step 'x'")
    assert nothing_logged(run)


def test_a_failure_inside_the_write_rolls_the_whole_batch_back(run, user, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(runs, "_write_tags", fail)
    with pytest.raises(RuntimeError):
        runs.run_log_batch(
            run=run,
            actor=user,
            metrics=[metric("loss", 0.5)],
            params=[{"key": "lr", "value": "1"}],
            tags=[{"key": "t", "value": "v"}],
        )

    assert nothing_logged(run)


# --- metrics --------------------------------------------------------------------------------------------


def test_nan_and_infinities_are_stored_and_read_back(run, user):
    runs.run_log_batch(
        run=run,
        actor=user,
        metrics=[
            metric("a", math.nan, step=0),
            metric("a", "NaN", step=1),
            metric("b", math.inf),
            metric("c", "-Infinity"),
        ],
    )

    history = {(point.key, point.step): point.metric_value for point in RunMetric.objects.filter(run=run)}
    assert math.isnan(history["a", 0]) and math.isnan(history["a", 1])
    assert history["b", 0] == math.inf and history["c", 0] == -math.inf
    latest = {point.key: point.metric_value for point in run.latest_metrics.all()}
    assert math.isnan(latest["a"]) and latest["b"] == math.inf and latest["c"] == -math.inf


@pytest.mark.parametrize("value", [10**400, True, None, "nan", "1.5", [1]])
def test_a_metric_value_that_is_no_double_is_refused(run, user, value):
    with pytest.raises(ValidationError, match="Please specify value as a valid double"):
        runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", value)])


def test_the_latest_metric_is_the_largest_step_then_timestamp_then_value(run, user):
    def latest():
        point = run.latest_metrics.get(key="loss")
        return (point.step, point.timestamp, point.metric_value)

    runs.run_log_batch(
        run=run,
        actor=user,
        metrics=[metric("loss", 0.5, step=2, timestamp=10), metric("loss", 0.9, step=1, timestamp=99)],
    )
    assert latest() == (2, 10, 0.5)  # a later step wins over a later time
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 0.7, step=2, timestamp=10)])
    assert latest() == (2, 10, 0.7)  # same step and time: the larger value
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 0.1, step=2, timestamp=11)])
    assert latest() == (2, 11, 0.1)  # same step: the later time
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 5.0, step=2, timestamp=5)])
    assert latest() == (2, 11, 0.1)  # an earlier point changes nothing
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 0.2, step=2, timestamp=11)])
    assert latest() == (2, 11, 0.2)
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", -1.0, step=2, timestamp=11)])
    assert latest() == (2, 11, 0.2)
    assert RunMetric.objects.filter(run=run, key="loss").count() == 7


def test_nan_counts_as_zero_when_the_latest_point_is_chosen(run, user):
    runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", -0.5), metric("loss", "NaN")])

    assert math.isnan(run.latest_metrics.get().metric_value)  # NaN (0) > -0.5 at the same step and time


def test_the_same_point_logged_twice_is_kept_once(run, user):
    point = metric("loss", 0.25, step=3, timestamp=7)
    runs.run_log_batch(run=run, actor=user, metrics=[point, point])
    runs.run_log_batch(run=run, actor=user, metrics=[point, {**point, "value": 0.3}])

    assert list(selectors.metric_history(run, "loss").values_list("value", flat=True)) == [0.25, 0.3]


def test_metric_history_is_in_step_order_and_defaults_step_to_zero(run, user):
    runs.run_log_batch(
        run=run,
        actor=user,
        metrics=[
            metric("loss", 3.0, step=2),
            metric("loss", 1.0, step=1),
            {"key": "loss", "value": 9.0, "timestamp": 1},
        ],
    )

    assert [(p.step, p.value) for p in selectors.metric_history(run, "loss")] == [(0, 9.0), (1, 1.0), (2, 3.0)]
    assert not selectors.metric_history(run, "never-logged").exists()


# --- reading and sorting --------------------------------------------------------------------------------


@pytest.fixture
def sweep(experiment, user):
    """Four runs: accuracy 0.7, NaN, 0.9 and none; lr "0.1", "0.01", none, "0.001"."""
    made = {}
    for n, (name, accuracy, lr) in enumerate(
        [("seventy", 0.7, "0.1"), ("nan", "NaN", "0.01"), ("ninety", 0.9, None), ("none", None, "0.001")]
    ):
        run = runs.run_create(experiment=experiment, actor=user, name=name, start_time=1_000 + n)
        runs.run_log_batch(
            run=run,
            actor=user,
            metrics=[] if accuracy is None else [metric("accuracy", accuracy)],
            params=[] if lr is None else [{"key": "lr", "value": lr}],
        )
        made[name] = run
    return made


def names(experiment, user, *order):
    return [run.name for run in selectors.runs_of(experiment, user=user, order_by=order)]


def test_runs_sort_by_a_metric_with_nan_after_numbers_and_missing_last_either_way(experiment, user, sweep):
    assert names(experiment, user, "metrics.accuracy") == ["seventy", "ninety", "nan", "none"]
    assert names(experiment, user, "-metrics.accuracy") == ["ninety", "seventy", "nan", "none"]


def test_runs_sort_by_a_param_or_an_attribute_and_newest_first_by_default(experiment, user, sweep):
    assert names(experiment, user, "params.lr") == ["none", "nan", "seventy", "ninety"]
    assert names(experiment, user, "-params.lr") == ["seventy", "nan", "none", "ninety"]
    assert names(experiment, user, "name") == ["nan", "ninety", "none", "seventy"]
    assert names(experiment, user) == ["none", "ninety", "nan", "seventy"]


def test_deleted_runs_are_listed_only_when_asked_for(experiment, user, sweep):
    runs.run_delete(run=sweep["nan"], actor=user)

    assert "nan" not in names(experiment, user)
    assert [r.name for r in selectors.runs_of(experiment, user=user, lifecycle="deleted")] == ["nan"]
    assert len(selectors.runs_of(experiment, user=user, lifecycle="all")) == 4


@pytest.mark.parametrize("term", ["metrics.", "colour", "-", "fields.x"])
def test_an_unknown_sort_key_is_refused_under_ordering(experiment, user, term):
    with pytest.raises(ValidationError) as error:
        selectors.runs_of(experiment, user=user, order_by=[term])

    assert "ordering" in error.value.message_dict


def test_run_get_finds_deleted_runs_and_answers_none_for_malformed_ids(run, user):
    runs.run_delete(run=run, actor=user)

    assert selectors.run_get(run.run_id) == run
    for bad in (run.run_id.upper(), run.run_id[:-1], "x" * 32, "", None):
        assert selectors.run_get(bad) is None


# --- events ---------------------------------------------------------------------------------------------


def test_each_change_publishes_one_event_after_commit_and_logging_one_per_batch(experiment, user, captured_events):
    with captured_events() as events:
        run = runs.run_create(experiment=experiment, actor=user, name="evented")
        runs.run_log_batch(run=run, actor=user, metrics=many("metrics", 50), params=many("p", 2), tags=many("t", 3))
        runs.run_update(run=run, actor=user, status=RunStatus.FINISHED, end_time=9_999_999_999_999)
        runs.run_delete(run=run, actor=user)
        runs.run_restore(run=run, actor=user)

    assert [event.type for event in events] == [
        "run.created",
        "run.logged",
        "run.updated",
        "run.deleted",
        "run.restored",
    ]
    created, logged, updated, *_ = events
    assert dict(created.data["run"]) == {"run_id": run.run_id, "name": "evented", "experiment_id": experiment.pk}
    assert dict(created.data["experiment"]) == {"id": experiment.pk, "name": "sweep"}
    assert (created.data["user_id"], created.actor["id"]) == (user.pk, user.pk)
    assert (logged.data["metrics"], logged.data["params"], logged.data["tags"]) == (50, 2, 3)
    assert (updated.data["fields"], updated.data["status"]) == (["end_time", "status"], "FINISHED")


def test_a_refused_or_rolled_back_change_publishes_nothing(run, user, other_user, captured_events):
    runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "1"}])

    with captured_events() as events:
        with pytest.raises(ValidationError):
            runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "2"}])
        with pytest.raises(PermissionDenied):
            runs.run_update(run=run, actor=other_user, status=RunStatus.FAILED)
        with pytest.raises(RuntimeError), transaction.atomic():
            runs.run_log_batch(run=run, actor=user, metrics=[metric("loss", 1.0)])
            raise RuntimeError("something later in the request failed")

    assert events == []
    assert nothing_logged(run) is False and not RunMetric.objects.exists()
