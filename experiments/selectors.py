from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Case, F, OuterRef, Prefetch, QuerySet, Subquery, Value, When

from experiments.models import Experiment, LifecycleStage, Run, RunLatestMetric, RunMetric, RunParam, RunStatus, RunTag
from mlmodels.models import MLModel


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
) -> QuerySet[Run]:
    """The runs of these experiments the user may read, in ``lifecycle`` ("active", "deleted" or
    "all"), of ``status`` if given, sorted by ``order_by`` (see RunOrder.parse) and then newest first.
    Rows carry their user; add ``with_run_data`` for their params, latest metrics and tags."""
    errors = {}
    if lifecycle not in LIFECYCLE_VIEWS:
        errors["lifecycle"] = [f"One of {', '.join(LIFECYCLE_VIEWS)}; got {lifecycle!r}."]
    if status is not None and status not in RunStatus.values:
        errors["status"] = [f"One of {', '.join(RunStatus.values)}; got {status!r}."]
    if errors:
        raise ValidationError(errors)
    orders = [term if isinstance(term, RunOrder) else RunOrder.parse(term) for term in order_by]
    runs = Run.objects.visible_to(user).filter(experiment_id__in=list(experiment_ids)).select_related("user")
    if lifecycle != "all":
        runs = runs.filter(lifecycle_stage=LifecycleStage.ACTIVE if lifecycle == "active" else LifecycleStage.DELETED)
    if status is not None:
        runs = runs.filter(status=status)
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


def run_columns(experiment: Experiment, *, limit: int) -> tuple[list[str], list[str], bool]:
    """The param keys and metric keys of the experiment's active runs (the first ``limit`` of each
    in key order), and whether there were more than that."""
    active = {"run__experiment": experiment, "run__lifecycle_stage": LifecycleStage.ACTIVE}
    params = list(
        RunParam.objects.filter(**active).order_by("key").values_list("key", flat=True).distinct()[: limit + 1]
    )
    metrics = list(
        RunLatestMetric.objects.filter(**active).order_by("key").values_list("key", flat=True).distinct()[: limit + 1]
    )
    return params[:limit], metrics[:limit], len(params) > limit or len(metrics) > limit


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
