import pytest

pytestmark = pytest.mark.django_db


def test_home_page_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/")


def test_home_page_links_to_the_admin_health_and_api_docs(client, user):
    client.force_login(user)

    response = client.get("/")

    assert response.status_code == 200
    for link in (b'href="/admin/"', b'href="/health"', b'href="/api/docs/"'):
        assert link in response.content


def test_static_stylesheet_is_served(client):
    response = client.get("/static/css/app.css")

    assert response.status_code == 200
