"""/api/v1/models/ and /api/v1/files/: thin views over mlmodels.services and mlmodels.selectors."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
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
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from mlmodels import selectors, services
from mlmodels.approvals_api import ApprovalSerializer, PersonSerializer, approval_output
from mlmodels.filters import MLModelFilterSet
from mlmodels.models import METRIC_FIELDS, LifecycleEvent, MLModel, ModelVersion, ScanStatus, Stage
from mlmodels.paths import parse_artifact_path
from mlmodels.storage import (
    ARTIFACT_CONTENT_TYPE,
    artifact_open_stream,
    artifact_presigned_url,
    key_from_download_token,
    signed_download_token,
)
from registry.api.permissions import IsOwnerOrSuperuserToChange
from registry.api.rows import RowFormat
from registry.api.serializers import ErrorSerializer, JSONObjectField, StrictSerializer
from registry.validators import MAX_DATABASE_ID, MAX_TAG_VALUE, MAX_TEXT_LENGTH

# --- serializers --------------------------------------------------------------------------------


def _metric_field() -> serializers.FloatField:
    return serializers.FloatField(min_value=0.0, max_value=1.0, allow_null=True, required=False)


class MLModelSerializer(serializers.ModelSerializer):
    file_path = serializers.CharField(source="file", read_only=True, allow_null=True)
    owner_id = serializers.IntegerField(read_only=True)
    experiment_id = serializers.IntegerField(read_only=True, allow_null=True)
    hyperparameters = serializers.DictField(read_only=True)
    tags = serializers.DictField(child=serializers.CharField(), read_only=True)
    aliases = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = MLModel
        fields = (
            "id",
            "name",
            "description",
            "framework",
            "task_type",
            "lifecycle",
            "accuracy",
            "precision",
            "recall",
            "f1_score",
            "hyperparameters",
            "tags",
            "aliases",
            "file_path",
            "file_size",
            "file_sha256",
            "owner_id",
            "experiment_id",
            "latest_version",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


# The reads of models (list, get) show MLModelSerializer's output from rows of these columns.
MODEL_ROW = RowFormat(
    MLModelSerializer.Meta.fields, sources={"file_path": "file"}, datetimes=("created_at", "updated_at")
)


class MLModelWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH)
    framework = serializers.ChoiceField(choices=MLModel._meta.get_field("framework").choices, required=False)
    task_type = serializers.ChoiceField(choices=MLModel._meta.get_field("task_type").choices, required=False)
    experiment_id = serializers.PrimaryKeyRelatedField(
        source="experiment", queryset=MLModel.experiment_model().objects.all(), allow_null=True, required=False
    )
    accuracy = _metric_field()
    precision = _metric_field()
    recall = _metric_field()
    f1_score = _metric_field()
    hyperparameters = JSONObjectField(required=False)


class TagValueSerializer(StrictSerializer):
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TAG_VALUE)


class TagSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class AliasTargetSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1, max_value=MAX_DATABASE_ID)
    # Why, when the change becomes an approval request (a protected alias, approvals on).
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


class AliasSerializer(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.IntegerField()


class LifecycleMoveSerializer(StrictSerializer):
    lifecycle = serializers.ChoiceField(choices=Stage.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


class VersionFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class ModelVersionSerializer(serializers.ModelSerializer):
    model_id = serializers.IntegerField(read_only=True)
    file_path = serializers.CharField(source="file", read_only=True, allow_null=True)
    experiment_id = serializers.IntegerField(read_only=True, allow_null=True)
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    hyperparameters = serializers.DictField(read_only=True)
    tags = serializers.DictField(child=serializers.CharField(), read_only=True)
    # Blank for a version without a file.
    scan_status = serializers.ChoiceField(choices=ScanStatus.choices, allow_blank=True, read_only=True)
    scan_findings = serializers.ListField(child=serializers.CharField(), read_only=True)
    artifact_metadata = serializers.DictField(read_only=True)
    aliases = serializers.SerializerMethodField()
    # A folder artifact's files (file_path is null then); empty for a single file or none.
    files = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "model_id",
            "version_number",
            *METRIC_FIELDS,
            "hyperparameters",
            "tags",
            "file_path",
            "file_size",
            "file_sha256",
            "file_count",
            "experiment_id",
            "created_by_id",
            "note",
            "scan_status",
            "scan_findings",
            "artifact_format",
            "artifact_metadata",
            "scanned_at",
            "created_at",
            "aliases",
            "files",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aliases(self, version) -> list[str]:
        aliases = getattr(version, "model_aliases", None)
        return selectors.aliases_of_version(
            version.model.aliases if aliases is None else aliases, version.version_number
        )

    @extend_schema_field(VersionFileSerializer(many=True))
    def get_files(self, version) -> list[dict]:
        if not version.file_count:
            return []
        return selectors.version_files_by_id([version.pk])[version.pk]


# The reads of versions (list, get) and the new version's response show ModelVersionSerializer's
# output from rows of these columns, and then the aliases pointing at each (from the model's row)
# and a folder's files.
VERSION_ROW = RowFormat(
    ModelVersionSerializer.Meta.fields[:-2], sources={"file_path": "file"}, datetimes=("created_at", "scanned_at")
)


def version_output(data: dict, model_aliases: dict[str, int], files: dict[int, list[dict]] | None = None) -> dict:
    """A version's answer from VERSION_ROW's, with the aliases pointing at it and its files (from
    ``files``, the page's files by version id, or one query for a folder version)."""
    data["aliases"] = selectors.aliases_of_version(model_aliases, data["version_number"])
    if not data["file_count"]:
        data["files"] = []
    elif files is not None:
        data["files"] = files[data["id"]]
    else:
        data["files"] = selectors.version_files_by_id([data["id"]])[data["id"]]
    return data


class VersionCreateSerializer(StrictSerializer):
    accuracy = _metric_field()
    precision = _metric_field()
    recall = _metric_field()
    f1_score = _metric_field()
    hyperparameters = JSONObjectField(required=False)
    experiment_id = serializers.PrimaryKeyRelatedField(
        source="experiment", queryset=MLModel.experiment_model().objects.all(), allow_null=True, required=False
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


class FolderUploadSerializer(StrictSerializer):
    file = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        allow_empty=False,
        help_text="The folder's files, one part each.",
    )
    path = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Each file's relative path (MLmodel, artifacts/vocab.txt), in the order of the files; "
        "without it, each file's name. Needed for files in subfolders: a part's file name loses its folders.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")
    accuracy = _metric_field()
    precision = _metric_field()
    recall = _metric_field()
    f1_score = _metric_field()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        paths = attrs.get("path")
        if paths is not None and len(paths) != len(attrs["file"]):
            raise serializers.ValidationError(
                {"path": [f"One path per file: {len(attrs['file'])} files, {len(paths)} paths."]}
            )
        return attrs


class RollbackSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


class ApprovalNoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    requested_by = PersonSerializer(allow_null=True)
    comment = serializers.CharField()
    decision_comment = serializers.CharField()


class LifecycleEventSerializer(serializers.ModelSerializer):
    model_id = serializers.IntegerField(read_only=True)
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)
    # The approval request the move carried out (its actor is the approver who decided it), or null.
    approval = serializers.SerializerMethodField()

    class Meta:
        model = LifecycleEvent
        fields = ("id", "model_id", "from_stage", "to_stage", "actor_id", "actor", "comment", "approval", "created_at")
        read_only_fields = fields

    @extend_schema_field(ApprovalNoteSerializer(allow_null=True))
    def get_approval(self, event: LifecycleEvent) -> dict | None:
        request = event.approval
        if request is None:
            return None
        requester = request.requested_by
        return {
            "id": request.pk,
            "requested_by": None if requester is None else {"id": requester.pk, "username": requester.username},
            "comment": request.comment,
            "decision_comment": request.decision_comment,
        }


# --- models -------------------------------------------------------------------------------------

NUMBER = OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH, description="Version number.")


@extend_schema_view(
    list=extend_schema(summary="List models", description="Filter, search, order and paginate the registry."),
    retrieve=extend_schema(summary="Get a model"),
    create=extend_schema(
        summary="Register a model",
        request=MLModelWriteSerializer,
        responses={201: MLModelSerializer, 400: OpenApiResponse(description="Field errors")},
        examples=[
            OpenApiExample(
                "A classifier",
                value={
                    "name": "churn-xgb",
                    "framework": "xgboost",
                    "task_type": "classification",
                    "accuracy": 0.91,
                    "hyperparameters": {"max_depth": 6},
                },
                request_only=True,
            )
        ],
    ),
    update=extend_schema(summary="Replace a model's fields", request=MLModelWriteSerializer),
    partial_update=extend_schema(summary="Change some of a model's fields", request=MLModelWriteSerializer),
    destroy=extend_schema(summary="Delete a model, its versions, events and files"),
)
class MLModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MLModelSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrSuperuserToChange]
    filterset_class = MLModelFilterSet
    titles = {"List": "Models", "Instance": "Model"}
    queryset = MLModel.objects.none()  # for schema generation; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MLModel.objects.none()
        return selectors.model_list(user=self.request.user)

    def page_plan(self, queryset, count):
        """Called by the paginator with the list's row count, which also picks a search's plan."""
        if self.action == "list" and self.request.query_params.get("search"):
            return selectors.model_search_plan(queryset, matches=count)
        return queryset

    def list(self, request):
        rows = selectors.model_rows(self.filter_queryset(self.get_queryset()), columns=MODEL_ROW.columns)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(MODEL_ROW.format_rows(page))

    def retrieve(self, request, pk=None):
        model = self.get_object()
        if request.accepted_renderer.format != "json":
            # The browsable API builds its forms, and their permission checks, from the serializer
            # and the instance behind the data.
            return Response(self.get_serializer(model).data)
        return Response(MODEL_ROW.format_instance(model))

    @extend_schema(
        summary="A model by its name",
        description="Names are unique across the registry, compared in any letter case and Unicode form.",
        responses={200: MLModelSerializer, 404: ErrorSerializer},
    )
    @action(detail=False, methods=["get"], url_path=r"by-name/(?P<name>.+)", filterset_class=None)
    def by_name(self, request, name: str):
        model = selectors.model_by_name(user=request.user, name=name)
        if model is None:
            raise Http404(f"No model is named “{name}”.")
        return Response(MODEL_ROW.format_instance(model))

    def filter_queryset(self, queryset):
        # The list's filters, search and ordering apply to the list only: a request about one model
        # has no use for a filter set, which would validate every filter's query parameter.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def _write(self, request, *, partial: bool) -> dict:
        serializer = MLModelWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def create(self, request):
        data = self._write(request, partial=False)
        model = services.model_create(owner=request.user, **data)
        return Response(MLModelSerializer(model).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        model = self.get_object()
        data = self._write(request, partial=partial)
        services.model_update(model=model, actor=request.user, data=data)
        return Response(MLModelSerializer(model).data)

    def destroy(self, request, pk=None):
        services.model_delete(model=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Move the lifecycle stage",
        request=LifecycleMoveSerializer,
        description="With PRODUCTION_NEEDS_APPROVAL, an owner without the approve permission asking for "
        "production gets 202 and a pending approval request instead.",
        responses={
            200: MLModelSerializer,
            202: ApprovalSerializer,
            400: OpenApiResponse(description="Refused move, naming the allowed ones"),
        },
        examples=[OpenApiExample("Promote", value={"lifecycle": "staging", "comment": "passed offline eval"})],
    )
    @action(detail=True, methods=["patch"])
    def lifecycle(self, request, pk=None):
        model = self.get_object()
        serializer = LifecycleMoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pending = services.lifecycle_move(
            model=model,
            actor=request.user,
            to_stage=serializer.validated_data["lifecycle"],
            comment=serializer.validated_data["comment"],
        )
        if pending is not None:
            return Response(approval_output(pending), status=status.HTTP_202_ACCEPTED)
        return Response(MLModelSerializer(model).data)

    @extend_schema(summary="List a model's versions", responses=ModelVersionSerializer(many=True), methods=["GET"])
    @extend_schema(
        summary="Record a new version",
        request=VersionCreateSerializer,
        responses={201: ModelVersionSerializer},
        methods=["POST"],
        examples=[OpenApiExample("Nightly metrics", value={"accuracy": 0.93, "note": "nightly retrain"})],
    )
    @action(detail=True, methods=["get", "post"], serializer_class=ModelVersionSerializer, filterset_class=None)
    def versions(self, request, pk=None):
        model = self.get_object()
        if request.method == "POST":
            serializer = VersionCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = dict(serializer.validated_data)
            note = data.pop("note")
            version = services.version_record(model=model, actor=request.user, data=data, note=note)
            output = version_output(VERSION_ROW.format_instance(version), model.aliases)
            return Response(output, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(selectors.version_rows(model=model, columns=VERSION_ROW.columns))
        rows = VERSION_ROW.format_rows(page)
        # One query for the files of the page's folder versions, none when it shows no folder.
        files = selectors.version_files_by_id([row["id"] for row in rows if row["file_count"]])
        return self.get_paginated_response([version_output(row, model.aliases, files) for row in rows])

    def _tag(self, request, model, key: str, version_number: int | None):
        if request.method == "DELETE":
            try:
                services.tag_delete(model=model, actor=request.user, key=key, version_number=version_number)
            except LookupError as missing:
                raise Http404(str(missing)) from None
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = TagValueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        value = serializer.validated_data["value"]
        try:
            services.tag_set(model=model, actor=request.user, key=key, value=value, version_number=version_number)
        except LookupError as missing:
            raise Http404(str(missing)) from None
        return Response({"key": key, "value": value})

    @extend_schema(
        summary="Set (PUT) or remove (DELETE) a tag of the model",
        request=TagValueSerializer,
        responses={200: TagSerializer, 204: None, 404: ErrorSerializer},
        examples=[OpenApiExample("Set", value={"value": "payments"}, request_only=True)],
    )
    @action(detail=True, methods=["put", "delete"], url_path=r"tags/(?P<key>[^/]+)", filterset_class=None)
    def tag(self, request, pk=None, key=None):
        return self._tag(request, self.get_object(), key, None)

    @extend_schema(
        summary="Set (PUT) or remove (DELETE) a tag of a version",
        parameters=[NUMBER],
        request=TagValueSerializer,
        responses={200: TagSerializer, 204: None, 404: ErrorSerializer},
    )
    @action(
        detail=True,
        methods=["put", "delete"],
        url_path=r"versions/(?P<number>[0-9]+)/tags/(?P<key>[^/]+)",
        filterset_class=None,
    )
    def version_tag(self, request, pk=None, number=None, key=None):
        return self._tag(request, self.get_object(), key, int(number))

    def _alias_model(self, pk) -> MLModel:
        # The service decides who may change which alias (approvers set protected ones on any model).
        return get_object_or_404(self.get_queryset(), pk=_id_or_404(pk))

    @extend_schema(
        summary="The version an alias points at",
        responses={200: ModelVersionSerializer, 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"aliases/(?P<alias>[^/]+)", filterset_class=None)
    def alias(self, request, pk=None, alias=None):
        model = self._alias_model(pk)
        number = model.aliases.get(alias)
        version = number and selectors.version_get(user=request.user, model_id=model.pk, number=number)
        if not version:
            raise Http404(f"Model {model.pk} has no alias “{alias}”.")
        return Response(version_output(VERSION_ROW.format_instance(version), model.aliases))

    @extend_schema(
        summary="Set or move an alias of the model",
        description="A protected alias is set by approvers and superusers only; other aliases by the model's "
        "owner. With PRODUCTION_NEEDS_APPROVAL, the owner's change of a protected alias is a pending approval "
        "request (202).",
        request=AliasTargetSerializer,
        responses={200: AliasSerializer, 202: ApprovalSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
        examples=[OpenApiExample("Point at version 3", value={"version": 3}, request_only=True)],
    )
    @alias.mapping.put
    def alias_set(self, request, pk=None, alias=None):
        model = self._alias_model(pk)
        serializer = AliasTargetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        number = serializer.validated_data["version"]
        try:
            pending = services.alias_set(
                model=model,
                actor=request.user,
                alias=alias,
                version_number=number,
                comment=serializer.validated_data["comment"],
            )
        except LookupError as missing:
            raise Http404(str(missing)) from None
        if pending is not None:
            return Response(approval_output(pending), status=status.HTTP_202_ACCEPTED)
        return Response({"alias": alias, "version": number})

    @extend_schema(
        summary="Remove an alias of the model",
        responses={204: None, 202: ApprovalSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    @alias.mapping.delete
    def alias_delete(self, request, pk=None, alias=None):
        try:
            pending = services.alias_delete(model=self._alias_model(pk), actor=request.user, alias=alias)
        except LookupError as missing:
            raise Http404(str(missing)) from None
        if pending is not None:
            return Response(approval_output(pending), status=status.HTTP_202_ACCEPTED)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Get one version", parameters=[NUMBER], responses=ModelVersionSerializer)
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]+)",
        serializer_class=ModelVersionSerializer,
        filterset_class=None,
    )
    def version(self, request, pk=None, number=None):
        version = selectors.version_get(user=request.user, model_id=_id_or_404(pk), number=int(number))
        if version is None:
            self.get_object()  # 404 naming the model when it is the model that is missing
            raise Http404("This model has no version with that number.")
        # Reading needs no object permission beyond the visibility the selector applied.
        return Response(version_output(VERSION_ROW.format_instance(version), version.model_aliases))

    @extend_schema(
        summary="Delete a version",
        description="Its aliases are dropped (audited) and its file removed unless another version uses it. "
        "The model's current (newest) version cannot be deleted: roll back first.",
        parameters=[NUMBER],
        responses={
            204: None,
            400: OpenApiResponse(description="The current version, which stays"),
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    @version.mapping.delete
    def version_delete(self, request, pk=None, number=None):
        try:
            services.version_delete(model=self.get_object(), actor=request.user, version_number=int(number))
        except LookupError as missing:
            raise Http404(str(missing)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Roll back to a version",
        description="Records a new version equal to version `number` and makes it current.",
        parameters=[NUMBER],
        request=RollbackSerializer,
        responses={201: ModelVersionSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"versions/(?P<number>[0-9]+)/rollback",
        serializer_class=ModelVersionSerializer,
        filterset_class=None,
    )
    def rollback(self, request, pk=None, number=None):
        model = self.get_object()
        version = get_object_or_404(selectors.version_list(model=model), version_number=int(number))
        serializer = RollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new_version = services.model_rollback(
            version=version, actor=request.user, note=serializer.validated_data["note"]
        )
        return Response(ModelVersionSerializer(new_version).data, status=status.HTTP_201_CREATED)

    def _readable_version(self, pk, number) -> ModelVersion:
        version = selectors.version_get(user=self.request.user, model_id=_id_or_404(pk), number=int(number))
        if version is None:
            self.get_object()  # 404 naming the model when it is the model that is missing
            raise Http404("This model has no version with that number.")
        return version

    @extend_schema(
        summary="Upload a folder as a new version",
        description="An MLflow model or any folder of files: one `file` part per file, with a `path` part "
        "per file (in the same order) giving its relative path. Paths are relative POSIX paths: no '..', no "
        "leading '/', no backslash, no control characters, no empty segments. All or nothing: a refused "
        "file stores none.",
        request={"multipart/form-data": FolderUploadSerializer},
        responses={
            201: ModelVersionSerializer,
            400: OpenApiResponse(description="Field errors, a refused path"),
            403: ErrorSerializer,
            404: ErrorSerializer,
            413: ErrorSerializer,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="versions/files",
        parser_classes=[MultiPartParser],
        serializer_class=FolderUploadSerializer,
        filterset_class=None,
    )
    def version_files_upload(self, request, pk=None):
        model = self.get_object()
        serializer = FolderUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        uploads, paths, note = data.pop("file"), data.pop("path", None), data.pop("note")
        paths = paths if paths is not None else [upload.name for upload in uploads]
        version = services.version_create_with_files(
            model=model, actor=request.user, files=list(zip(paths, uploads, strict=True)), note=note, data=data
        )
        output = version_output(VERSION_ROW.format_instance(version), model.aliases)
        return Response(output, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="List a folder version's files",
        parameters=[NUMBER],
        responses=VersionFileSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]+)/files",
        serializer_class=VersionFileSerializer,
        filterset_class=None,
    )
    def version_file_list(self, request, pk=None, number=None):
        version = self._readable_version(pk, number)
        page = self.paginate_queryset(services.version_files(version).values("path", "size", "sha256"))
        return self.get_paginated_response(list(page))

    @extend_schema(
        summary="Download one file of a folder version",
        parameters=[NUMBER, OpenApiParameter("path", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            400: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]+)/files/(?P<path>.+)",
        serializer_class=ErrorSerializer,
        filterset_class=None,
    )
    def version_file(self, request, pk=None, number=None, path=None):
        version = self._readable_version(pk, number)
        try:
            file, stream = services.version_file_open(version, path)
        except LookupError as missing:
            raise Http404(str(missing)) from None
        return _file_response(file.key, size=file.size, stream=stream)

    @extend_schema(
        summary="Download a version's artifact",
        description="Its file, or for a folder version a zip of its files, streamed as it is built.",
        parameters=[NUMBER],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: ErrorSerializer},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]+)/download",
        serializer_class=ErrorSerializer,
        filterset_class=None,
    )
    def version_download(self, request, pk=None, number=None):
        version = self._readable_version(pk, number)
        if version.file_count:
            return _zip_response(version, file_name=f"model-{version.model_id}-v{version.version_number}.zip")
        if not version.file:
            raise Http404(f"Version {version.version_number} has no artifact.")
        return _file_response(version.file, size=version.file_size)

    @extend_schema(summary="The lifecycle audit trail", responses=LifecycleEventSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=LifecycleEventSerializer, filterset_class=None)
    def history(self, request, pk=None):
        model = self.get_object()
        page = self.paginate_queryset(selectors.event_list(model=model))
        return self.get_paginated_response(LifecycleEventSerializer(page, many=True).data)

    @extend_schema(
        summary="Download the current artifact",
        description="302 to a presigned URL when artifacts are in S3; the file itself otherwise. A folder "
        "artifact (an MLflow model) downloads as a zip of its files, streamed as it is built.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="Redirect to a presigned S3 URL"),
            404: ErrorSerializer,
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def download(self, request, pk=None):
        model = self.get_object()
        if model.file_count:
            # The current artifact is its newest version's (the model's fields follow it).
            version = selectors.version_list(model=model).first()
            return _zip_response(version, file_name=f"{model.name}-v{version.version_number}.zip")
        if not model.file:
            raise Http404("This model has no artifact file.")
        url = artifact_presigned_url(model.file, expires_in=settings.PRESIGNED_URL_SECONDS)
        if url is not None:
            return HttpResponseRedirect(url)
        return _file_response(model.file, size=model.file_size)


def _id_or_404(pk: str) -> int:
    try:
        return int(pk)
    except ValueError:
        raise Http404("No MLModel matches the given query.") from None


def _file_response(key: str, *, size: int | None, stream=None) -> FileResponse:
    """An artifact as bytes to save. Whatever its name, never a page or a script of this origin: an
    uploaded ``evil.js`` was served as text/javascript, which the CSP's ``script-src 'self'`` trusts."""
    name = key.rsplit("/", 1)[-1]
    response = FileResponse(
        stream or artifact_open_stream(key), as_attachment=True, filename=name, content_type=ARTIFACT_CONTENT_TYPE
    )
    return _as_download(response, size=size)


def _as_download(response, *, size: int | None):
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if size is not None:
        response["Content-Length"] = str(size)
    return response


def _zip_response(version: ModelVersion, *, file_name: str) -> StreamingHttpResponse:
    """A folder version as a zip, built while it is sent (its length is not known ahead)."""
    response = StreamingHttpResponse(services.version_zip_stream(version), content_type=ARTIFACT_CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=file_name)
    return _as_download(response, size=None)


# --- files --------------------------------------------------------------------------------------


class UploadSerializer(StrictSerializer):
    file = serializers.FileField(allow_empty_file=True)
    model_id = serializers.IntegerField(min_value=1, max_value=MAX_DATABASE_ID)
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


class UploadResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    content_type = serializers.CharField()
    version = serializers.IntegerField()


class PresignedUrlSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_in = serializers.IntegerField()


def _artifact(path: str, *, user=None) -> selectors.ArtifactRecord:
    """The artifact a client-given path names: 400 for a malformed path, 404 when no row points
    at it (or ``user`` may not read it). Validation comes before any storage call."""
    try:
        parsed = parse_artifact_path(path)
    except DjangoValidationError as error:
        raise serializers.ValidationError({"detail": error.messages[0]}) from None
    record = selectors.artifact_record(path=parsed, user=user)
    if record is None:
        raise Http404("No artifact at this path.")
    return record


@extend_schema(tags=["files"])
class FileUploadView(GenericAPIView):
    """Upload an artifact for a model; it becomes the model's new version."""

    # Multipart only: a file needs it, and the schema (below) advertises nothing else.
    parser_classes = [MultiPartParser]
    serializer_class = UploadSerializer

    @extend_schema(
        summary="Upload an artifact file",
        request={"multipart/form-data": UploadSerializer},
        responses={
            201: UploadResultSerializer,
            400: OpenApiResponse(description="Field errors"),
            403: ErrorSerializer,
            404: ErrorSerializer,
            413: ErrorSerializer,
        },
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        model = get_object_or_404(selectors.model_list(user=request.user), pk=serializer.validated_data["model_id"])
        if not model.can_change(request.user):
            raise DRFPermissionDenied("Only the model's owner or a superuser can upload its files.")
        version = services.model_attach_file(
            model=model, actor=request.user, file=upload, note=serializer.validated_data["note"]
        )
        content_type = mimetypes.guess_type(version.file)[0] or "application/octet-stream"
        return Response(
            {
                "path": version.file,
                "size": version.file_size,
                "sha256": version.file_sha256,
                "content_type": content_type,
                "version": version.version_number,
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["files"])
class FileDownloadView(GenericAPIView):
    """Stream a stored artifact (any version's file) as an attachment."""

    serializer_class = ErrorSerializer  # errors only; the success body is the file

    @extend_schema(
        summary="Download an artifact by path",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, path: str):
        record = _artifact(path, user=request.user)
        return _file_response(path, size=record.size)


@extend_schema(tags=["files"])
class PresignedUrlView(GenericAPIView):
    """A URL that downloads the artifact without a token, valid for ``expires_in`` seconds."""

    serializer_class = PresignedUrlSerializer

    @extend_schema(
        summary="Get a presigned download URL",
        responses={200: PresignedUrlSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, path: str):
        _artifact(path, user=request.user)
        expires_in = settings.PRESIGNED_URL_SECONDS
        url = artifact_presigned_url(path, expires_in=expires_in)
        if url is None:
            token = signed_download_token(path, user_id=request.user.pk)
            url = request.build_absolute_uri(reverse("api:files-signed-download", args=[token]))
        return Response({"url": url, "expires_in": expires_in})


@extend_schema(tags=["files"])
class SignedDownloadView(GenericAPIView):
    """Serve a file named by a signed, expiring token (the embedded storage's presigned URL)."""

    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = ErrorSerializer

    @extend_schema(
        summary="Download through a signed URL",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 403: ErrorSerializer},
    )
    def get(self, request, token: str):
        try:
            key, user_id = key_from_download_token(token, max_age=settings.PRESIGNED_URL_SECONDS)
        except signing.SignatureExpired:
            raise DRFPermissionDenied("This download link has expired.") from None
        except signing.BadSignature:
            raise DRFPermissionDenied("This download link is not valid.") from None
        # The signature stands in for the sign-in of the user it was issued to, while they are active.
        if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
            raise DRFPermissionDenied("This download link was issued to an account that is no longer active.")
        # The file must still belong to a model.
        record = _artifact(key)
        return _file_response(key, size=record.size)
