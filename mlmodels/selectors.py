"""Reads of models, versions and events, scoped to who is asking."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
    prefetch_related_objects,
)
from django.db.models.functions import Cast, Coalesce, Substr, TruncWeek
from django.utils import timezone

from mlmodels.comparison import MAX_COMPARED, CompareError, Comparison, compare_versions, requested_numbers
from mlmodels.models import (
    AliasEvent,
    ApprovalRequest,
    ApprovalStatus,
    Framework,
    LifecycleEvent,
    MLModel,
    ModelVersion,
    ProtectedAlias,
    Stage,
    VersionFile,
)
from mlmodels.paths import ArtifactPath
from registry.validators import name_key


def model_list(*, user) -> QuerySet[MLModel]:
    """Models the user may read: all of them for any signed-in user (one team, one registry).
    Serializing a row costs no further query (owner and experiment are shown by id)."""
    return MLModel.objects.visible_to(user)


def model_list_table(*, user) -> QuerySet[MLModel]:
    """``model_list`` with what a row of the models page shows beyond the model's own columns, in the
    same query: its owner (joined), ``version_count`` (versions can be deleted, so ``latest_version``
    is only its upper bound) and ``current_scan_status``, the scan of its current version (the newest,
    numbered ``latest_version``: it cannot be deleted); blank for a model without a version. Both are
    correlated subqueries on the versions' (model, version_number) index, one lookup per row returned
    (a page); the list's count leaves them out."""
    versions = ModelVersion.objects.filter(model=OuterRef("pk")).order_by()
    count = versions.values("model").annotate(n=Count("pk")).values("n")
    current = versions.filter(version_number=OuterRef("latest_version")).values("scan_status")[:1]
    return (
        model_list(user=user)
        .select_related("owner")
        .annotate(
            version_count=Coalesce(Subquery(count, output_field=IntegerField()), 0),
            current_scan_status=Subquery(current, output_field=CharField()),
        )
    )


# The terms a models table sorts by (``-`` before one for descending) and what each sorts on.
MODEL_TABLE_SORTS = {
    "name": F("name_key"),
    "stage": Case(*(When(lifecycle=stage, then=Value(i)) for i, stage in enumerate(Stage.values))),
    "versions": F("version_count"),
    "accuracy": F("accuracy"),
    "precision": F("precision"),
    "recall": F("recall"),
    "f1_score": F("f1_score"),
    "owner": F("owner__username"),
    "updated": F("updated_at"),
}


def model_table_order(sort: str) -> list:
    """The order of a ``model_list_table`` that ``sort`` (a MODEL_TABLE_SORTS term, or blank for by
    name) asks for, stages in lifecycle order and missing metrics last both ways round, ties by name;
    ValidationError naming the terms when it is none of them."""
    term = sort.removeprefix("-")
    by_name = [F("name_key").asc(), "pk"]
    if not sort:
        return by_name
    if term not in MODEL_TABLE_SORTS:
        raise ValidationError(
            f"Sort the models by one of: {', '.join(MODEL_TABLE_SORTS)} (with “-” for descending).",
            code="invalid_sort",
        )
    expression = MODEL_TABLE_SORTS[term]
    return [expression.desc(nulls_last=True) if sort.startswith("-") else expression.asc(nulls_last=True), *by_name]


def models_named(*, user, name: str) -> QuerySet[MLModel]:
    """The model called ``name`` as a queryset of one row at most (or none), unordered."""
    return model_list(user=user).filter(name_key=name_key(name)).order_by()


def model_by_name(*, user, name: str) -> MLModel | None:
    """The model called ``name`` (in any letter case or Unicode form: names are unique that way),
    with its owner."""
    # Unordered: with the models' default order, PostgreSQL may walk the created_at index backwards
    # for the one row instead of reading it from the unique name index.
    return models_named(user=user, name=name).select_related("owner").first()


# Up to this many matches, a searched list is sorted from the matches themselves (found through the
# trigram indexes) rather than by walking the sort order's index: sorting this many is still quick
# (README, "Where the speed comes from").
SEARCH_SORT_MAX_ROWS = 20_000


