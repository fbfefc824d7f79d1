"""/api/v1/approvals/: thin views over mlmodels.approvals (list, get, approve, reject, cancel)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlmodels import approvals
from mlmodels.models import ApprovalRequest, ApprovalStatus
from registry.api.serializers import ErrorSerializer, StrictSerializer
from registry.validators import MAX_DATABASE_ID, MAX_TEXT_LENGTH


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ModelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def _person(user) -> dict | None:
    return None if user is None else {"id": user.pk, "username": user.username}


class ApprovalSerializer(serializers.ModelSerializer):
    model = serializers.SerializerMethodField()
    action = serializers.SerializerMethodField()
    requested_by = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = (
            "id",
            "model",
            "action",
            "requested_by",
            "comment",
            "status",
            "decided_by",
            "decision_comment",
            "decided_at",
            "superseded_by",
            "created_at",
        )
        read_only_fields = fields

    @extend_schema_field(ModelRefSerializer)
    def get_model(self, request: ApprovalRequest) -> dict:
        return {"id": request.model_id, "name": request.model.name}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_action(self, request: ApprovalRequest) -> dict:
        return request.action_data()

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_requested_by(self, request: ApprovalRequest) -> dict | None:
        return _person(request.requested_by)

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_decided_by(self, request: ApprovalRequest) -> dict | None:
        return _person(request.decided_by)


def approval_output(request: ApprovalRequest) -> dict:
    return ApprovalSerializer(request).data


class DecisionSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH, default="")


STATUS = OpenApiParameter(
    "status", OpenApiTypes.STR, enum=ApprovalStatus.values, description="Only requests with this status."
)
MODEL = OpenApiParameter("model", OpenApiTypes.INT, description="Only the requests about this model (its id).")
MINE = OpenApiParameter("mine", OpenApiTypes.BOOL, description="Only the requests you filed.")


@extend_schema_view(
    list=extend_schema(summary="List approval requests", parameters=[STATUS, MODEL, MINE]),
    retrieve=extend_schema(summary="Get an approval request"),
)
class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ApprovalSerializer
    permission_classes = [IsAuthenticated]
    titles = {"List": "Approval requests", "Instance": "Approval request"}
    queryset = ApprovalRequest.objects.none()  # for schema generation; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApprovalRequest.objects.none()
        if self.action != "list":
            return approvals.approval_list(user=self.request.user)
        params = self.request.query_params
        status = params.get("status") or None
        if status is not None and status not in ApprovalStatus.values:
            raise serializers.ValidationError(
                {"status": [f"Unknown status {status!r}; statuses are: {', '.join(ApprovalStatus.values)}."]}
            )
        model_id = _positive_id(params.get("model"), field="model")
        requests = approvals.approval_list(user=self.request.user, status=status, model_id=model_id)
        if params.get("mine") in ("1", "true", "True"):
            requests = requests.filter(requested_by=self.request.user)
        return requests

    def get_object(self) -> ApprovalRequest:
        pk = _positive_id(self.kwargs["pk"], field="id")
        return get_object_or_404(self.get_queryset(), pk=pk)

    def _decision(self, request) -> str:
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["comment"]

    @extend_schema(
        summary="Approve a request and carry its change out",
        request=DecisionSerializer,
        responses={
            200: ApprovalSerializer,
            400: OpenApiResponse(description="Field errors"),
            403: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Already decided, or the change no longer fits"),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        approval = approvals.approval_approve(
            approval=self.get_object(), actor=request.user, comment=self._decision(request)
        )
        return Response(approval_output(approval))

    @extend_schema(
        summary="Reject a request (a comment is required)",
        request=DecisionSerializer,
        responses={
            200: ApprovalSerializer,
            400: OpenApiResponse(description="Field errors: no reason given"),
            403: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        approval = approvals.approval_reject(
            approval=self.get_object(), actor=request.user, comment=self._decision(request)
        )
        return Response(approval_output(approval))

    @extend_schema(
        summary="Cancel your own request",
        request=None,
        responses={200: ApprovalSerializer, 403: ErrorSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(approval_output(approvals.approval_cancel(approval=self.get_object(), actor=request.user)))


def _positive_id(value: str | None, *, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_DATABASE_ID:
        if field == "id":
            raise Http404("No approval request has this id.")
        raise serializers.ValidationError({field: [f"“{value}” is not a model id."]})
    return number
