"""/api/v1/experiments/ and /api/v1/experiments/{id}/runs/: thin views over experiments.services,
experiments.runs and experiments.selectors."""

import math

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from experiments import runs, selectors, services
from experiments.filters import ExperimentFilterSet
from experiments.models import Experiment, LifecycleStage, Run, RunStatus
from registry.api.permissions import IsOwnerOrSuperuserToChange
from registry.api.serializers import ErrorSerializer, JSONObjectField, StrictSerializer
from registry.validators import MAX_DATABASE_ID, MAX_TEXT_LENGTH


class ExperimentSerializer(serializers.ModelSerializer):
    owner_id = serializers.IntegerField(read_only=True)
    parameters = serializers.DictField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    model_ids = serializers.SerializerMethodField(help_text="Ids of the models this experiment produced.")

    class Meta:
        model = Experiment
        fields = (
            "id",
            "name",
            "description",
            "parameters",
            "tags",
            "owner_id",
            "model_ids",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_model_ids(self, experiment) -> list[int]:
        return [model.pk for model in experiment.models.all()]


class ExperimentWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH)
    parameters = JSONObjectField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)


@extend_schema_view(
    list=extend_schema(summary="List experiments"),
    retrieve=extend_schema(summary="Get an experiment"),
    create=extend_schema(
        summary="Create an experiment",
        request=ExperimentWriteSerializer,
        responses={201: ExperimentSerializer},
        examples=[
            OpenApiExample(
                "A sweep",
                value={"name": "fraud-sweep", "parameters": {"lr": 0.1}, "tags": ["fraud"]},
                request_only=True,
            )
        ],
    ),
    update=extend_schema(summary="Replace an experiment's fields", request=ExperimentWriteSerializer),
    partial_update=extend_schema(summary="Change some of an experiment's fields", request=ExperimentWriteSerializer),
    destroy=extend_schema(summary="Delete an experiment (its models stay, unlinked)"),
)
class ExperimentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ExperimentSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrSuperuserToChange]
    filterset_class = ExperimentFilterSet
    titles = {"List": "Experiments", "Instance": "Experiment"}
    queryset = Experiment.objects.none()  # for schema generation; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Experiment.objects.none()
        return selectors.experiment_list(user=self.request.user)

    def _write(self, request, *, partial: bool) -> dict:
        serializer = ExperimentWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _represent(self, experiment: Experiment) -> dict:
        """The experiment as a read shows it: read again through the selector, for its model ids."""
        return ExperimentSerializer(self.get_queryset().get(pk=experiment.pk)).data

    def create(self, request):
        data = self._write(request, partial=False)
        experiment = services.experiment_create(owner=request.user, **data)
        return Response(self._represent(experiment), status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        experiment = self.get_object()
        data = self._write(request, partial=partial)
        services.experiment_update(experiment=experiment, actor=request.user, data=data)
        return Response(self._represent(experiment))

    def destroy(self, request, pk=None):
        services.experiment_delete(experiment=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- runs ---------------------------------------------------------------------------------------------
# Metric values that JSON has no number for (NaN, the infinities) are written as the strings "NaN",
# "Infinity" and "-Infinity", as MLflow's wire (protobuf's JSON mapping) writes them, and read the same way.


def metric_number(value: float, is_nan: bool) -> float | str:
    if is_nan:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


@extend_schema_field(
    {
        "oneOf": [{"type": "number", "format": "double"}, {"type": "string"}],
        "description": 'A number, or "NaN", "Infinity" or "-Infinity" (which JSON has no number for).',
    }
)
class MetricValueField(serializers.Field):
    def to_representation(self, value):
        return value

    def to_internal_value(self, data):
        return data


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(RunStatus.values)})$",
        "description": f"One of {', '.join(RunStatus.values)}.",
    }
)
class RunStatusField(serializers.ChoiceField):
    """A run's status. A pattern in the schema rather than an enum: the schema's enums are named by
    field, and a second "status" enum (approvals, deliveries) would get a generated name."""

    def __init__(self, **kwargs):
        super().__init__(choices=RunStatus.choices, **kwargs)


class LatestMetricSerializer(serializers.Serializer):
    value = MetricValueField()
    timestamp = serializers.IntegerField(help_text="Epoch milliseconds.")
    step = serializers.IntegerField()


class MetricPointSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = MetricValueField()
    timestamp = serializers.IntegerField(help_text="Epoch milliseconds.")
    step = serializers.IntegerField()


class RunSerializer(serializers.Serializer):
    """A run as API v1 shows it; ``metrics`` holds each metric's latest point."""

    run_id = serializers.CharField()
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    status = RunStatusField()
    start_time = serializers.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    end_time = serializers.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    deleted_time = serializers.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    user_id = serializers.IntegerField()
    user = serializers.CharField(help_text="The username of the run's creator.")
    artifact_uri = serializers.CharField(allow_blank=True)
    params = serializers.DictField(child=serializers.CharField(allow_blank=True))
    metrics = serializers.DictField(child=LatestMetricSerializer())
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True))


