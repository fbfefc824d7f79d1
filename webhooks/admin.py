"""Admin: every webhook and delivery. Webhooks are made on their page or through the API (where the
address rules and the one-time secret live); here they can be turned on or off, deleted, and their
deliveries sent again, through webhooks.services. The secret is never shown."""

from django.contrib import admin, messages

from webhooks import services
from webhooks.models import Delivery, Webhook


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "owner", "model", "event_list", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "owner__username", "model__name", "description")
    list_select_related = ("owner", "model")
    readonly_fields = ("owner", "url", "events", "model", "description", "active", "created_at", "updated_at")
    exclude = ("secret",)
    actions = ("turn_on", "turn_off", "send_test")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method == "GET" and super().has_change_permission(request, obj)

    @admin.display(description="events")
    def event_list(self, webhook: Webhook) -> str:
        return ", ".join(webhook.events)

    def _set_active(self, request, queryset, active: bool):
        for webhook in queryset:
            services.webhook_update(webhook=webhook, actor=request.user, active=active)
        self.message_user(
            request, f"{queryset.count()} webhook(s) turned {'on' if active else 'off'}.", messages.SUCCESS
        )

    @admin.action(description="Turn the selected webhooks on")
    def turn_on(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Turn the selected webhooks off")
    def turn_off(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Send the selected webhooks a test event")
    def send_test(self, request, queryset):
        for webhook in queryset:
            services.webhook_test(webhook=webhook, actor=request.user)
        self.message_user(request, f"Test event sent to {queryset.count()} webhook(s).", messages.SUCCESS)

    def delete_model(self, request, obj):
        services.webhook_delete(webhook=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for webhook in queryset:
            services.webhook_delete(webhook=webhook, actor=request.user)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "event_id", "webhook", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("event_id", "webhook__url")
    list_select_related = ("webhook",)
    actions = ("redeliver",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method == "GET" and super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Delivery._meta.fields]

    @admin.action(description="Send the selected deliveries again")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("webhook"):
            services.delivery_redeliver(delivery=delivery, actor=request.user)
        self.message_user(request, f"{queryset.count()} deliveries sent again.", messages.SUCCESS)
