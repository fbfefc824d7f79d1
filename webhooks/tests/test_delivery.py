"""Deliveries to a receiver on loopback: signed the Standard Webhooks way (verified with that
specification's own library), retried on 5xx with the same webhook-id, final on other 4xx, never
redirected, and sent only to the webhooks that may see the event."""

import json
import socket

import pytest
from standardwebhooks import Webhook as StandardWebhook

from mlmodels import services as model_services
from mlmodels.tests.factories import MLModelFactory
from webhooks import services
from webhooks.models import Delivery
from webhooks.tests.factories import WebhookFactory
from webhooks.tests.receiver import Answer, Receiver

pytestmark = pytest.mark.django_db


def promote(model, actor, committed, to_stage="staging"):
    with committed():
        model_services.lifecycle_move(model=model, actor=actor, to_stage=to_stage, comment="ready")


def test_a_lifecycle_move_reaches_the_receiver_signed_and_verifiable_with_standardwebhooks(
    user, in_process, committed, receiver
):
    model = MLModelFactory(owner=user)
    with receiver() as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url(), events=["lifecycle.changed"])
        promote(model, user, committed)
        [request] = hooked.wait_for(1)

    payload = StandardWebhook(webhook.secret).verify(request.body, request.headers)
    assert payload["type"] == "lifecycle.changed"
    assert payload["model"] == {"id": model.pk, "name": model.name}
    assert payload["data"]["to_stage"] == "staging" and payload["actor"]["username"] == user.username
    assert request.headers["webhook-id"] == payload["id"]
    assert request.headers["content-type"] == "application/json"
    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert str(delivery.event_id) == payload["id"] and delivery.delivered_at


def test_a_signature_made_with_another_secret_does_not_verify(user, in_process, committed, receiver):
    model = MLModelFactory(owner=user)
    with receiver() as hooked:
        WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        [request] = hooked.wait_for(1)

    other = WebhookFactory.build().secret
    with pytest.raises(Exception, match="No matching signature"):
        StandardWebhook(other).verify(request.body, request.headers)


def test_500s_are_retried_with_the_same_webhook_id_until_a_success(user, in_process, committed, receiver):
    model = MLModelFactory(owner=user)
    with receiver(Answer(500), Answer(503), Answer(429), Answer(204)) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        requests = hooked.wait_for(4)

    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    for request in requests:  # each attempt signed afresh, each verifiable
        StandardWebhook(webhook.secret).verify(request.body, request.headers)
    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 204)


def test_a_404_is_final(user, in_process, committed, receiver):
    model = MLModelFactory(owner=user)
    with receiver(Answer(404, b"no such hook")) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        hooked.wait_for(1)

    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 404)
    assert delivery.last_error == "Answered 404: no such hook"
    assert len(hooked.requests) == 1


def test_a_redirect_is_not_followed(user, in_process, committed, receiver):
    model = MLModelFactory(owner=user)
    with receiver() as elsewhere, receiver(Answer(307, headers={"Location": elsewhere.url("/stolen")})) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        hooked.wait_for(1)

    assert elsewhere.requests == []
    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.last_status_code) == ("failed", 307)
    assert "not followed" in delivery.last_error


def test_attempts_stop_at_the_maximum(settings, user, in_process, committed, receiver):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    model = MLModelFactory(owner=user)
    with receiver(Answer(502)) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        hooked.wait_for(3)

    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 502)
    assert len(hooked.requests) == 3


def test_a_receiver_that_does_not_answer_in_time_is_retried(settings, user, in_process, committed, receiver):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    model = MLModelFactory(owner=user)
    with receiver(Answer(200, delay=1.0), Answer(200)) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        hooked.wait_for(2)

    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_a_connection_refused_is_retried_then_given_up(settings, user, in_process, committed):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once closed
    model = MLModelFactory(owner=user)
    webhook = WebhookFactory(owner=user, url=f"http://127.0.0.1:{port}/hook")
    promote(model, user, committed)

    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert delivery.last_error.startswith("Connection failed")


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch, user, in_process, committed, receiver):
    """A name that resolves to the receiver once and somewhere else after: the delivery looks it up
    once and connects to what it checked (no second lookup for DNS rebinding to win)."""
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "hooks.example.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0]))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    model = MLModelFactory(owner=user)
    with receiver() as hooked:
        webhook = WebhookFactory(owner=user, url=f"http://hooks.example.test:{hooked.port}/hook")
        promote(model, user, committed)
        [request] = hooked.wait_for(1)

    assert lookups == ["hooks.example.test"]
    assert request.headers["host"] == f"hooks.example.test:{hooked.port}"
    assert Delivery.objects.get(webhook=webhook).status == "delivered"