def run_output(run: Run) -> dict:
    """RunSerializer's output of a run read with ``selectors.with_run_data`` (or one run: three queries)."""
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lifecycle_stage": run.lifecycle_stage,
        "deleted_time": run.deleted_time,
        "user_id": run.user_id,
        "user": run.user.username,
        "artifact_uri": run.artifact_uri,
        "params": {param.key: param.value for param in run.params.all()},
        "metrics": {
            metric.key: {
                "value": metric_number(metric.value, metric.is_nan),
                "timestamp": metric.timestamp,
                "step": metric.step,
            }
            for metric in run.latest_metrics.all()
        },
        "tags": {tag.key: tag.value for tag in run.tags.all()},
    }


class RunCreateSerializer(StrictSerializer):
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=runs.MAX_RUN_NAME_LENGTH, help_text="Generated when left out."
    )
    start_time = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_DATABASE_ID, help_text="Epoch milliseconds; now by default."
    )
    tags = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=runs.MAX_TAG_VALUE_LENGTH),
        required=False,
    )


class RunUpdateSerializer(StrictSerializer):
    name = serializers.CharField(required=False, max_length=runs.MAX_RUN_NAME_LENGTH)
    status = RunStatusField(required=False)
    end_time = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_DATABASE_ID, help_text="Epoch milliseconds."
    )


class MetricInSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=runs.MAX_KEY_LENGTH)
    value = MetricValueField()
    timestamp = serializers.IntegerField(required=False, min_value=0, help_text="Epoch milliseconds; now by default.")
    step = serializers.IntegerField(required=False, default=0)


class ParamInSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=runs.MAX_KEY_LENGTH)
    value = serializers.CharField(max_length=runs.MAX_PARAM_VALUE_LENGTH, allow_blank=True)


class TagInSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=runs.MAX_KEY_LENGTH)
    value = serializers.CharField(max_length=runs.MAX_TAG_VALUE_LENGTH, allow_blank=True)


class LogBatchDocumentation(serializers.Serializer):
    """What a log-batch body holds (the schema's description of it)."""

    metrics = MetricInSerializer(many=True, required=False, help_text="At most 1000.")
    params = ParamInSerializer(many=True, required=False, help_text="At most 100.")
    tags = TagInSerializer(many=True, required=False, help_text="At most 100.")


class LogBatchSerializer(StrictSerializer):
    # Only the shape here: each entry is validated by the service, with MLflow's rules and messages.
    metrics = serializers.ListField(child=serializers.JSONField(), required=False)
    params = serializers.ListField(child=serializers.JSONField(), required=False)
    tags = serializers.ListField(child=serializers.JSONField(), required=False)


class LoggedSerializer(serializers.Serializer):
    metrics = serializers.IntegerField(help_text="Distinct metric points in the batch.")
    params = serializers.IntegerField(help_text="Params logged for the first time.")
    tags = serializers.IntegerField(help_text="Tags set.")


EXPERIMENT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The experiment's id.")
RUN_ID = OpenApiParameter(
    "run_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The run's id: 32 lowercase hex characters."
)
METRIC_KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The metric's key.")
LIST_FILTERS = [
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        description="Comma-separated sort keys: metrics.<key>, params.<key>, tags.<key>, start_time, end_time, "
        "name, status, run_id, user; '-' for descending. Runs without the key come last, a NaN metric after "
        "every number. Newest first by default.",
    ),
    OpenApiParameter(
        "lifecycle", OpenApiTypes.STR, enum=list(selectors.LIFECYCLE_VIEWS), description="active by default."
    ),
    OpenApiParameter("status", OpenApiTypes.STR, enum=RunStatus.values),
]
ERRORS = {400: OpenApiResponse(description="Field errors"), 403: ErrorSerializer, 404: ErrorSerializer}


