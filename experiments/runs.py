"""The one write path for runs (called by API v1, the pages, the admin and the MLflow facade).

The rules are MLflow's own (its SQL tracking store and ``mlflow/utils/validation.py``), so that the
MLflow-compatible API maps each tracking call onto one function here and the two APIs never disagree:

- a run starts RUNNING, with a name (a generated "adjective-noun-123" when none is given) that the
  tag ``mlflow.runName`` repeats; setting that tag renames the run, as in MLflow;
- a param is written once: its key logged again with another value is refused ("Changing param
  values is not allowed"), with the same value it is a no-op;
- a metric point logged twice (same key, value, timestamp and step) is kept once; NaN and the
  infinities are values like any other;
- the latest point of a metric is the one with the largest (step, timestamp, value), NaN counting
  as 0 there as in MLflow's store;
- a batch holds at most 1000 metrics, 100 params, 100 tags and 1000 entries in all; it is validated
  whole first and then written in one transaction: all of it or nothing;
- a deleted run refuses every change but a restore ("must be in the 'active' state");
- a run is created by its experiment's owner or a superuser, and changed by its creator, the
  experiment's owner or a superuser.

Refusals: ValidationError (bad input, 400; MLflow's INVALID_PARAMETER_VALUE), PermissionDenied (403),
LookupError (a tag to delete that is not there; MLflow's RESOURCE_DOES_NOT_EXIST). Each change
publishes its event (``experiments.events``) once it commits.
"""

from __future__ import annotations

import math
import posixpath
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments.events import run_created, run_deleted, run_logged, run_restored, run_updated
from experiments.models import (
    Experiment,
    LifecycleStage,
    Run,
    RunLatestMetric,
    RunMetric,
    RunParam,
    RunStatus,
    RunTag,
    new_run_id,
)
from registry.events import publish
from registry.validators import LONE_SURROGATE as LONE_SURROGATES
from registry.validators import lone_surrogate, validate_printable_name

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_RUN_NAME_LENGTH = 250
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTRIES_PER_BATCH = 1000
RUN_NAME_TAG = "mlflow.runName"
# How JSON carries what it has no number for (the protobuf JSON mapping MLflow's wire uses).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# A refused batch names at most this many of its bad entries: enough to fix them, not a wall of text.
MAX_REPORTED_ERRORS = 10

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_VALID_NAME = re.compile(r"[/\w.\- :]*")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) "
    "and slashes (/)."
)
_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "gentle", "glad", "grand", "keen",
    "lively", "lucky", "merry", "nimble", "polite", "quiet", "rapid", "shy", "silent", "steady", "swift", "witty",
)  # fmt: skip
_NOUNS = (
    "badger", "bee", "crane", "deer", "dove", "falcon", "finch", "fox", "gecko", "hare", "heron", "lark", "lynx",
    "mole", "newt", "otter", "owl", "panda", "robin", "seal", "shrew", "sparrow", "swan", "wolf",
)  # fmt: skip


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def generate_run_name() -> str:
    """A name for a run created without one, shaped like MLflow's ("adjective-noun-123")."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"  # noqa: S311 (a name, not a secret)


# --- validation ---------------------------------------------------------------------------------------


def _shown(text: str) -> str:
    """Client text echoed in a message: cut short, and encodable (a lone surrogate cannot be sent as
    UTF-8, so an echo of it would fail the very answer that refuses it)."""
    return LONE_SURROGATES.sub("\ufffd", text[:MAX_KEY_LENGTH])


def _key_error(kind: str, key: object) -> str | None:
    """MLflow's rule for the name of a metric, param or tag; None when ``key`` follows it."""
    if not isinstance(key, str):
        return f"{kind.capitalize()} name must be a string. A key name must be provided."
    if not _VALID_NAME.fullmatch(key):
        return f"Invalid {kind} name: '{_shown(key)}'. {_BAD_CHARACTERS}"
    normalized = posixpath.normpath(key)
    if normalized != key or normalized == "." or normalized.startswith(("..", "/")):
        return (
            f"Invalid {kind} name: '{_shown(key)}'. Names may be treated as files in certain cases, and must not "
            f"resolve to other names when treated as such. This name would resolve to '{_shown(normalized)}'"
        )
    if len(key) > MAX_KEY_LENGTH:
        return (
            f"{kind.capitalize()} name '{_shown(key)}' had length {len(key)}, which exceeded length limit of "
            f"{MAX_KEY_LENGTH}"
        )
    return None