def test_only_subscribed_types_of_one_s_own_models_are_delivered(
    user, other_user, superuser, in_process, committed, receiver
):
    mine, theirs = MLModelFactory(owner=user), MLModelFactory(owner=other_user)
    with receiver() as hooked:
        everything = WebhookFactory(owner=user, url=hooked.url("/all"), events=["lifecycle.changed", "tag.set"])
        just_one = WebhookFactory(owner=user, url=hooked.url("/one"), model=mine, events=["lifecycle.changed"])
        other_type = WebhookFactory(owner=user, url=hooked.url("/aliases"), events=["alias.set"])
        turned_off = WebhookFactory(owner=user, url=hooked.url("/off"), active=False)
        admin_hook = WebhookFactory(owner=superuser, url=hooked.url("/admin"))
        promote(mine, user, committed)
        promote(theirs, other_user, committed)
        hooked.wait_for(4)

    paths = sorted(request.path for request in hooked.requests)
    assert paths == ["/admin", "/admin", "/all", "/one"]
    assert Delivery.objects.filter(webhook__in=[other_type, turned_off]).count() == 0
    assert Delivery.objects.filter(webhook=everything).get().event_type == "lifecycle.changed"
    assert {d.webhook_id for d in Delivery.objects.all()} == {everything.pk, just_one.pk, admin_hook.pk}


def test_a_rolled_back_change_delivers_nothing(user, in_process, receiver, django_capture_on_commit_callbacks):
    model = MLModelFactory(owner=user)
    webhook = WebhookFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        model_services.lifecycle_move(model=model, actor=user, to_stage="staging")
    # The test's transaction never commits; the delivery waits for a commit that does not come.
    assert callbacks and Delivery.objects.filter(webhook=webhook).count() == 0


def test_redeliver_sends_the_same_event_again_with_the_same_id(user, in_process, committed, receiver):
    model = MLModelFactory(owner=user)
    with receiver(Answer(410), Answer(200)) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        promote(model, user, committed)
        delivery = Delivery.objects.get(webhook=webhook)
        assert delivery.status == "failed"
        with committed():
            again = services.delivery_redeliver(delivery=delivery, actor=user)
        first, second = hooked.wait_for(2)

    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery.event_id)
    assert first.body == second.body
    assert again.status == "pending"  # what the redeliver answered: sent after its commit
    again.refresh_from_db()
    assert (again.status, again.attempts, again.last_status_code) == ("delivered", 1, 200)


def test_the_test_event_reaches_even_a_turned_off_webhook(user, in_process, committed, receiver):
    with receiver() as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url(), active=False)
        with committed():
            services.webhook_test(webhook=webhook, actor=user)
        [request] = hooked.wait_for(1)

    payload = StandardWebhook(webhook.secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test" and payload["data"]["webhook"] == {"id": webhook.pk}
    assert json.loads(request.body)["model"] is None


def test_deliveries_to_one_receiver_share_a_kept_alive_connection(user, in_process, committed):
    model = MLModelFactory(owner=user)
    with Receiver(keep_alive=True) as hooked:
        WebhookFactory(owner=user, url=hooked.url("/one"), events=["lifecycle.changed"])
        WebhookFactory(owner=user, url=hooked.url("/two"), events=["lifecycle.changed"])
        promote(model, user, committed)
        promote(model, user, committed, to_stage="development")
        requests = hooked.wait_for(4)

    assert len({request.client_port for request in requests}) == 1