def model_search_plan(queryset: QuerySet[MLModel], *, matches: int) -> QuerySet[MLModel]:
    """The searched ``queryset`` (``matches`` rows), ordered so that PostgreSQL sorts the matches.

    PostgreSQL assumes the rows a search matches are spread evenly over the sort order, so with a
    LIMIT it walks the ``created_at`` index until it has a page. When the matches sit far down that
    order (``model-12…`` were all made long ago), it reads most of the table first, many times slower
    than the trigram indexes and a sort. Ordering by ``COALESCE(col, col)``,
    the same order, takes the index walk away from the planner when the matches are few enough to
    sort; when they are many, the walk finds a page quickly and stays.
    """
    if connection.vendor != "postgresql" or matches > SEARCH_SORT_MAX_ROWS:
        return queryset
    ordering = queryset.query.order_by or (queryset.model._meta.ordering if queryset.query.default_ordering else ())
    fenced = []
    for term in ordering:
        name = term.lstrip("-")
        expression = Coalesce(F(name), F(name))
        fenced.append(expression.desc() if term.startswith("-") else expression.asc())
    return queryset.order_by(*fenced) if fenced else queryset


def version_list(*, model: MLModel) -> QuerySet[ModelVersion]:
    return model.versions.order_by("-version_number")


def readable_versions(*, user) -> QuerySet[ModelVersion]:
    """The versions of every model the user may read (``model_list``). When that is every model, no
    subquery over the models: it would keep the database from walking the versions' own indexes in
    order (a search's page of the newest versions)."""
    models = model_list(user=user)
    if not models.query.where:
        return ModelVersion.objects.all()
    return ModelVersion.objects.filter(model__in=models)


def with_current_version(models: QuerySet[MLModel]) -> QuerySet[MLModel]:
    """``models`` with their current version (the newest) joined as ``current``, so that a page's
    query reads ``current__…`` columns in the same query (a model without versions has none)."""
    return models.annotate(
        current=FilteredRelation("versions", condition=Q(versions__version_number=F("latest_version")))
    )


def versions_by_model_name(*, user, name: str) -> QuerySet[ModelVersion]:
    """The versions of the model called ``name`` (as ``model_by_name`` finds it), if the user may
    read it (MLflow's clients address a version by its model's name)."""
    return readable_versions(user=user).filter(model__name_key=name_key(name)).order_by()


def version_get(*, user, model_id, number: int) -> ModelVersion | None:
    """Version ``number`` of model ``model_id``, if the user may read that model; None otherwise.
    One query: reading a version is the commonest call a deployment makes."""
    # The model's aliases come along (the version's answer lists those pointing at it).
    versions = ModelVersion.objects.filter(model__in=model_list(user=user)).annotate(model_aliases=F("model__aliases"))
    try:
        return versions.get(model_id=model_id, version_number=number)
    except ModelVersion.DoesNotExist:
        return None


def alias_event_list(*, model: MLModel) -> QuerySet[AliasEvent]:
    """The model's alias changes, newest first, with each actor's username (one joined query)."""
    return model.alias_events.select_related("actor").order_by("-created_at", "-id")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a model's history: ``kind`` is "lifecycle" (``item`` a LifecycleEvent), "alias"
    (an AliasEvent), "requested" or "decided" (an ApprovalRequest: filed, or approved, rejected or
    cancelled)."""

    kind: str
    at: datetime
    item: Any


# The model page's history shows this many of each kind at most: a model with thousands of moves
# still renders quickly (the API's history pages through all of them).
HISTORY_LIMIT = 100


def model_history(*, model: MLModel, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The model's stage moves, alias changes and approval requests with their decisions, newest
    first, in one timeline: three queries, each joined to the people it names."""
    entries = [HistoryEntry("lifecycle", event.created_at, event) for event in event_list(model=model)[:limit]]
    entries += [HistoryEntry("alias", event.created_at, event) for event in alias_event_list(model=model)[:limit]]
    requests = ApprovalRequest.objects.filter(model=model).select_related("requested_by", "decided_by")
    for request in requests.order_by("-created_at", "-id")[:limit]:
        entries.append(HistoryEntry("requested", request.created_at, request))
        if request.decided_at is not None:
            entries.append(HistoryEntry("decided", request.decided_at, request))
    # Ties (a decision and the move it made share a moment) keep the decision above its move.
    order = {"decided": 0, "lifecycle": 1, "alias": 1, "requested": 2}
    entries.sort(key=lambda entry: (entry.at, -order[entry.kind]), reverse=True)
    return entries


def protected_alias_names() -> list[str]:
    return list(ProtectedAlias.objects.order_by("name").values_list("name", flat=True))


