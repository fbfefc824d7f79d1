"""The webhooks pages: add one (its secret shown once, a refused URL a form error), see its
deliveries, send a test, redeliver, turn it off, delete it; and the admin's lists."""

import re

import pytest

from mlmodels.tests.factories import MLModelFactory
from webhooks.models import Delivery, Webhook
from webhooks.tests.factories import DeliveryFactory, WebhookFactory

pytestmark = pytest.mark.django_db

PAGE_BUDGET = 12


def test_adding_a_webhook_shows_its_secret_once(settings, owner_client, user):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    model = MLModelFactory(owner=user, name="churn")

    page = owner_client.post(
        "/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "events": ["lifecycle.changed", "alias.set"], "model": model.pk},
    )

    assert page.status_code == 200
    text = page.content.decode()
    webhook = Webhook.objects.get()
    assert (webhook.events, webhook.model, webhook.owner) == (["lifecycle.changed", "alias.set"], model, user)
    assert "shown this once" in text and webhook.secret in text
    again = owner_client.get(f"/webhooks/{webhook.pk}/").content.decode()
    assert webhook.secret not in again and "churn" in again


def test_a_private_address_is_a_form_error_and_nothing_is_kept(settings, owner_client):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    page = owner_client.post("/webhooks/", {"url": "http://169.254.169.254/latest/", "events": ["lifecycle.changed"]})

    assert page.status_code == 200
    assert "169.254.169.254 is a link-local address" in page.content.decode()
    assert not Webhook.objects.exists()


def test_the_model_choice_offers_only_one_s_own_models(owner_client, user, other_user):
    MLModelFactory(owner=user, name="mine-model")
    MLModelFactory(owner=other_user, name="their-model")

    text = owner_client.get("/webhooks/").content.decode()

    assert "mine-model" in text and "their-model" not in text


def test_the_webhook_page_lists_deliveries_with_status_and_answer(owner_client, user, django_assert_max_num_queries):
    webhook = WebhookFactory(owner=user)
    DeliveryFactory(webhook=webhook, status="failed", attempts=8, last_status_code=503, last_error="Answered 503.")
    for _ in range(10):
        DeliveryFactory(webhook=webhook, status="delivered", attempts=1, last_status_code=200)

    with django_assert_max_num_queries(PAGE_BUDGET):
        page = owner_client.get(f"/webhooks/{webhook.pk}/")

    text = page.content.decode()
    assert text.count('class="badge delivery-delivered"') == 10
    assert "Answered 503." in text and ">Redeliver<" in text
    partial = owner_client.get(f"/webhooks/{webhook.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="deliveries">') and "<html" not in partial


def test_the_list_page_keeps_its_query_budget(owner_client, user, django_assert_max_num_queries):
    for _ in range(12):
        WebhookFactory(owner=user, model=MLModelFactory(owner=user))

    with django_assert_max_num_queries(PAGE_BUDGET):
        page = owner_client.get("/webhooks/")

    assert page.status_code == 200 and page.content.decode().count("/webhooks/") >= 12


def test_test_redeliver_toggle_and_delete_from_the_page(settings, owner_client, user, in_process, receiver):
    with receiver() as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        tested = owner_client.post(f"/webhooks/{webhook.pk}/test/")
        delivery = Delivery.objects.get(webhook=webhook)
        again = owner_client.post(f"/webhooks/{webhook.pk}/deliveries/{delivery.pk}/redeliver/")
        toggled = owner_client.post(f"/webhooks/{webhook.pk}/toggle/")
        confirm = owner_client.get(f"/webhooks/{webhook.pk}/delete/")
        deleted = owner_client.post(f"/webhooks/{webhook.pk}/delete/")

    assert tested.status_code == again.status_code == toggled.status_code == 302
    assert "cannot be undone" in confirm.content.decode()
    assert deleted.status_code == 302 and deleted.url == "/webhooks/"
    assert not Webhook.objects.filter(pk=webhook.pk).exists()


def test_another_user_s_webhook_is_404_on_every_page(other_client, user):
    webhook = WebhookFactory(owner=user)

    for url in (f"/webhooks/{webhook.pk}/", f"/webhooks/{webhook.pk}/delete/"):
        assert other_client.get(url).status_code == 404
    assert other_client.post(f"/webhooks/{webhook.pk}/test/").status_code == 404
    assert other_client.post(f"/webhooks/{webhook.pk}/toggle/").status_code == 404
    assert Webhook.objects.get(pk=webhook.pk).active


def test_the_admin_lists_every_webhook_and_delivery_and_never_the_secret(superuser_client, user, other_user):
    mine, theirs = WebhookFactory(owner=user), WebhookFactory(owner=other_user, url="http://127.0.0.1:10/other")
    DeliveryFactory(webhook=theirs)

    webhooks = superuser_client.get("/admin/webhooks/webhook/").content.decode()
    one = superuser_client.get(f"/admin/webhooks/webhook/{mine.pk}/change/").content.decode()
    deliveries = superuser_client.get("/admin/webhooks/delivery/")

    assert "http://127.0.0.1:10/other" in webhooks and user.username in webhooks
    assert mine.secret not in one and not re.search(r"whsec_", one)
    assert deliveries.status_code == 200 and "lifecycle.changed" in deliveries.content.decode()


def test_the_admin_turns_webhooks_off_through_the_services(superuser_client, user):
    webhook = WebhookFactory(owner=user)

    superuser_client.post(
        "/admin/webhooks/webhook/", {"action": "turn_off", "_selected_action": [webhook.pk]}, follow=True
    )

    assert not Webhook.objects.get(pk=webhook.pk).active
