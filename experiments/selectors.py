from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Case, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When

from experiments.models import Experiment, LifecycleStage, Run, RunLatestMetric, RunMetric, RunParam, RunStatus, RunTag
from mlmodels.models import MLModel
from registry.comparisons import compared


def experiment_list(*, user) -> QuerySet[Experiment]:
    """Experiments the user may read (all, for a signed-in user), each with the ids of the models it
    produced: one extra query for the whole page, however many rows it has."""
    return Experiment.objects.visible_to(user).prefetch_related(
        Prefetch("models", queryset=MLModel.objects.only("id", "experiment_id").order_by("id"))
    )


# --- runs ---------------------------------------------------------------------------------------------

RUN_ID = re.compile(r"[0-9a-f]{32}")
# The attributes a list of runs sorts on, by the name a client gives (MLflow's names included).
RUN_ATTRIBUTES = {
    "start_time": "start_time",
    "end_time": "end_time",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "run_id": "run_id",
    "user": "user__username",
    "user_id": "user__username",
    "artifact_uri": "artifact_uri",
    "created": "start_time",
}
_KINDS = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}
_PREFIXES = {"metric": "metrics", "param": "params", "tag": "tags"}
LIFECYCLE_VIEWS = ("active", "deleted", "all")


@dataclass(frozen=True)
class RunOrder:
    """One sort key of a list of runs: a latest metric, a param, a tag or an attribute."""

    kind: str  # "metric", "param", "tag" or "attribute"
    key: str
    ascending: bool = True

    @classmethod
    def parse(cls, term: str) -> RunOrder:
        """``metrics.accuracy``, ``params.lr``, ``tags.team``, ``start_time`` (or ``attributes.start_time``),
        with a leading ``-`` for descending; ValidationError (under "ordering") for anything else."""
        body = term.strip()
        ascending = not body.startswith("-")
        body = body.removeprefix("-")
        prefix, dot, key = body.partition(".")
        kind = _KINDS.get(prefix) if dot else None
        if kind is None:
            kind, key = "attribute", body
        if not key or (kind == "attribute" and key not in RUN_ATTRIBUTES):
            raise ValidationError(
                {
                    "ordering": [
                        f"Cannot sort runs by {term!r}: use metrics.<key>, params.<key>, tags.<key> or one of "
                        f"{', '.join(RUN_ATTRIBUTES)}, with a leading '-' for descending."
                    ]
                }
            )
        return cls(kind, key, ascending)

    def __str__(self) -> str:
        term = self.key if self.kind == "attribute" else f"{_PREFIXES[self.kind]}.{self.key}"
        return term if self.ascending else f"-{term}"


# What a condition on a run compares, by kind: numbers (latest metrics, times) or text (params,
# tags, the other attributes); IN and NOT IN take a list of run ids, IS NULL and IS NOT NULL no value.
NUMBER_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
TEXT_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
LIST_COMPARATORS = ("IN", "NOT IN")
PRESENCE_COMPARATORS = ("IS NULL", "IS NOT NULL")
NUMBER_ATTRIBUTES = frozenset({"start_time", "end_time"})  # by column
LIST_ATTRIBUTES = frozenset({"run_id"})


@dataclass(frozen=True)
class RunCondition:
    """One condition a run must meet to be listed: its latest metric ``key`` (a number), its param or
    tag ``key``, or its attribute ``key`` (a RUN_ATTRIBUTES name) compared by ``comparator`` with
    ``value``: a number for metrics, start_time and end_time; a string (a LIKE pattern for LIKE and
    ILIKE, ``%`` and ``_`` its wildcards) for params, tags and the other attributes; a tuple of run
    ids for IN and NOT IN; None for IS NULL and IS NOT NULL (params and tags: has no such key, has it).

    A run without the metric, param, tag or time compared (an unfinished run's end_time) meets no
    comparison, ``!=`` included, as in MLflow's SQL store; a NaN metric meets ``!=`` only."""

    kind: str  # "metric", "param", "tag" or "attribute"
    key: str
    comparator: str
    value: object = None

    def problem(self) -> str | None:
        """Why this condition cannot be applied, or None."""
        if self.kind not in ("metric", "param", "tag", "attribute") or not self.key:
            return f"Cannot filter runs by {self.kind}.{self.key}: use a metric, a param, a tag or an attribute."
        if self.kind == "attribute" and self.key not in RUN_ATTRIBUTES:
            return f"Cannot filter runs by the attribute {self.key!r}; attributes are {', '.join(RUN_ATTRIBUTES)}."
        numeric = self.kind == "metric" or (self.kind == "attribute" and RUN_ATTRIBUTES[self.key] in NUMBER_ATTRIBUTES)
        if numeric:
            allowed = NUMBER_COMPARATORS
        elif self.kind == "attribute":
            allowed = TEXT_COMPARATORS + (LIST_COMPARATORS if self.key in LIST_ATTRIBUTES else ())
        else:
            allowed = TEXT_COMPARATORS + PRESENCE_COMPARATORS
        if self.comparator not in allowed:
            return f"Cannot compare {self} with {self.comparator!r}; use {', '.join(allowed)}."
        if self.comparator in PRESENCE_COMPARATORS:
            return None if self.value is None else f"{self} {self.comparator} takes no value."
        if self.comparator in LIST_COMPARATORS:
            values = self.value
            if not isinstance(values, tuple | list) or not values or not all(isinstance(v, str) for v in values):
                return f"{self} {self.comparator} takes a non-empty list of strings."
            return None
        if numeric:
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                return f"{self} is compared with a number, not {self.value!r}."
            if self.kind == "attribute" and not -(2**63) <= self.value < 2**63:
                return f"{self} is a time in epoch milliseconds (a 64-bit integer), not {self.value!r}."
            return None
        return None if isinstance(self.value, str) else f"{self} is compared with a string, not {self.value!r}."

    def __str__(self) -> str:
        return self.key if self.kind == "attribute" else f"{_PREFIXES[self.kind]}.{self.key}"


