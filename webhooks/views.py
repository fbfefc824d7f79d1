"""The webhooks pages: a user's webhooks with a form to add one (its secret shown once), and a
webhook's page with its deliveries, a test and a redeliver button. Thin views over webhooks.services
and webhooks.selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from registry.forms import add_service_errors
from webhooks import selectors, services
from webhooks.forms import WebhookForm

DELIVERIES_SHOWN = 50


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request):
    """GET: the list and the form; POST: create, answered with the new webhook's page (200, not a
    redirect) so its secret is shown once and never stored in a session or a URL."""
    form = WebhookForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = services.webhook_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _detail(request, webhook, secret=webhook.secret)
    webhooks = selectors.webhook_list(user=request.user)
    return render(request, "webhooks/list.html", {"form": form, "webhooks": webhooks})


def _webhook(request, pk: int):
    return get_object_or_404(selectors.webhook_list(user=request.user), pk=pk)


def _detail(request, webhook, *, secret: str | None = None):
    deliveries = selectors.delivery_list(webhook=webhook)[:DELIVERIES_SHOWN]
    template = "webhooks/_deliveries.html" if request.htmx and secret is None else "webhooks/detail.html"
    context = {"webhook": webhook, "deliveries": deliveries, "secret": secret, "shown": DELIVERIES_SHOWN}
    return render(request, template, context)


@login_required
def webhook_detail(request, pk: int):
    return _detail(request, _webhook(request, pk))


@login_required
@require_POST
def webhook_test(request, pk: int):
    webhook = _webhook(request, pk)
    delivery = services.webhook_test(webhook=webhook, actor=request.user)
    delivery.refresh_from_db()
    messages.info(request, f"Test event sent: {delivery.get_status_display().lower()}.")
    return redirect("webhook-detail", pk=webhook.pk)


@login_required
@require_POST
def webhook_toggle(request, pk: int):
    webhook = _webhook(request, pk)
    services.webhook_update(webhook=webhook, actor=request.user, active=not webhook.active)
    messages.success(request, f"Webhook turned {'on' if webhook.active else 'off'}.")
    return redirect("webhook-detail", pk=webhook.pk)


@login_required
@require_POST
def delivery_redeliver(request, pk: int, delivery_id: int):
    webhook = _webhook(request, pk)
    delivery = get_object_or_404(webhook.deliveries.select_related("webhook"), pk=delivery_id)
    delivery = services.delivery_redeliver(delivery=delivery, actor=request.user)
    messages.info(request, f"Event {delivery.event_id} sent again: {delivery.get_status_display().lower()}.")
    return redirect("webhook-detail", pk=webhook.pk)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_delete(request, pk: int):
    webhook = _webhook(request, pk)
    if request.method == "POST":
        try:
            services.webhook_delete(webhook=webhook, actor=request.user)
        except PermissionDenied as refused:
            messages.error(request, str(refused))
            return redirect("webhook-detail", pk=webhook.pk)
        messages.success(request, f"Webhook to {webhook.url} deleted.")
        return redirect("webhook-list")
    return render(request, "webhooks/delete.html", {"webhook": webhook})
