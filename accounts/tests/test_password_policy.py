"""Passwords: at least PASSWORD_MIN_LENGTH characters (10 unless configured), and Django's other validators."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model

from accounts.forms import RegisterForm

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOO_SHORT = "This password is too short. It must contain at least 10 characters."

User = get_user_model()


@pytest.mark.django_db
def test_a_nine_character_password_is_refused_by_the_api(api_client):
    response = api_client.post(
        "/api/v1/auth/register", {"username": "ada", "email": "ada@example.com", "password": "letmein!!"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert TOO_SHORT in response.json()["password"]
    assert not User.objects.filter(username="ada").exists()


@pytest.mark.django_db
def test_a_nine_character_password_is_refused_by_the_register_page(client):
    response = client.post(
        "/accounts/register/", {"username": "ada", "email": "ada@example.com", "password": "letmein!!"}
    )

    assert response.status_code == 200
    assert TOO_SHORT in response.context["form"].errors["password"]
    assert TOO_SHORT in response.content.decode().replace("&#x27;", "'")
    assert not User.objects.filter(username="ada").exists()


@pytest.mark.django_db
def test_a_ten_character_password_is_long_enough(api_client):
    response = api_client.post(
        "/api/v1/auth/register",
        {"username": "ada", "email": "ada@example.com", "password": "q7#vLm2!xZ"},
        format="json",
    )

    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_nine_character_password_is_refused_on_the_password_change_page(client, user):
    from accounts.tests.factories import TEST_PASSWORD

    client.force_login(user)

    response = client.post(
        "/accounts/password/",
        {"old_password": TEST_PASSWORD, "new_password1": "letmein!!", "new_password2": "letmein!!"},
    )

    assert response.status_code == 200
    assert TOO_SHORT in response.context["form"].errors["new_password2"]


def test_the_register_form_says_how_long_a_password_must_be(settings):
    assert RegisterForm().fields["password"].help_text.startswith("At least 10 characters")
    settings.PASSWORD_MIN_LENGTH = 14
    assert RegisterForm().fields["password"].help_text.startswith("At least 14 characters")


def test_djangos_other_validators_stay():
    names = [validator["NAME"].rsplit(".", 1)[-1] for validator in django_settings.AUTH_PASSWORD_VALIDATORS]

    assert names == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]


SHOW = """
import json
from django.conf import settings
print(json.dumps({
    "PASSWORD_MIN_LENGTH": settings.PASSWORD_MIN_LENGTH,
    "validator": settings.AUTH_PASSWORD_VALIDATORS[1],
    "AXES_FAILURE_LIMIT": settings.AXES_FAILURE_LIMIT,
    "AXES_COOLOFF_SECONDS": settings.AXES_COOLOFF_TIME.total_seconds(),
}))
"""


def settings_with(**variables: str) -> subprocess.CompletedProcess:
    names = {"PASSWORD_MIN_LENGTH", "AXES_FAILURE_LIMIT", "AXES_COOLOFF_MINUTES", "DEBUG"}
    environment = {k: v for k, v in os.environ.items() if k not in names}
    environment.update({"DJANGO_SETTINGS_MODULE": "registry.settings", **variables})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + SHOW],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_password_length_and_lockout_limits_come_from_the_environment():
    defaults = json.loads(settings_with().stdout)
    configured = json.loads(
        settings_with(PASSWORD_MIN_LENGTH="14", AXES_FAILURE_LIMIT="5", AXES_COOLOFF_MINUTES="60").stdout
    )

    assert defaults["PASSWORD_MIN_LENGTH"] == 10
    assert defaults["validator"]["OPTIONS"] == {"min_length": 10}
    assert defaults["AXES_FAILURE_LIMIT"] == 10
    assert defaults["AXES_COOLOFF_SECONDS"] == 15 * 60
    assert configured["validator"]["OPTIONS"] == {"min_length": 14}
    assert configured["AXES_FAILURE_LIMIT"] == 5
    assert configured["AXES_COOLOFF_SECONDS"] == 60 * 60


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PASSWORD_MIN_LENGTH", "6", "PASSWORD_MIN_LENGTH=6 is below the minimum of 8"),
        ("AXES_FAILURE_LIMIT", "0", "AXES_FAILURE_LIMIT=0 is below the minimum of 1"),
        ("AXES_COOLOFF_MINUTES", "soon", "AXES_COOLOFF_MINUTES='soon' is not a whole number"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(variable, value, message):
    result = settings_with(**{variable: value})

    assert result.returncode != 0
    assert message in result.stderr