def _text_error(label: str, value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return f"{label} must be a string."
    if len(value) > limit:
        return f"{label} '{_shown(value)}' had length {len(value)}, which exceeded length limit of {limit}"
    if "\x00" in value:
        return f"{label} must not contain NUL characters (\\u0000)."
    if char := lone_surrogate(value):
        return f"{label} contains text that is not valid Unicode (a lone surrogate, U+{ord(char):04X})."
    return None


def _long(value: object) -> int | None:
    """A 64-bit integer, given as a number or as the decimal string proto3's JSON writes it as."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _LONG_MIN <= value <= _LONG_MAX:
        return value
    return None


def _double(value: object) -> float | None:
    """A metric value: a number, or "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return NON_FINITE.get(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any double
            return None
    return None


def _time(label: str, value: object) -> tuple[int | None, str | None]:
    parsed = _long(value)
    if parsed is None or parsed < 0:
        return None, f"{label} must be a nonnegative 64-bit integer (epoch milliseconds); got {value!r}."
    return parsed, None


def name_error(name: object) -> str | None:
    error = _text_error("Run name", name, MAX_RUN_NAME_LENGTH)
    if error is None:
        try:
            validate_printable_name(name)
        except ValidationError as invalid:
            return f"Run name: {invalid.messages[0]}"
    return error


@dataclass(frozen=True)
class _Point:
    key: str
    value: float  # as stored: 0 for NaN
    is_nan: bool
    timestamp: int
    step: int


def _entries(field: str, items: object, fields: tuple[str, ...], errors: dict[str, list[str]]) -> list[Mapping]:
    """``items`` as a list of objects with only ``fields``; what is not is reported under ``field``."""
    if items is None:
        return []
    if isinstance(items, Mapping | str | bytes) or not isinstance(items, Iterable):
        errors[field] = [f"Must be a list of objects with {', '.join(fields)}."]
        return []
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            errors.setdefault(field, []).append(f"{field}[{index}] must be an object with {', '.join(fields)}.")
            continue
        unknown = sorted(_shown(str(name)) for name in item if name not in fields)
        if unknown:
            errors.setdefault(field, []).append(
                f"{field}[{index}]: unknown field {', '.join(unknown)}. Accepted fields: {', '.join(fields)}."
            )
            continue
        entries.append(item)
    return entries


def _metric_points(metrics: list[Mapping], errors: list[str]) -> list[_Point]:
    points: dict[_Point, None] = {}  # ordered, and a point logged twice in one batch is kept once
    for index, item in enumerate(metrics):
        key = item.get("key")
        if message := _key_error("metric", key):
            errors.append(f"metrics[{index}]: {message}")
            continue
        raw_timestamp = item.get("timestamp")
        timestamp, message = _time("Timestamp", now_ms() if raw_timestamp is None else raw_timestamp)
        value = _double(item.get("value"))
        if value is None:
            errors.append(
                f"metrics[{index}]: Got invalid value {item.get('value')!r} for metric '{key}' (timestamp="
                f"{raw_timestamp}). Please specify value as a valid double (64-bit floating point), or as "
                '"NaN", "Infinity" or "-Infinity".'
            )
            continue
        if message:
            errors.append(f"metrics[{index}]: {message}")
            continue
        raw_step = item.get("step")
        step = 0 if raw_step is None else _long(raw_step)
        if step is None:
            errors.append(
                f"metrics[{index}]: Got invalid step {item.get('step')!r} for metric '{key}'. Step must be a valid "
                "long (64-bit integer)."
            )
            continue
        is_nan = math.isnan(value)
        points[_Point(key, 0.0 if is_nan else value, is_nan, timestamp, step)] = None
    return list(points)


def _params(params: list[Mapping], errors: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    duplicates: list[str] = []
    for index, item in enumerate(params):
        key, value = item.get("key"), item.get("value")
        message = _key_error("param", key) or _text_error("Param value", value, MAX_PARAM_VALUE_LENGTH)
        if message:
            errors.append(f"params[{index}]: {message}")
        elif key in values:
            duplicates.append(key)
        else:
            values[key] = value
    if duplicates:
        errors.append(
            f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure the request contains only "
            "one param value per param key."
        )
    return values


def _tags(tags: list[Mapping], errors: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, item in enumerate(tags):
        key, value = item.get("key"), item.get("value")
        message = _key_error("tag", key) or _text_error("Tag value", value, MAX_TAG_VALUE_LENGTH)
        if message is None and key == RUN_NAME_TAG and value:
            message = name_error(value)
        if message:
            errors.append(f"tags[{index}]: {message}")
        elif key == RUN_NAME_TAG and not value:
            continue  # MLflow applies this tag through runs/update, where an empty name changes nothing
        else:
            values[key] = value  # the last value of a key wins, as in MLflow's store
    return values


def _raise_if(errors: dict[str, list[str]]) -> None:
    errors = {field: messages[:MAX_REPORTED_ERRORS] for field, messages in errors.items() if messages}
    if errors:
        raise ValidationError(errors)


def _batch_limit_error(kind: str, limit: int, count: int) -> str | None:
    if count <= limit:
        return None
    return (
        f"A batch logging request can contain at most {limit} {kind}. Got {count} {kind}. Please split up "
        f"{kind} across multiple requests and try again."
    )


def _tag_entries(tags: Mapping[str, str] | Iterable[Mapping] | None) -> list:
    """Tags given as ``{key: value}`` or as MLflow's list of ``{key, value}``."""
    if isinstance(tags, Mapping):
        return [{"key": key, "value": value} for key, value in tags.items()]
    return tags or []


def _validated(field: str, items: Mapping[str, str] | Iterable[Mapping] | None, read) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    entries = _entries(field, _tag_entries(items), ("key", "value"), errors)
    if message := _batch_limit_error(field, MAX_PARAMS_TAGS_PER_BATCH, len(entries)):
        errors.setdefault(field, []).append(message)
    values = read(entries, errors.setdefault(field, []))
    _raise_if(errors)
    return values


def validated_params(params: Mapping[str, str] | Iterable[Mapping] | None) -> dict[str, str]:
    """``params`` ({key: value} or [{key, value}]) checked as a batch's are: {key: value}, or a
    ValidationError naming the bad ones (a logged model's params follow a run's rules)."""
    return _validated("params", params, _params)


def validated_tags(tags: Mapping[str, str] | Iterable[Mapping] | None) -> dict[str, str]:
    """``tags`` checked as a batch's are, the last value of a key winning."""
    return _validated("tags", tags, _tags)


# --- access -------------------------------------------------------------------------------------------


def _ensure_can_change(run: Run, actor) -> None:
    if not run.can_change(actor):
        raise PermissionDenied("Only the run's creator, the experiment's owner or a superuser can change this run.")


def _ensure_active(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ValidationError(
            f"The run {run.run_id} must be in the 'active' state. Current state is {run.lifecycle_stage}.",
            code="run_not_active",
        )


def _locked(run: Run) -> Run:
    """The run's row, locked until the transaction ends: concurrent writes to one run queue up, and
    each sees the others' params and latest metrics (and a delete that came first)."""
    locked = Run.objects.select_for_update().get(pk=run.pk)
    _ensure_active(locked)
    return locked


# --- services -----------------------------------------------------------------------------------------


def run_create(
    *,
    experiment: Experiment,
    actor,
    name: str | None = None,
    start_time: int | None = None,
    tags: Mapping[str, str] | Iterable[Mapping] | None = None,
) -> Run:
    """A new RUNNING run of ``experiment`` created by ``actor`` (its ``user``), starting at
    ``start_time`` (epoch ms; now by default), with ``tags`` ({key: value} or [{key, value}])."""
    if not experiment.can_change(actor):
        raise PermissionDenied("Only the experiment's owner or a superuser can create runs in it.")
    errors: dict[str, list[str]] = {}
    tag_items = _entries("tags", _tag_entries(tags), ("key", "value"), errors)
    if message := _batch_limit_error("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tag_items)):
        errors.setdefault("tags", []).append(message)
    tag_values = _tags(tag_items, errors.setdefault("tags", []))
    if name is not None and name != "" and (message := name_error(name)):
        errors["name"] = [message]
    if start_time is None:
        start_time = now_ms()
    else:
        start_time, message = _time("Start time", start_time)
        if message:
            errors["start_time"] = [message]
    name_tag = tag_values.get(RUN_NAME_TAG)
    if name and name_tag and name != name_tag:
        errors.setdefault("name", []).append(
            f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different values "
            f"(run_name='{_shown(str(name))}', {RUN_NAME_TAG}='{_shown(name_tag)}')."
        )
    _raise_if(errors)

    run_id = new_run_id()
    run = Run(
        run_id=run_id,
        experiment=experiment,
        user=actor,
        name=name or name_tag or generate_run_name(),
        status=RunStatus.RUNNING,
        start_time=start_time,
        artifact_uri=f"mlflow-artifacts:/{experiment.pk}/{run_id}/artifacts",
    )
    tag_values[RUN_NAME_TAG] = run.name
    with transaction.atomic():
        run.save()
        RunTag.objects.bulk_create([RunTag(run=run, key=key, value=value) for key, value in tag_values.items()])
    publish(run_created(run, actor=actor))
    return run


def run_update(
    *, run: Run, actor, status: str | None = None, end_time: int | None = None, name: str | None = None
) -> Run:
    """MLflow's runs/update: the status, the end time (epoch ms) and the name (also its
    ``mlflow.runName`` tag) of an active run; None (and an empty name) leave a field as it is."""
    _ensure_can_change(run, actor)
    _ensure_active(run)
    errors: dict[str, list[str]] = {}
    if status is not None and status not in RunStatus.values:
        errors["status"] = [f"Invalid run status {status!r}: one of {', '.join(RunStatus.values)}."]
    if end_time is not None:
        end_time, message = _time("End time", end_time)
        if message:
            errors["end_time"] = [message]
    if name and (message := name_error(name)):
        errors["name"] = [message]
    _raise_if(errors)

    changes = {"status": status, "end_time": end_time, "name": name or None}
    changes = {field: value for field, value in changes.items() if value is not None}
    if not changes:
        return run
    with transaction.atomic():
        locked = _locked(run)
        for field, value in changes.items():
            setattr(locked, field, value)
            setattr(run, field, value)
        locked.save(update_fields=list(changes))
        if "name" in changes:
            RunTag.objects.update_or_create(run=locked, key=RUN_NAME_TAG, defaults={"value": changes["name"]})
    publish(run_updated(run, actor=actor, fields=changes))
    return run


def run_delete(*, run: Run, actor) -> Run:
    """Soft delete (MLflow's lifecycle stage "deleted"): the run and its data stay, restorable; a
    run already deleted is left as it is."""
    _ensure_can_change(run, actor)
    if run.lifecycle_stage == LifecycleStage.DELETED:
        return run
    run.lifecycle_stage, run.deleted_time = LifecycleStage.DELETED, now_ms()
    with transaction.atomic():
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    publish(run_deleted(run, actor=actor))
    return run


def run_restore(*, run: Run, actor) -> Run:
    """Bring a deleted run back to the active stage; an active run is left as it is."""
    _ensure_can_change(run, actor)
    if run.lifecycle_stage == LifecycleStage.ACTIVE:
        return run
    run.lifecycle_stage, run.deleted_time = LifecycleStage.ACTIVE, None
    with transaction.atomic():
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    publish(run_restored(run, actor=actor))
    return run


@dataclass(frozen=True)
class Logged:
    """What one log call wrote: the distinct metric points it carried, the params that were new
    (one logged again with its value is not), the tags it set."""

    metrics: int
    params: int
    tags: int


def run_log_batch(
    *,
    run: Run,
    actor,
    metrics: Iterable[Mapping[str, Any]] = (),
    params: Iterable[Mapping[str, Any]] = (),
    tags: Iterable[Mapping[str, Any]] = (),
) -> Logged:
    """MLflow's runs/log-batch. ``metrics``: ``{key, value, timestamp?, step?}`` (value a number or
    "NaN"/"Infinity"/"-Infinity"; timestamp epoch ms, now by default; step 0 by default);
    ``params`` and ``tags``: ``{key, value}``. All of it is validated before anything is written,
    then written in one transaction."""
    _ensure_can_change(run, actor)
    errors: dict[str, list[str]] = {}
    metric_items = _entries("metrics", metrics, ("key", "value", "timestamp", "step"), errors)
    param_items = _entries("params", params, ("key", "value"), errors)
    tag_items = _entries("tags", tags, ("key", "value"), errors)
    _raise_if(errors)
    limits = [
        ("metrics", _batch_limit_error("metrics", MAX_METRICS_PER_BATCH, len(metric_items))),
        ("params", _batch_limit_error("params", MAX_PARAMS_TAGS_PER_BATCH, len(param_items))),
        ("tags", _batch_limit_error("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tag_items))),
    ]
    _raise_if({field: [message] for field, message in limits if message})
    total = len(metric_items) + len(param_items) + len(tag_items)
    if message := _batch_limit_error("metrics, params, and tags", MAX_ENTRIES_PER_BATCH, total):
        raise ValidationError(message, code="batch_too_large")
    errors = {"metrics": [], "params": [], "tags": []}
    points = _metric_points(metric_items, errors["metrics"])
    param_values = _params(param_items, errors["params"])
    tag_values = _tags(tag_items, errors["tags"])
    _raise_if(errors)
    _ensure_active(run)
    if not (points or param_values or tag_values):
        return Logged(0, 0, 0)

    with transaction.atomic():
        locked = _locked(run)
        new_params = _write_params(locked, param_values)
        written_points = _write_metrics(locked, points)
        renamed = _write_tags(locked, tag_values)
    if renamed:
        run.name = locked.name
    logged = Logged(metrics=written_points, params=new_params, tags=len(tag_values))
    publish(run_logged(run, actor=actor, metrics=logged.metrics, params=logged.params, tags=logged.tags))
    if renamed:
        publish(run_updated(run, actor=actor, fields=["name"]))
    return logged


def _write_params(run: Run, values: dict[str, str]) -> int:
    if not values:
        return 0
    existing = dict(RunParam.objects.filter(run=run, key__in=values).values_list("key", "value"))
    changed = [
        f"Changing param values is not allowed. Param with key='{key}' was already logged with value="
        f"'{_shown(existing[key])}' for run ID='{run.run_id}'. Attempted logging new value '{_shown(value)}'."
        for key, value in values.items()
        if key in existing and existing[key] != value
    ]
    # Nothing is written yet: refusing here leaves the whole batch unwritten.
    _raise_if({"params": changed})
    created = RunParam.objects.bulk_create(
        [RunParam(run=run, key=key, value=value) for key, value in values.items() if key not in existing]
    )
    return len(created)


def _write_metrics(run: Run, points: list[_Point]) -> int:
    if not points:
        return 0
    RunMetric.objects.bulk_create(
        [
            RunMetric(run=run, key=p.key, value=p.value, is_nan=p.is_nan, timestamp=p.timestamp, step=p.step)
            for p in points
        ],
        ignore_conflicts=True,  # a point already logged stays one row (MLflow's primary key)
    )

    newest: dict[str, _Point] = {}
    for point in points:
        best = newest.get(point.key)
        if best is None or (point.step, point.timestamp, point.value) > (best.step, best.timestamp, best.value):
            newest[point.key] = point
    current = {latest.key: latest for latest in RunLatestMetric.objects.filter(run=run, key__in=newest)}
    created, updated = [], []
    for key, point in newest.items():
        latest = current.get(key)
        if latest is None:
            created.append(
                RunLatestMetric(
                    run=run,
                    key=key,
                    value=point.value,
                    is_nan=point.is_nan,
                    timestamp=point.timestamp,
                    step=point.step,
                )
            )
        elif (point.step, point.timestamp, point.value) > (latest.step, latest.timestamp, latest.value):
            latest.value, latest.is_nan, latest.timestamp, latest.step = (
                point.value,
                point.is_nan,
                point.timestamp,
                point.step,
            )
            updated.append(latest)
    RunLatestMetric.objects.bulk_create(created)
    RunLatestMetric.objects.bulk_update(updated, ["value", "is_nan", "timestamp", "step"])
    return len(points)


def _write_tags(run: Run, values: dict[str, str]) -> bool:
    """Set the tags; True when the ``mlflow.runName`` tag renamed the run."""
    if not values:
        return False
    existing = {tag.key: tag for tag in RunTag.objects.filter(run=run, key__in=values)}
    changed = []
    for key, value in values.items():
        tag = existing.get(key)
        if tag is not None and tag.value != value:
            tag.value = value
            changed.append(tag)
    RunTag.objects.bulk_update(changed, ["value"])
    RunTag.objects.bulk_create(
        [RunTag(run=run, key=key, value=value) for key, value in values.items() if key not in existing]
    )
    new_name = values.get(RUN_NAME_TAG)
    if new_name and new_name != run.name:
        run.name = new_name
        run.save(update_fields=["name"])
        return True
    return False


def run_set_tag(*, run: Run, actor, key: str, value: str) -> None:
    """MLflow's runs/set-tag: set (or overwrite) one tag; ``mlflow.runName`` renames the run."""
    run_log_batch(run=run, actor=actor, tags=[{"key": key, "value": value}])


def run_delete_tag(*, run: Run, actor, key: str) -> None:
    """MLflow's runs/delete-tag; LookupError when the run has no such tag."""
    _ensure_can_change(run, actor)
    _ensure_active(run)
    with transaction.atomic():
        deleted, _ = RunTag.objects.filter(run=_locked(run), key=key).delete()
        if not deleted:
            raise LookupError(f"No tag with name: {key} in run with id {run.run_id}")
    publish(run_updated(run, actor=actor, fields=["tags"]))


# The run metrics a model version keeps as its own: ours are fractions in [0, 1] (MLflow's runs
# log anything, "f1" included).
VERSION_METRICS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1_score": "f1_score",
    "f1": "f1_score",
}


def version_data(run: Run) -> dict[str, float]:
    """What a model version registered from ``run`` takes from it: its latest metrics named like a
    version's (accuracy, precision, recall, f1_score or f1) when they are fractions in [0, 1]."""
    latest = {metric.key: metric for metric in run.latest_metrics.filter(key__in=list(VERSION_METRICS))}
    data = {}
    for key, field in VERSION_METRICS.items():  # "f1_score" before "f1"
        metric = latest.get(key)
        if metric is not None and field not in data and not metric.is_nan and 0.0 <= metric.value <= 1.0:
            data[field] = metric.value
    return data