def aliases_of_version(aliases: dict[str, int], number: int) -> list[str]:
    """The names among a model's ``aliases`` that point at its version ``number``, sorted."""
    return sorted(alias for alias, target in aliases.items() if target == number)


def model_rows(queryset: QuerySet[MLModel], *, columns: Sequence[str]) -> QuerySet[tuple]:
    """``queryset`` (of ``model_list``, filtered and ordered) as rows of ``columns``: what a page of
    the API's list shows, without making model instances."""
    return queryset.values_list(*columns)


def version_rows(*, model: MLModel, columns: Sequence[str]) -> QuerySet[tuple]:
    """``version_list`` as rows of ``columns``."""
    return version_list(model=model).values_list(*columns)


def event_list(*, model: MLModel) -> QuerySet[LifecycleEvent]:
    """The model's audit trail, newest first, with each actor's username and the approval request a
    move carried out, with its requester (one joined query)."""
    return model.events.select_related("actor", "approval__requested_by").order_by("-created_at", "-id")


@dataclass(frozen=True)
class ArtifactRecord:
    model_id: int
    size: int | None


def artifact_record(*, path: ArtifactPath, user=None) -> ArtifactRecord | None:
    """The stored artifact at ``path``, if a row really points at it (the model's current file or one
    of its versions) and, when ``user`` is given, the user may read that model; None otherwise.

    Looked up through the model id the path names: at most two indexed queries.
    """
    models = MLModel.objects.all() if user is None else model_list(user=user)
    model = models.filter(pk=path.model_id, owner_id=path.owner_id).only("id", "file", "file_size").first()
    if model is None:
        return None
    if model.file == path.key:
        return ArtifactRecord(model_id=model.pk, size=model.file_size)
    sizes = model.versions.filter(file=path.key).values_list("file_size", flat=True)[:1]
    if not sizes:
        # A file at the top of a folder version (users/…/v{n}/MLmodel) has a path of this shape too.
        sizes = VersionFile.objects.filter(version__model=model, key=path.key).values_list("size", flat=True)[:1]
    return ArtifactRecord(model_id=model.pk, size=sizes[0]) if sizes else None


def with_version_files(versions: list[ModelVersion]) -> list[ModelVersion]:
    """``versions`` with the files of the folder ones (``version.files.all()``, by path) in one query;
    none when no version is a folder."""
    folders = [version for version in versions if version.file_count]
    if folders:
        prefetch_related_objects(folders, Prefetch("files", queryset=VersionFile.objects.order_by("path")))
    return versions


