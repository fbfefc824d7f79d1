"""/api/v1/webhooks/: thin views over webhooks.services and webhooks.selectors."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from mlmodels.models import MLModel
from registry.api.serializers import ErrorSerializer, StrictSerializer
from registry.validators import MAX_DATABASE_ID
from webhooks import selectors, services
from webhooks.addresses import MAX_URL_LENGTH
from webhooks.models import Delivery, Webhook


class WebhookSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        fields = ("id", "url", "events", "model", "description", "active", "owner", "created_at", "updated_at")
        read_only_fields = fields

    @extend_schema_field(
        {"type": "object", "nullable": True, "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    )
    def get_model(self, webhook: Webhook) -> dict | None:
        return None if webhook.model is None else {"id": webhook.model_id, "name": webhook.model.name}

    @extend_schema_field({"type": "object", "properties": {"id": {"type": "integer"}, "username": {"type": "string"}}})
    def get_owner(self, webhook: Webhook) -> dict:
        return {"id": webhook.owner_id, "username": webhook.owner.username}


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="whsec_…: verify the webhook-signature header with it. Shown only in this answer."
    )

    class Meta(WebhookSerializer.Meta):
        fields = (*WebhookSerializer.Meta.fields, "secret")
        read_only_fields = fields


class WebhookInputSerializer(StrictSerializer):
    url = serializers.CharField(max_length=MAX_URL_LENGTH, trim_whitespace=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=60), min_length=1, max_length=len(services.EVENT_TYPES)
    )
    model = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_DATABASE_ID, help_text="Only this model's events."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_DESCRIPTION)
    active = serializers.BooleanField(required=False, default=True)

    def validate_model(self, model_id):
        if model_id is None:
            return None
        model = MLModel.objects.filter(pk=model_id).only("id", "name", "owner_id").first()
        if model is None:
            raise serializers.ValidationError(f"No model with id {model_id}.")
        return model


class DeliverySerializer(serializers.ModelSerializer):
    next_retry_at = serializers.DateTimeField(source="next_attempt_at", read_only=True, allow_null=True)

    class Meta:
        model = Delivery
        fields = (
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "last_attempt_at",
            "next_retry_at",
            "delivered_at",
            "created_at",
        )
        read_only_fields = fields


def _webhook_answer(webhook: Webhook, *, code=status.HTTP_200_OK) -> Response:
    return Response(WebhookSerializer(webhook).data, status=code)


@extend_schema_view(
    list=extend_schema(summary="List your webhooks (a superuser: every one)"),
    retrieve=extend_schema(summary="Get a webhook (never its secret)"),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookSerializer
    titles = {"List": "Webhooks", "Instance": "Webhook"}
    queryset = Webhook.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return selectors.webhook_list(user=self.request.user)

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return WebhookInputSerializer
        if self.action == "deliveries":
            return DeliverySerializer
        return WebhookSerializer

    @extend_schema(
        summary="Create a webhook",
        request=WebhookInputSerializer,
        responses={201: WebhookCreatedSerializer, 400: OpenApiResponse(description="Field errors")},
    )
    def create(self, request):
        data = self._valid(request)
        webhook = services.webhook_create(actor=request.user, **data)
        answer = WebhookCreatedSerializer(webhook).data
        return Response(answer, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a webhook", request=WebhookInputSerializer, responses={200: WebhookSerializer})
    def update(self, request, pk=None):
        webhook = services.webhook_update(webhook=self.get_object(), actor=request.user, **self._valid(request))
        return _webhook_answer(webhook)

    @extend_schema(summary="Change some of a webhook's fields", request=WebhookInputSerializer)
    def partial_update(self, request, pk=None):
        data = self._valid(request, partial=True)
        webhook = services.webhook_update(webhook=self.get_object(), actor=request.user, **data)
        return _webhook_answer(webhook)

    @extend_schema(summary="Delete a webhook (its pending deliveries are dropped)", responses={204: None})
    def destroy(self, request, pk=None):
        services.webhook_delete(webhook=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _valid(self, request, *, partial=False) -> dict:
        serializer = WebhookInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @extend_schema(summary="Send the webhook a webhook.test event", request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.webhook_test(webhook=self.get_object(), actor=request.user)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The webhook's deliveries, newest first", responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        page = self.paginate_queryset(selectors.delivery_list(webhook=self.get_object()))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a delivery's event again (same body, same webhook-id)",
        request=None,
        responses={202: DeliverySerializer, 404: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        delivery = get_object_or_404(self.get_object().deliveries.select_related("webhook"), pk=delivery_id)
        delivery = services.delivery_redeliver(delivery=delivery, actor=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
