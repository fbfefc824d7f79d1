import pytest

pytestmark = pytest.mark.django_db


def test_home_page_links_to_the_admin_and_health(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b'href="/admin/"' in response.content
    assert b'href="/health"' in response.content


def test_static_stylesheet_is_served(client):
    response = client.get("/static/css/app.css")

    assert response.status_code == 200