def version_files_by_id(version_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The files (path, size, sha256) of each of the folder versions ``version_ids``, by path: one
    query, however many versions a page of the API shows."""
    files: dict[int, list[dict[str, Any]]] = {version_id: [] for version_id in version_ids}
    if not version_ids:
        return files
    rows = VersionFile.objects.filter(version_id__in=version_ids).order_by("version_id", "path")
    for version_id, path, size, sha256 in rows.values_list("version_id", "path", "size", "sha256").iterator():
        files[version_id].append({"path": path, "size": size, "sha256": sha256})
    return files


DASHBOARD_COUNTS_KEY = "dashboard:model-counts"


def dashboard_counts() -> dict[str, list[tuple[str, str, int]]]:
    """Models per lifecycle stage and per framework, as (value, label, count) rows.

    Cached until a model is added, deleted, moved or changes framework (see ``mlmodels.subscribers``);
    computing it costs two grouped queries over the whole table.
    """

    def compute():
        by_stage = dict(MLModel.objects.values_list("lifecycle").annotate(n=Count("id")).order_by())
        by_framework = dict(MLModel.objects.values_list("framework").annotate(n=Count("id")).order_by())
        return {
            "lifecycle": [(value, label, by_stage.get(value, 0)) for value, label in Stage.choices],
            "framework": sorted(
                ((value, label, by_framework[value]) for value, label in Framework.choices if value in by_framework),
                key=lambda row: -row[2],
            ),
            "total": sum(by_stage.values()),
        }

    return cache.get_or_set(DASHBOARD_COUNTS_KEY, compute, timeout=600)


def recent_models(*, user, limit: int = 8) -> QuerySet[MLModel]:
    return model_list(user=user).select_related("owner").order_by("-updated_at", "-id")[:limit]


# --- comparing versions --------------------------------------------------------------------------


def version_comparison(*, model: MLModel, requested: Sequence[str]) -> Comparison:
    """The versions of ``model`` that ``requested`` names (the baseline first) side by side, or why
    not: one query for them with their experiments, runs and authors (one more when the model turns
    out to have a single version, to say so)."""
    try:
        numbers = requested_numbers(requested)
    except CompareError as error:
        return Comparison(error=str(error))
    if len(numbers) < 2:
        if model.versions.count() < 2:
            return Comparison(numbers=numbers, error=f"{model.name} has one version: nothing to compare yet.")
        return Comparison(numbers=numbers, error="Choose two or more versions to compare.")
    # Exact lookups, not __in: a number past the database's integer range then matches nothing
    # instead of overflowing the query (SQLite raises OverflowError for it).
    wanted = Q()
    for number in numbers:
        wanted |= Q(version_number=number)
    rows = version_list(model=model).filter(wanted).select_related("experiment", "run", "created_by")
    found = {version.version_number: version for version in rows}
    missing = [number for number in numbers if number not in found]
    if missing:
        return Comparison(
            numbers=numbers,
            error=f"There is no version {missing[0]} of {model.name}. Choose two or more versions of this model.",
        )
    return compare_versions([found[number] for number in numbers])


def requested_model_ids(values: Iterable[str]) -> list[int]:
    """The model ids ``values`` name, in their order, each once; CompareError when one is not an id
    or there are more than MAX_COMPARED."""
    ids: list[int] = []
    for value in values:
        value = (value or "").strip()
        if not value:
            continue
        # Eighteen digits fit every database's bigint: a longer one names no model.
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise CompareError(f"“{value[:40]}” is not a model id. Select two or more models.")
        if int(value) not in ids:
            ids.append(int(value))
    if len(ids) > MAX_COMPARED:
        raise CompareError(f"Select at most {MAX_COMPARED} models to compare side by side.")
    return ids


def current_versions_comparison(*, models: QuerySet[MLModel], requested: Sequence[str]) -> Comparison:
    """The current versions (each the newest) of the models among ``models`` that ``requested``
    names by id, the first the baseline, side by side (each version with its model), or why not:
    one query."""
    try:
        ids = requested_model_ids(requested)
    except CompareError as error:
        return Comparison(error=str(error))
    if len(ids) < 2:
        return Comparison(error="Select two or more models to compare.")
    rows = (
        ModelVersion.objects.filter(
            model__in=models.filter(pk__in=ids).values("pk"), version_number=F("model__latest_version")
        )
        .select_related("model", "experiment", "run", "created_by")
        .order_by()
    )
    found = {version.model_id: version for version in rows}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        return Comparison(error=f"There is no model #{missing[0]} with a version to compare here.")
    return compare_versions([found[pk] for pk in ids])


# --- the dashboard -------------------------------------------------------------------------------


def bar_percent(count: int, largest: int) -> int:
    """A bar's length in percent of the largest count of its chart (not of the total: nine
    frameworks then still look different); a count above zero shows at least a sliver."""
    return max(2, round(100 * count / largest)) if count and largest else 0


def scaled_bars(rows: Sequence[tuple[str, str, int]]) -> list[tuple[str, str, int, int]]:
    """(value, label, count) rows with each bar's length (``bar_percent``)."""
    largest = max((count for _, _, count in rows), default=0)
    return [(value, label, count, bar_percent(count, largest)) for value, label, count in rows]


TREND_WEEKS = 12


@dataclass(frozen=True)
class TrendWeek:
    start: date
    versions: int
    promotions: int
    # Bar heights in percent of the largest count of the chart.
    versions_height: int = 0
    promotions_height: int = 0


