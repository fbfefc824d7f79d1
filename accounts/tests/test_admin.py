import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_user_admin_adds_a_user_with_an_email(superuser_client):
    response = superuser_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "usable_password": "true",
            "password1": "a-strong-passphrase-123",
            "password2": "a-strong-passphrase-123",
        },
    )

    assert response.status_code == 302, response.content
    assert User.objects.get(username="newbie").email == "newbie@example.com"
