"""The browsable API, as a person exploring it sees it: titles, filters, logging out."""

import re

import pytest

from mlmodels.tests.factories import MLModelFactory


@pytest.fixture
def browsing(client, user):
    client.force_login(user)
    return client


def html(response) -> str:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("/api/v1/models/", "Models"),
        ("/api/v1/models/{pk}/", "Model"),
        ("/api/v1/experiments/", "Experiments"),
        ("/api/v1/models/{pk}/versions/", "Versions"),
    ],
)
def test_pages_are_titled_by_what_they_show(browsing, user, url, title):
    model = MLModelFactory(owner=user)
    page = html(browsing.get(url.format(pk=model.pk), HTTP_ACCEPT="text/html"))

    assert re.search(r"<title>\s*(.*?)\s*</title>", page, re.DOTALL).group(1) == f"{title} · Model Registry API"
    assert "Ml Model" not in page


@pytest.mark.django_db
def test_every_filter_of_the_models_list_has_a_real_label(browsing):
    page = html(browsing.get("/api/v1/models/", HTTP_ACCEPT="text/html"))

    assert "[invalid name]" not in page
    labels = {"search": "Search", "owner": "Owner", "framework": "Framework", "experiment": "Experiment"}
    for name, label in labels.items():
        assert f'<label for="id_{name}">{label}:</label>' in page, label
    assert re.search(r'<select[^>]*name="framework"[^>]*multiple', page), "framework is not a multiple select"
    assert "Framework is in" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["framework=sklearn,xgboost", "framework=sklearn&framework=xgboost"])
def test_several_frameworks_filter_in_either_spelling(client_for, user, query):
    MLModelFactory(owner=user, framework="sklearn")
    MLModelFactory(owner=user, framework="xgboost")
    MLModelFactory(owner=user, framework="onnx")

    response = client_for(user).get(f"/api/v1/models/?{query}")

    assert sorted(row["framework"] for row in response.json()["results"]) == ["sklearn", "xgboost"]


@pytest.mark.django_db
def test_log_out_is_a_form_button_with_no_inline_script(browsing):
    page = html(browsing.get("/api/v1/models/", HTTP_ACCEPT="text/html"))

    assert "onclick" not in page
    form = re.search(r'<form[^>]*action="/api/auth/logout/[^"]*"[^>]*>(.*?)</form>', page, re.DOTALL)
    assert form and 'type="submit"' in form.group(1) and "csrfmiddlewaretoken" in form.group(1)


@pytest.mark.django_db
def test_logging_out_of_the_browsable_api_ends_the_session(browsing):
    response = browsing.post("/api/auth/logout/?next=/api/v1/models/")

    assert response.status_code in (200, 302)
    assert browsing.get("/api/v1/models/", HTTP_ACCEPT="application/json").status_code in (401, 403)


@pytest.mark.browser
def test_log_out_works_in_the_browser(logged_in_page, live_url, console_errors):
    page = logged_in_page
    page.goto(f"{live_url}/api/v1/models/")
    console_errors.assert_none()  # no CSP refusal of the page's scripts
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()

    # Back on the list, now anonymous: refused, with the login link in the navigation.
    assert page.get_by_role("link", name="Log in").is_visible()
    response = page.request.get(f"{live_url}/api/v1/auth/me", headers={"Accept": "application/json"})
    assert response.status in (401, 403)