def weekly_trend(*, user, weeks: int = TREND_WEEKS, now: datetime | None = None) -> list[TrendWeek]:
    """Versions registered and moves to production per week (weeks start on Monday, UTC), the last
    ``weeks`` weeks oldest first, this week last: one query (a UNION of two grouped counts)."""
    if not user.is_authenticated:
        return []
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    this_week = today - timedelta(days=today.weekday())
    first = this_week - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    week = TruncWeek("created_at", tzinfo=UTC)
    versions = (
        ModelVersion.objects.filter(created_at__gte=since)
        .annotate(kind=Value("versions"), week=week)
        .values_list("kind", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    promotions = (
        LifecycleEvent.objects.filter(created_at__gte=since, to_stage=Stage.PRODUCTION)
        .annotate(kind=Value("promotions"), week=week)
        .values_list("kind", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[str, date], int] = {}
    for kind, start, n in versions.union(promotions, all=True):
        if isinstance(start, str):  # a backend that hands the truncated moment back as text
            start = datetime.fromisoformat(start)
        day = start.date() if isinstance(start, datetime) else start
        counts[(kind, day)] = counts.get((kind, day), 0) + n
    starts = [first + timedelta(weeks=offset) for offset in range(weeks)]
    largest = max(counts.values(), default=0)
    trend = []
    for start in starts:
        registered, promoted = counts.get(("versions", start), 0), counts.get(("promotions", start), 0)
        trend.append(
            TrendWeek(start, registered, promoted, bar_percent(registered, largest), bar_percent(promoted, largest))
        )
    return trend


def best_production_models(*, user, limit: int = 5) -> QuerySet[MLModel]:
    """The models in production with the highest accuracy (ties by name): one query."""
    return (
        model_list(user=user)
        .filter(lifecycle=Stage.PRODUCTION, accuracy__isnull=False)
        .only("id", "name", "framework", "accuracy", "f1_score", "latest_version", "aliases")
        .order_by("-accuracy", "name")[:limit]
    )


def pending_approvals(*, user, limit: int = 5) -> list[ApprovalRequest]:
    """The requests waiting longest for a decision, with their model and requester, each carrying
    ``waiting`` (how many wait in all): one query."""
    if not user.is_authenticated:
        return []
    rows = (
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)
        .select_related("model", "requested_by")
        .annotate(waiting=Window(Count("id")))
        .order_by("created_at", "id")
    )
    return list(rows[:limit])


@dataclass(frozen=True)
class ActivityEntry:
    """One line of the registry's recent activity: ``kind`` "lifecycle" (``before``/``after`` are
    stages), "alias" (``name`` the alias; ``from_version``/``to_version``) or "version" (``to_version``
    its number, ``name`` its note)."""

    kind: str
    model_id: int
    model_name: str
    actor: str | None
    at: datetime
    name: str | None
    before: str | None
    after: str | None
    from_version: int | None
    to_version: int | None


ACTIVITY_LIMIT = 10


def recent_activity(*, user, limit: int = ACTIVITY_LIMIT) -> list[ActivityEntry]:
    """The newest stage moves, alias changes and versions across the registry, from their audit rows:
    one query (a UNION of the three, each joined to its model and actor)."""
    if not user.is_authenticated:
        return []
    text, number = CharField(), IntegerField()

    def null(kind):
        return Cast(Value(None), kind)

    columns = ("kind", "model_id", "model_name", "actor_name", "at", "label", "before", "after", "v1", "v2")
    common = {"model_name": F("model__name"), "at": F("created_at")}
    moves = LifecycleEvent.objects.annotate(
        kind=Value("lifecycle", text),
        actor_name=F("actor__username"),
        label=null(text),
        before=F("from_stage"),
        after=F("to_stage"),
        v1=null(number),
        v2=null(number),
        **common,
    ).values_list(*columns)
    aliases = AliasEvent.objects.annotate(
        kind=Value("alias", text),
        actor_name=F("actor__username"),
        label=F("alias"),
        before=null(text),
        after=null(text),
        v1=F("from_version"),
        v2=F("to_version"),
        **common,
    ).values_list(*columns)
    versions = ModelVersion.objects.annotate(
        kind=Value("version", text),
        actor_name=F("created_by__username"),
        label=Cast(Substr("note", 1, 200), text),
        before=null(text),
        after=null(text),
        v1=null(number),
        v2=F("version_number"),
        **common,
    ).values_list(*columns)
    parts = [moves, aliases, versions]
    if connection.features.supports_slicing_ordering_in_compound:
        # Each part's newest first (PostgreSQL): the union then sorts three times limit rows, not every row.
        parts = [part.order_by("-created_at", "-id")[:limit] for part in parts]
    else:
        parts = [part.order_by() for part in parts]
    rows = parts[0].union(*parts[1:], all=True).order_by("-at")[:limit]
    return [
        ActivityEntry(kind, model_id, model_name, actor, at, label, before, after, v1, v2)
        for kind, model_id, model_name, actor, at, label, before, after, v1, v2 in rows
    ]