def _condition(condition: RunCondition):
    """The filter of one (checked) condition: a column's, or an EXISTS of a metric, param or tag row."""
    if condition.kind == "attribute":
        return compared(RUN_ATTRIBUTES[condition.key], condition.comparator, condition.value)
    table = {"metric": RunLatestMetric, "param": RunParam, "tag": RunTag}[condition.kind]
    rows = table.objects.filter(run=OuterRef("pk"), key=condition.key)
    if condition.comparator in PRESENCE_COMPARATORS:
        return ~Exists(rows) if condition.comparator == "IS NULL" else Exists(rows)
    if condition.kind != "metric":
        return Exists(rows.filter(compared("value", condition.comparator, condition.value)))
    # A NaN is stored as 0 with is_nan set: it meets "!=" and no other comparison.
    value = float(condition.value)
    if condition.comparator == "!=":
        return Exists(rows.filter(Q(is_nan=True) | (~Q(value=value) & Q(is_nan=False))))
    return Exists(rows.filter(compared("value", condition.comparator, value), is_nan=False))


def _ordered(runs: QuerySet[Run], orders: Sequence[RunOrder]) -> QuerySet[Run]:
    """MLflow's order: a run without the sort key comes last, and a NaN metric after every number,
    in either direction; ties go newest first, then by run id."""
    expressions = []
    for index, order in enumerate(orders):
        if order.kind == "attribute":
            field = F(RUN_ATTRIBUTES[order.key])
            expressions.append(field.asc(nulls_last=True) if order.ascending else field.desc(nulls_last=True))
            continue
        table = {"metric": RunLatestMetric, "param": RunParam, "tag": RunTag}[order.kind]
        rows = table.objects.filter(run=OuterRef("pk"), key=order.key)
        value, rank = f"order_{index}_value", f"order_{index}_rank"
        missing = When(**{f"{value}__isnull": True}, then=Value(2))
        if order.kind == "metric":
            nan = f"order_{index}_nan"
            runs = runs.annotate(
                **{value: Subquery(rows.values("value")[:1]), nan: Subquery(rows.values("is_nan")[:1])}
            )
            runs = runs.annotate(**{rank: Case(When(**{nan: True}, then=Value(1)), missing, default=Value(0))})
        else:
            runs = runs.annotate(**{value: Subquery(rows.values("value")[:1])})
            runs = runs.annotate(**{rank: Case(missing, default=Value(0))})
        expressions += [F(rank).asc(), F(value).asc() if order.ascending else F(value).desc()]
    return runs.order_by(*expressions, F("start_time").desc(nulls_last=True), "run_id")


def run_search(
    *,
    user,
    experiment_ids: Iterable[int],
    order_by: Sequence[str | RunOrder] = (),
    lifecycle: str = "active",
    status: str | None = None,
    where: Sequence[RunCondition] = (),
) -> QuerySet[Run]:
    """The runs of these experiments the user may read, in ``lifecycle`` ("active", "deleted" or
    "all"), of ``status`` if given, meeting every condition of ``where`` (see RunCondition), sorted
    by ``order_by`` (see RunOrder.parse) and then newest first. Rows carry their user; add
    ``with_run_data`` for their params, latest metrics and tags."""
    errors = {}
    if lifecycle not in LIFECYCLE_VIEWS:
        errors["lifecycle"] = [f"One of {', '.join(LIFECYCLE_VIEWS)}; got {lifecycle!r}."]
    if status is not None and status not in RunStatus.values:
        errors["status"] = [f"One of {', '.join(RunStatus.values)}; got {status!r}."]
    if problems := [problem for condition in where if (problem := condition.problem())]:
        errors["filter"] = problems
    if errors:
        raise ValidationError(errors)
    orders = [term if isinstance(term, RunOrder) else RunOrder.parse(term) for term in order_by]
    runs = Run.objects.visible_to(user).filter(experiment_id__in=list(experiment_ids)).select_related("user")
    if lifecycle != "all":
        runs = runs.filter(lifecycle_stage=LifecycleStage.ACTIVE if lifecycle == "active" else LifecycleStage.DELETED)
    if status is not None:
        runs = runs.filter(status=status)
    for condition in where:
        runs = runs.filter(_condition(condition))
    return _ordered(runs, orders)


