"""The regions pages mark for live updates (data-live-*): each names events that exist, and its
data-live-url answers an htmx request with that region again (same id, same markers), so the page
can swap it in place; opened directly, the same URL is a whole page."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from live.subscribers import LIVE_EVENT_TYPES
from mlmodels import services
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


class Regions(HTMLParser):
    """The elements of a page that carry data-live-events, with their attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[dict[str, str]] = []
        self.ids: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if "data-live-events" in attributes:
            self.found.append({"tag": tag, **attributes})


def regions_of(client, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    found = Regions(response.content.decode()).found
    assert found, f"{url} marks no region for live updates"
    return found


@pytest.fixture
def model(user):
    model = MLModelFactory(owner=user, tags={"team": "payments"})
    services.version_record(model=model, actor=user, data={"accuracy": 0.95}, note="retrain")
    return model


def page_urls(model):
    return [reverse("dashboard"), reverse("model-list"), reverse("model-detail", args=[model.pk])]


def test_every_region_listens_to_events_that_are_sent(owner_client, model):
    for url in page_urls(model):
        for region in regions_of(owner_client, url):
            types = region["data-live-events"].split()
            assert types and set(types) <= set(LIVE_EVENT_TYPES), (url, region)


def test_every_refreshable_region_comes_back_from_its_url_as_the_same_region(owner_client, model):
    for url in page_urls(model):
        for region in regions_of(owner_client, url):
            if "data-live-notice" in region:
                continue
            answer = owner_client.get(region["data-live-url"], **HTMX)
            assert answer.status_code == 200, region
            html = answer.content.decode()
            assert "<html" not in html, f"{region['data-live-url']} answered htmx with a whole page"
            swap = region.get("data-live-swap", "outerHTML")
            if swap == "outerHTML":
                again = [r for r in Regions(html).found if r.get("id") == region["id"]]
                assert again == [region], f"{region['data-live-url']} does not answer with #{region['id']} as it was"
            elif swap == "none":
                # Out of band only: each element it brings replaces the element of that id on the page.
                oob = re.findall(r'id="([^"]+)"[^>]*hx-swap-oob="true"', html)
                assert oob, region
                assert set(oob) <= Regions(owner_client.get(url).content.decode()).ids
            else:
                assert html.strip(), region


def test_a_region_url_opened_directly_is_the_whole_page(owner_client, model):
    for part in ("head", "figures", "lifecycle", "aliases", "compare-form", "row"):
        response = owner_client.get(reverse("model-part", args=[model.pk, part]))
        assert response.status_code == 200
        assert b"<html" in response.content
        assert response["Vary"] and "HX-Request" in response["Vary"]


def test_an_unknown_part_is_not_found(owner_client, model):
    assert owner_client.get(reverse("model-part", args=[model.pk, "secrets"]), **HTMX).status_code == 404


def test_the_list_announces_new_models_instead_of_inserting_rows(owner_client, model):
    regions = regions_of(owner_client, reverse("model-list"))
    notices = [r for r in regions if "data-live-notice" in r]
    assert [r["data-live-events"] for r in notices] == ["model.created"]
    rows = [r for r in regions if r["tag"] == "tr"]
    assert [r["data-live-model"] for r in rows] == [str(model.pk)]
    assert "model.created" not in rows[0]["data-live-events"]


def test_pages_load_the_live_script_for_signed_in_users_only(owner_client, client, settings):
    assert b"js/live.js" in owner_client.get(reverse("dashboard")).content
    assert b"js/live.js" not in client.get(reverse("login")).content
    settings.LIVE_UPDATES = False
    assert b"js/live.js" not in owner_client.get(reverse("dashboard")).content
