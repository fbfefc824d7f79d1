"""The address rules (webhooks/addresses.py): a webhook goes to public unicast addresses only,
checked at creation and again at every delivery."""

import socket

import pytest

from mlmodels import services as model_services
from mlmodels.tests.factories import MLModelFactory
from webhooks.addresses import Refused, check
from webhooks.models import Delivery
from webhooks.tests.factories import WebhookFactory


@pytest.fixture
def resolver(monkeypatch):
    """``resolver({"name": ["address", ...]})``: those names resolve so (once set, for every lookup
    of this test); any other name as the machine resolves it."""
    real = socket.getaddrinfo
    names: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names.update


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/hook", "a loopback address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://10.1.2.3/hook", "a private address"),
        ("http://192.168.0.10:8080/hook", "a private address"),
        ("http://172.16.5.4/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[::ffff:127.0.0.1]/hook", "an IPv4-mapped address"),
        ("http://[::ffff:a9fe:a9fe]/", "an IPv4-mapped address"),
        ("http://100.64.0.1/hook", "a shared (carrier-grade NAT) address"),
        ("http://0.0.0.0/hook", "the unspecified address"),
        ("http://224.0.0.1/hook", "a multicast address"),
        ("http://[fd00:ec2::254]/", "a private address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://localhost:8000/hook", "localhost resolves to"),
    ],
)
def test_addresses_that_are_not_public_are_refused(settings, url, kind):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(Refused, match="public addresses only") as refused:
        check(url)

    assert kind in str(refused.value)


def test_a_name_that_resolves_to_a_private_address_among_public_ones_is_refused(settings, resolver):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    resolver({"hooks.example.com": ["93.184.215.14", "10.0.0.7"]})

    with pytest.raises(Refused, match=r"hooks.example.com resolves to 10.0.0.7, which is a private address"):
        check("https://hooks.example.com/registry")


def test_a_public_address_is_the_target_with_the_url_s_host_port_and_path(settings, resolver):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    resolver({"hooks.example.com": ["93.184.215.14"]})

    target = check("https://hooks.example.com:8443/in?team=ml")

    assert (target.address, target.host, target.port, target.path) == (
        "93.184.215.14",
        "hooks.example.com",
        8443,
        "/in?team=ml",
    )
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("gopher://127.0.0.1:6379/_INFO", "must start with http:// or https://"),
        ("https://user:pw@hooks.example.com/", "must not carry a user name or password"),
        ("https:///nohost", "has no host"),
        ("https://hooks.example.com:99999/", "not valid"),
        ("https://hooks.example.com/a b", "spaces or control characters"),
        ("https://hooks.example.com/\r\nX: y", "spaces or control characters"),
        ("", "Enter the URL"),
    ],
)
def test_urls_that_are_not_http_urls_to_a_host_are_refused(url, message):
    with pytest.raises(Refused, match=message):
        check(url)


def test_a_name_that_does_not_resolve_is_a_lookup_error():
    with pytest.raises(LookupError, match="cannot be resolved"):
        check("https://no-such-host.invalid/hook")


def test_allowing_private_networks_lifts_only_the_address_rules(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    assert check("http://127.0.0.1:9/hook").address == "127.0.0.1"
    with pytest.raises(Refused):
        check("ftp://127.0.0.1/")


# --- at creation (the API) and at every delivery -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
    ],
)
def test_the_api_refuses_a_webhook_to_a_private_address_and_keeps_nothing(settings, owner_api, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    answer = owner_api.post("/api/v1/webhooks/", {"url": url, "events": ["lifecycle.changed"]}, format="json")

    assert answer.status_code == 400
    assert "public addresses only" in answer.json()["url"][0]
    assert not owner_api.get("/api/v1/webhooks/").json()["results"]


@pytest.mark.django_db
def test_a_name_whose_second_resolution_turns_private_is_refused_at_delivery(
    settings, owner_api, user, resolver, in_process, committed, receiver
):
    """DNS rebinding: public when the webhook was made, loopback when the event comes."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    resolver({"rebind.example.com": ["93.184.215.14"]})
    with receiver() as hooked:
        url = f"http://rebind.example.com:{hooked.port}/hook"
        made = owner_api.post("/api/v1/webhooks/", {"url": url, "events": ["lifecycle.changed"]}, format="json")
        assert made.status_code == 201, made.json()
        resolver({"rebind.example.com": ["127.0.0.1"]})
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False  # in_process lifted it; the rules apply here
        model = MLModelFactory(owner=user)
        with committed():
            model_services.lifecycle_move(model=model, actor=user, to_stage="staging")

    assert hooked.requests == []
    delivery = Delivery.objects.get(webhook_id=made.json()["id"])
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == (
        "Refused: Webhooks go to public addresses only: rebind.example.com resolves to 127.0.0.1, "
        "which is a loopback address."
    )


@pytest.mark.django_db
def test_an_existing_webhook_to_a_private_address_is_refused_at_delivery(settings, user, committed, in_process):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    webhook = WebhookFactory(owner=user, url="http://169.254.169.254/latest/meta-data/")
    model = MLModelFactory(owner=user)
    with committed():
        model_services.lifecycle_move(model=model, actor=user, to_stage="staging")

    delivery = Delivery.objects.get(webhook=webhook)
    assert delivery.status == "failed"
    assert "169.254.169.254 is a link-local address" in delivery.last_error
