"""Error pages outside /api/: inside the app's layout, saying why, with links back. Under /api/ the same
handlers answer JSON (registry/tests/test_api_errors.py)."""

import json
import sys
import types

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import include, path

from mlmodels.tests.factories import MLModelFactory
from registry.api import errors

pytestmark = pytest.mark.django_db

NAV = 'aria-label="Main"'


def boom(request):
    raise RuntimeError("the database fell over")


# This module doubles as a urlconf for the 500 tests: the project's routes plus one that fails.
urlpatterns = [path("", include("registry.urls")), path("boom/", boom)]
handler500 = "registry.api.errors.server_error"


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn-model")


@pytest.fixture
def production(settings):
    settings.DEBUG = False  # DEBUG shows Django's technical pages instead of ours


def test_other_user_editing_a_model_gets_a_403_page_in_the_layout_with_the_reason_and_a_way_back(other_client, model):
    response = other_client.get(f"/models/{model.pk}/edit/")

    assert response.status_code == 403
    content = response.content.decode()
    assert '<link rel="stylesheet"' in content and NAV in content
    assert "Only the model&#x27;s owner or a superuser can change it." in content
    assert f'<a class="button primary" href="/models/{model.pk}/">Back to the model</a>' in content
    assert 'href="/"' in content and 'href="/models/"' in content


def test_a_403_page_links_to_the_previous_page_only_when_it_is_on_this_site(other_client, model):
    ours = other_client.get(f"/models/{model.pk}/delete/", HTTP_REFERER="http://testserver/models/?page=2")
    theirs = other_client.get(f"/models/{model.pk}/delete/", HTTP_REFERER="https://evil.example/phish")

    assert b'href="http://testserver/models/?page=2">Previous page</a>' in ours.content
    assert b"evil.example" not in theirs.content


def test_a_403_without_a_message_gives_a_plain_reason(rf, user):
    request = rf.get("/models/1/edit/")
    request.user = user

    response = errors.permission_denied(request, PermissionDenied())

    assert response.status_code == 403
    assert b"You do not have permission to open this page." in response.content


def test_a_missing_model_gets_a_404_page_in_the_layout(production, owner_client):
    response = owner_client.get("/models/999999/edit/")

    assert response.status_code == 404
    content = response.content.decode()
    assert NAV in content
    assert "There is no such model: it may have been deleted, or the link is wrong." in content
    assert "MLModel" not in content, "no class names from the code"
    assert '<a class="button primary" href="/models/">All models</a>' in content


def test_an_unknown_address_gets_a_404_page_that_names_it(production, owner_client):
    response = owner_client.get("/no-such-page/<b>")

    assert response.status_code == 404
    content = response.content.decode()
    assert NAV in content and "/no-such-page/%3Cb%3E" in content and "<b>" not in content
    assert "Resolver404" not in content
    assert '<a class="button primary" href="/">Dashboard</a>' in content


def test_an_anonymous_visitor_gets_the_404_page_with_a_login_link(production, client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert b'href="/accounts/login/"' in response.content


@pytest.mark.urls(__name__)
def test_a_server_error_gets_the_500_page_in_the_layout(production):
    response = Client(raise_request_exception=False).get("/boom/")

    assert response.status_code == 500
    content = response.content.decode()
    assert '<link rel="stylesheet"' in content and 'class="topbar"' in content
    assert "Something went wrong on our side" in content and "the database fell over" not in content
    assert 'href="/"' in content and 'href="/models/"' in content


def test_the_500_page_renders_without_a_request_context():
    """Django renders 500.html with no context at all: no user, no request, no context processors."""
    response = errors.server_error(RequestFactory().get("/models/"))

    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b"Log in" not in response.content, "no guess at who is signed in"


@pytest.fixture
def foreign_urlconf():
    """A urlconf with none of the project's URL names nor its handlers, as tests' own urlconfs have:
    Django's default handlers then render 500.html."""
    module = types.ModuleType("error_pages_foreign_urls")
    module.urlpatterns = [path("boom/", boom)]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def test_the_500_page_renders_under_a_urlconf_without_the_projects_url_names(production, settings, foreign_urlconf):
    settings.ROOT_URLCONF = foreign_urlconf

    response = Client(raise_request_exception=False).get("/boom/")

    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b'class="brand" href="/"' in response.content


def test_the_500_page_falls_back_to_plain_html_when_its_template_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Missing staticfiles manifest entry for 'css/app.css'")

    monkeypatch.setattr(errors.defaults, "server_error", broken)

    response = errors.server_error(RequestFactory().get("/models/"))

    assert response.status_code == 500
    assert b"Server error (500)" in response.content


def test_a_bad_request_gets_the_400_page_in_the_layout():
    response = errors.bad_request(RequestFactory().get("/models/"), ValueError())

    assert response.status_code == 400
    assert b'class="topbar"' in response.content and b"could not understand" in response.content


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (errors.bad_request, 400),
        (errors.permission_denied, 403),
        (errors.page_not_found, 404),
    ],
)
def test_under_the_api_the_handlers_still_answer_json(rf, handler, status):
    response = handler(rf.get("/api/v1/models/"), Exception("x"))

    assert response.status_code == status
    assert set(json.loads(response.content)) == {"detail"}


def test_under_the_api_a_server_error_is_still_json(rf):
    response = errors.server_error(rf.get("/api/v1/models/"))

    assert json.loads(response.content) == {"detail": "Internal server error."}
