"""/api/v1/webhooks/: create (the secret shown once), list, get, change, delete, test, deliveries and
redeliver; each user manages their own webhooks, a superuser every one."""

import base64

import pytest

from mlmodels.tests.factories import MLModelFactory
from webhooks.models import Delivery, Webhook
from webhooks.tests.factories import DeliveryFactory, WebhookFactory

pytestmark = pytest.mark.django_db

LIST_BUDGET = 6


def create(api, **fields):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["lifecycle.changed"], **fields}
    return api.post("/api/v1/webhooks/", body, format="json")


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def test_creating_a_webhook_answers_its_secret_once(owner_api, user):
    model = MLModelFactory(owner=user)

    made = create(owner_api, events=["lifecycle.changed", "alias.set"], model=model.pk, description="deploy bot")

    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    assert body["events"] == ["lifecycle.changed", "alias.set"]
    assert body["model"] == {"id": model.pk, "name": model.name}
    assert (body["active"], body["description"], body["owner"]["username"]) == (True, "deploy bot", user.username)
    again = owner_api.get(f"/api/v1/webhooks/{body['id']}/").json()
    listed = owner_api.get("/api/v1/webhooks/").json()["results"]
    assert "secret" not in again and all("secret" not in item for item in listed)
    assert Webhook.objects.get(pk=body["id"]).secret == body["secret"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"events": []}, "events", "at least 1"),
        ({"events": ["model.exploded"]}, "events", "Unknown event type(s): model.exploded"),
        ({"events": "lifecycle.changed"}, "events", "list"),
        ({"url": "ftp://example.com/"}, "url", "http:// or https://"),
        ({"url": "x" * 2001}, "url", "no more than 2000"),
        ({"model": 99999}, "model", "No model with id 99999"),
        ({"description": "d" * 501}, "description", "no more than 500"),
        ({"secret": "whsec_mine"}, "secret", "Unknown or read-only field"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_kept(owner_api, fields, field, message):
    answer = create(owner_api, **fields)

    assert answer.status_code == 400
    assert message in " ".join(answer.json()[field])
    assert Webhook.objects.count() == 0


def test_another_user_s_model_cannot_be_subscribed_to(owner_api, other_user):
    theirs = MLModelFactory(owner=other_user)

    answer = create(owner_api, model=theirs.pk)

    assert answer.status_code == 400
    assert "your own models only" in answer.json()["model"][0]


def test_a_user_sees_and_changes_only_their_own_webhooks_a_superuser_every_one(
    owner_api, other_api, client_for, superuser, user
):
    mine = create(owner_api).json()
    theirs = create(other_api).json()

    assert [w["id"] for w in owner_api.get("/api/v1/webhooks/").json()["results"]] == [mine["id"]]
    assert owner_api.get(f"/api/v1/webhooks/{theirs['id']}/").status_code == 404
    assert owner_api.patch(f"/api/v1/webhooks/{theirs['id']}/", {"active": False}, format="json").status_code == 404
    assert owner_api.delete(f"/api/v1/webhooks/{theirs['id']}/").status_code == 404
    admin = client_for(superuser)
    assert {w["id"] for w in admin.get("/api/v1/webhooks/").json()["results"]} == {mine["id"], theirs["id"]}
    assert admin.patch(f"/api/v1/webhooks/{theirs['id']}/", {"active": False}, format="json").status_code == 200


def test_a_webhook_s_fields_change_with_patch_and_put_and_it_is_deleted_with_delete(owner_api):
    made = create(owner_api).json()

    patched = owner_api.patch(
        f"/api/v1/webhooks/{made['id']}/", {"active": False, "events": ["tag.set"]}, format="json"
    )
    put = owner_api.put(
        f"/api/v1/webhooks/{made['id']}/", {"url": "http://127.0.0.1:10/new", "events": ["alias.set"]}, format="json"
    )
    refused = owner_api.patch(f"/api/v1/webhooks/{made['id']}/", {"url": "gopher://x/"}, format="json")
    deleted = owner_api.delete(f"/api/v1/webhooks/{made['id']}/")

    assert patched.status_code == 200 and (patched.json()["active"], patched.json()["events"]) == (False, ["tag.set"])
    assert put.status_code == 200 and put.json()["url"] == "http://127.0.0.1:10/new"
    assert refused.status_code == 400
    assert deleted.status_code == 204 and not Webhook.objects.filter(pk=made["id"]).exists()


def test_deliveries_list_newest_first_within_a_query_budget(owner_api, user, django_assert_max_num_queries):
    webhook = WebhookFactory(owner=user)
    for _ in range(25):
        DeliveryFactory(webhook=webhook)

    with django_assert_max_num_queries(LIST_BUDGET):
        page = owner_api.get(f"/api/v1/webhooks/{webhook.pk}/deliveries/")

    body = page.json()
    assert page.status_code == 200 and body["count"] == 25 and len(body["results"]) == 20
    first = body["results"][0]
    assert set(first) == {
        "id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error",
        "last_attempt_at", "next_retry_at", "delivered_at", "created_at",
    }  # fmt: skip
    assert [d["id"] for d in body["results"]] == sorted((d["id"] for d in body["results"]), reverse=True)


def test_the_list_keeps_its_query_budget(owner_api, user, django_assert_max_num_queries):
    for _ in range(15):
        WebhookFactory(owner=user, model=MLModelFactory(owner=user))

    with django_assert_max_num_queries(LIST_BUDGET):
        answer = owner_api.get("/api/v1/webhooks/")

    assert answer.json()["count"] == 15


def test_test_and_redeliver_answer_202_with_the_delivery(owner_api, user, in_process, receiver):
    with receiver() as hooked:
        made = create(owner_api, url=hooked.url()).json()
        tested = owner_api.post(f"/api/v1/webhooks/{made['id']}/test/")
        delivery = Delivery.objects.get(webhook_id=made["id"])
        again = owner_api.post(f"/api/v1/webhooks/{made['id']}/deliveries/{delivery.pk}/redeliver/")
        missing = owner_api.post(f"/api/v1/webhooks/{made['id']}/deliveries/999999/redeliver/")

    assert tested.status_code == 202 and tested.json()["event_type"] == "webhook.test"
    assert again.status_code == 202 and again.json()["id"] == delivery.pk
    assert missing.status_code == 404


def test_another_user_cannot_test_or_read_the_deliveries_of_a_webhook(owner_api, other_api):
    made = create(owner_api).json()

    assert other_api.post(f"/api/v1/webhooks/{made['id']}/test/").status_code == 404
    assert other_api.get(f"/api/v1/webhooks/{made['id']}/deliveries/").status_code == 404


def test_anonymous_callers_get_401(api_client):
    assert api_client.get("/api/v1/webhooks/").status_code == 401
    assert api_client.post("/api/v1/webhooks/", {}, format="json").status_code == 401