def runs_of(experiment: Experiment, *, user, **options) -> QuerySet[Run]:
    """The runs of one experiment: ``run_search`` (same options) for its id."""
    return run_search(user=user, experiment_ids=[experiment.pk], **options)


def with_run_data(runs: QuerySet[Run], *, tags: bool = True) -> QuerySet[Run]:
    """``runs`` with their params, latest metrics and (unless told not to) tags: one query each for a
    whole page."""
    return runs.prefetch_related("params", "latest_metrics", *(["tags"] if tags else []))


def run_get(run_id: str, *, user=None) -> Run | None:
    """The run with this id (deleted or not, as MLflow's runs/get) with its experiment and user, or
    None (also for a malformed id). With ``user``, only a run that user may read."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        return None
    runs = Run.objects.select_related("experiment", "user")
    if user is not None:
        runs = runs.visible_to(user)
    return runs.filter(run_id=run_id).first()


def metric_history(run: Run, key: str) -> QuerySet[RunMetric]:
    """Every logged point of the metric ``key`` of ``run``, by step, then time (empty for a key never logged)."""
    return RunMetric.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")


def latest_metrics(runs: Iterable[Run]) -> dict[int, dict[str, RunLatestMetric]]:
    """Each run's latest metric by key (from ``with_run_data``'s prefetch when the runs have it)."""
    return {run.pk: {metric.key: metric for metric in run.latest_metrics.all()} for run in runs}


def run_columns(
    experiment: Experiment, *, limit: int, metric_limit: int | None = None
) -> tuple[list[str], list[str], bool]:
    """The param keys and metric keys of the experiment's active runs (the first ``limit`` of each
    in key order; of metric keys, the first ``metric_limit`` when it is larger: the runs chart offers
    them all), and whether there were more than ``limit`` of either. One query for both kinds (a
    UNION of the distinct keys: an experiment's runs share a few dozen keys, not thousands)."""
    metric_limit = max(limit, metric_limit or 0)
    active = {"run__experiment": experiment, "run__lifecycle_stage": LifecycleStage.ACTIVE}
    params = RunParam.objects.filter(**active).order_by().annotate(kind=Value(0)).values_list("kind", "key")
    metrics = RunLatestMetric.objects.filter(**active).order_by().annotate(kind=Value(1)).values_list("kind", "key")
    keys: tuple[list[str], list[str]] = ([], [])
    for kind, key in params.union(metrics).order_by("kind", "key"):
        keys[kind].append(key)
    param_keys, metric_keys = keys
    more = len(param_keys) > limit or len(metric_keys) > limit
    return param_keys[:limit], metric_keys[:metric_limit], more


# The runs a chart of one metric across an experiment's runs draws at most: the most recent ones.
MAX_CHART_RUNS = 200


def metric_across_runs(
    experiment: Experiment, key: str, *, user, limit: int = MAX_CHART_RUNS
) -> tuple[list[RunLatestMetric], bool]:
    """The latest value of the metric ``key`` of each active run of ``experiment`` that logged it, with
    its run, in start order (oldest first; runs without a start time first, then by run id); at most
    the ``limit`` most recently started, and whether some were left out. One query."""
    if not user.is_authenticated:
        return [], False
    rows = list(
        RunLatestMetric.objects.filter(run__experiment=experiment, run__lifecycle_stage=LifecycleStage.ACTIVE, key=key)
        .select_related("run")
        .order_by(F("run__start_time").desc(nulls_last=True), "-run__run_id")[: limit + 1]
    )
    return rows[:limit][::-1], len(rows) > limit


MAX_HISTORY_POINTS = 2000


def metric_histories(run: Run, *, limit: int) -> tuple[dict[str, list[RunMetric]], bool]:
    """Every metric's history of ``run`` by key (one query, at most ``limit`` points in all), and
    whether some were left out."""
    points = list(RunMetric.objects.filter(run=run).order_by("key", "step", "timestamp", "id")[: limit + 1])
    histories: dict[str, list[RunMetric]] = {}
    for point in points[:limit]:
        histories.setdefault(point.key, []).append(point)
    return histories, len(points) > limit


def runs_by_id(experiment: Experiment, run_ids: Sequence[str], *, user) -> list[Run]:
    """The experiment's runs with these ids (well-formed ones only), in the order asked, with their data."""
    wanted = [run_id for run_id in run_ids if isinstance(run_id, str) and RUN_ID.fullmatch(run_id)]
    found = {
        run.run_id: run
        for run in with_run_data(
            Run.objects.visible_to(user).filter(experiment=experiment, run_id__in=wanted).select_related("user")
        )
    }
    return [found[run_id] for run_id in wanted if run_id in found]


def run_versions(run: Run) -> list:
    """The model versions registered from ``run``, with their models' names, newest first."""
    return list(run.model_versions.select_related("model").order_by("-created_at", "-pk"))