@extend_schema(parameters=[EXPERIMENT_ID], tags=["runs"])
@extend_schema_view(
    list=extend_schema(
        summary="List an experiment's runs",
        description="Each run with its params, the latest point of each metric and its tags.",
        parameters=LIST_FILTERS,
    ),
    retrieve=extend_schema(summary="Get a run", parameters=[RUN_ID]),
    create=extend_schema(
        summary="Create a run",
        description="The run starts RUNNING, created by the caller; only the experiment's owner or a superuser "
        "creates runs in it.",
        request=RunCreateSerializer,
        responses={201: RunSerializer, **ERRORS},
        examples=[OpenApiExample("A run", value={"name": "lr-0.1", "tags": {"team": "fraud"}}, request_only=True)],
    ),
    partial_update=extend_schema(
        summary="Change a run's status, end time or name",
        parameters=[RUN_ID],
        request=RunUpdateSerializer,
        responses={200: RunSerializer, **ERRORS},
        examples=[OpenApiExample("Finish", value={"status": "FINISHED", "end_time": 1767225600000}, request_only=True)],
    ),
    destroy=extend_schema(
        summary="Delete a run (soft: it can be restored)", parameters=[RUN_ID], responses={204: None, **ERRORS}
    ),
)
class RunViewSet(viewsets.GenericViewSet):
    serializer_class = RunSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrSuperuserToChange]
    lookup_field = "run_id"
    lookup_value_regex = "[0-9a-f]{32}"
    titles = {"List": "Runs", "Instance": "Run"}
    queryset = Run.objects.none()  # for schema generation; requests use the selectors

    def get_serializer_class(self):
        # What the browsable API builds its forms from: the body each write takes.
        writes = {"create": RunCreateSerializer, "partial_update": RunUpdateSerializer, "log_batch": LogBatchSerializer}
        return writes.get(getattr(self, "action", None)) or super().get_serializer_class()

    def _experiment(self) -> Experiment:
        return get_object_or_404(Experiment.objects.visible_to(self.request.user), pk=self.kwargs["id"])

    def get_object(self) -> Run:
        run = selectors.run_get(self.kwargs["run_id"], user=self.request.user)
        if run is None or str(run.experiment_id) != self.kwargs["id"]:
            raise Http404("This experiment has no run with this id.")
        self.check_object_permissions(self.request, run)
        return run

    def _represent(self, run: Run) -> dict:
        return run_output(selectors.with_run_data(Run.objects.select_related("user")).get(pk=run.pk))

    def list(self, request, **kwargs):
        experiment = self._experiment()
        params = request.query_params
        ordering = [term for term in params.get("ordering", "").split(",") if term.strip()]
        found = selectors.runs_of(
            experiment,
            user=request.user,
            order_by=ordering,
            lifecycle=params.get("lifecycle", "active"),
            status=params.get("status") or None,
        )
        page = self.paginate_queryset(selectors.with_run_data(found))
        return self.get_paginated_response([run_output(run) for run in page])

    def retrieve(self, request, **kwargs):
        return Response(run_output(self.get_object()))

    def create(self, request, **kwargs):
        experiment = self._experiment()
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = runs.run_create(experiment=experiment, actor=request.user, **serializer.validated_data)
        return Response(self._represent(run), status=status.HTTP_201_CREATED)

    def partial_update(self, request, **kwargs):
        run = self.get_object()
        serializer = RunUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        runs.run_update(run=run, actor=request.user, **serializer.validated_data)
        return Response(self._represent(run))

    def destroy(self, request, **kwargs):
        runs.run_delete(run=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Restore a deleted run", parameters=[RUN_ID], request=None, responses={200: RunSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, **kwargs):
        run = runs.run_restore(run=self.get_object(), actor=request.user)
        return Response(self._represent(run))

    @extend_schema(
        summary="Log metrics, params and tags in one batch",
        description="MLflow's log-batch: at most 1000 metrics, 100 params and 100 tags (1000 entries in all). "
        "The whole batch is validated first, then written in one transaction, or refused whole. A param's "
        'value cannot change once logged; a metric value may be a number or "NaN", "Infinity", "-Infinity".',
        parameters=[RUN_ID],
        request=LogBatchDocumentation,
        responses={200: LoggedSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "An epoch",
                value={
                    "metrics": [{"key": "loss", "value": 0.31, "timestamp": 1767225600000, "step": 3}],
                    "params": [{"key": "lr", "value": "0.1"}],
                    "tags": [{"key": "mlflow.source.name", "value": "train.py"}],
                },
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="log-batch")
    def log_batch(self, request, **kwargs):
        run = self.get_object()
        serializer = LogBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        logged = runs.run_log_batch(run=run, actor=request.user, **serializer.validated_data)
        return Response({"metrics": logged.metrics, "params": logged.params, "tags": logged.tags})

    @extend_schema(
        summary="The history of one metric of a run",
        description="Every logged point, by step then time; empty for a key never logged (as MLflow's).",
        parameters=[RUN_ID, METRIC_KEY],
        responses=MetricPointSerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path=r"metrics/(?P<key>.+)", serializer_class=MetricPointSerializer)
    def metric_history(self, request, key=None, **kwargs):
        run = self.get_object()
        page = self.paginate_queryset(selectors.metric_history(run, key))
        return self.get_paginated_response(
            [
                {
                    "key": point.key,
                    "value": metric_number(point.value, point.is_nan),
                    "timestamp": point.timestamp,
                    "step": point.step,
                }
                for point in page
            ]
        )
