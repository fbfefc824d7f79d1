"""Lockouts after repeated failed sign-ins (django-axes), at every door that checks a password.

The doors: the login page (the admin's and the browsable API's login links lead there) and the JSON
login of the API. Each counts failures per username and per client address in the database (shared
by every server process, with or without Redis), refuses even the right password while locked, says so
clearly, and opens again after the cool-off or when an administrator resets the lock.
"""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from accounts.tests.factories import TEST_PASSWORD
from registry.api.throttles import AuthRateThrottle

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.7"
ELSEWHERE = "203.0.113.9"
API_LOGIN = "/api/v1/auth/login"
LOGIN_PAGE = "/accounts/login/"
LOCKOUT_TEXT = "Too many failed sign-in attempts"


def failure_limit() -> int:
    return getattr(django_settings, "AXES_FAILURE_LIMIT", 10)


def sign_in(client, door: str, username: str, password: str, address: str):
    # The login page (allauth's) takes a username or an email address as "login".
    return client.post(door, {"login": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def assert_lockout_page(response):
    assert response.status_code == 429, response.status_code
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert LOCKOUT_TEXT in page
    assert "15 minutes" in page  # when to come back
    assert "administrator" in page  # or who can unlock it sooner


def guess(door: str, username: str, times: int = 30, address: str = ATTACKER) -> list[int]:
    attacker = Client()
    return [sign_in(attacker, door, username, f"guess-{n}", address).status_code for n in range(times)]


# --- the login page -------------------------------------------------------------------------------


@pytest.mark.parametrize("door", ["/admin/login/", "/api/auth/login/"])
def test_the_admins_and_the_browsable_apis_logins_are_no_doors_of_their_own(door, superuser):
    client = Client()

    assert client.get(door)["Location"].startswith(LOGIN_PAGE)
    response = client.post(door, {"username": superuser.username, "password": TEST_PASSWORD})

    assert response.status_code == 302 and response["Location"].startswith(LOGIN_PAGE)
    assert not signed_in(client)


def test_repeated_wrong_passwords_lock_the_username_at_the_login_page(user):
    path, account = LOGIN_PAGE, user

    statuses = guess(path, account.username)

    # The first failures are ordinary form errors; the one that reaches the limit, and all after it, are refused.
    limit = failure_limit()
    assert statuses[: limit - 1] == [200] * (limit - 1), statuses
    assert statuses[limit - 1 :] == [429] * (30 - limit + 1), statuses
    assert_lockout_page(sign_in(Client(), path, account.username, "yet-another-guess", ATTACKER))


def test_the_right_password_is_refused_too_while_the_username_is_locked(user):
    path, account = LOGIN_PAGE, user
    guess(path, account.username)
    owner = Client()

    # From another address: the username itself is locked, not only the attacker's address.
    response = sign_in(owner, path, account.username, TEST_PASSWORD, ELSEWHERE)

    assert_lockout_page(response)
    assert not signed_in(owner)


def test_another_username_from_another_address_signs_in_normally(user, other_user):
    guess(LOGIN_PAGE, user.username)
    colleague = Client()

    response = sign_in(colleague, LOGIN_PAGE, other_user.username, TEST_PASSWORD, ELSEWHERE)

    assert response.status_code == 302
    assert signed_in(colleague)


def test_a_locked_address_cannot_go_on_to_lock_everyone_else(user, other_user):
    guess(LOGIN_PAGE, user.username)

    # The attacker's address is locked now: its further guesses at other accounts are refused uncounted...
    assert set(guess(LOGIN_PAGE, other_user.username)) == {429}

    # ...so those accounts are not locked for their owners.
    colleague = Client()
    assert sign_in(colleague, LOGIN_PAGE, other_user.username, TEST_PASSWORD, ELSEWHERE).status_code == 302
    assert signed_in(colleague)


def test_an_admin_reset_unlocks_the_username(user):
    guess(LOGIN_PAGE, user.username)
    owner = Client()
    assert sign_in(owner, LOGIN_PAGE, user.username, TEST_PASSWORD, ELSEWHERE).status_code == 429

    call_command("axes_reset_username", user.username, verbosity=0)

    assert sign_in(owner, LOGIN_PAGE, user.username, TEST_PASSWORD, ELSEWHERE).status_code == 302
    assert signed_in(owner)


def test_the_lock_opens_by_itself_after_the_cool_off(user):
    from axes.models import AccessAttempt

    guess(LOGIN_PAGE, user.username)
    owner = Client()
    assert sign_in(owner, LOGIN_PAGE, user.username, TEST_PASSWORD, ELSEWHERE).status_code == 429

    # The cool-off has passed since the last counted failure.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16))

    assert sign_in(owner, LOGIN_PAGE, user.username, TEST_PASSWORD, ELSEWHERE).status_code == 302
    assert signed_in(owner)


def test_failures_are_counted_in_the_database_that_every_process_shares(user):
    from axes.models import AccessAttempt

    guess(LOGIN_PAGE, user.username, times=3)

    attempt = AccessAttempt.objects.get(username=user.username)
    assert attempt.ip_address == ATTACKER
    assert attempt.failures_since_start == 3
    assert django_settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"


def test_the_admin_lists_locked_attempts_so_an_admin_can_delete_them(user, superuser):
    guess(LOGIN_PAGE, user.username, times=3)
    admin = Client()
    admin.force_login(superuser)

    response = admin.get("/admin/axes/accessattempt/")

    assert response.status_code == 200
    assert user.username.encode() in response.content


# --- the JSON API ---------------------------------------------------------------------------------


def api_login(api_client, username: str, password: str, address: str = ATTACKER):
    return api_client.post(API_LOGIN, {"username": username, "password": password}, format="json", REMOTE_ADDR=address)


@pytest.fixture
def unthrottled(monkeypatch):
    """Lift the per-address rate limit so that only the lockout answers."""
    monkeypatch.setattr(AuthRateThrottle, "rate", "1000/minute", raising=False)


def assert_lockout_json(response):
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert LOCKOUT_TEXT in detail
    assert "15 minutes" in detail
    assert "administrator" in detail
    assert int(response["Retry-After"]) == 15 * 60


def test_the_api_login_locks_the_username_with_a_json_429(api_client, user, unthrottled):
    statuses = [api_login(api_client, user.username, f"guess-{n}").status_code for n in range(30)]

    limit = failure_limit()
    assert statuses[: limit - 1] == [401] * (limit - 1), statuses
    assert statuses[limit - 1 :] == [429] * (30 - limit + 1), statuses
    assert_lockout_json(api_login(api_client, user.username, "another-guess"))


def test_the_api_refuses_the_right_password_of_a_locked_username_from_anywhere(api_client, user, unthrottled):
    for n in range(30):
        api_login(api_client, user.username, f"guess-{n}")

    response = api_login(api_client, user.username, TEST_PASSWORD, address=ELSEWHERE)

    assert_lockout_json(response)
    assert "access" not in response.json()


def test_the_api_and_the_pages_share_one_count_per_username(api_client, user, unthrottled):
    for n in range(failure_limit() - 1):
        api_login(api_client, user.username, f"guess-{n}")

    # One more failure, on the page this time, reaches the limit.
    assert_lockout_page(sign_in(Client(), LOGIN_PAGE, user.username, "last-guess", ATTACKER))
    assert_lockout_json(api_login(api_client, user.username, TEST_PASSWORD, address=ELSEWHERE))


def test_a_locked_api_login_by_email_counts_for_the_username(api_client, user, unthrottled):
    for n in range(30):
        api_client.post(API_LOGIN, {"email": user.email, "password": f"guess-{n}"}, format="json", REMOTE_ADDR=ATTACKER)

    assert_lockout_json(api_login(api_client, user.username, TEST_PASSWORD, address=ELSEWHERE))


def test_the_api_login_of_another_user_elsewhere_is_unaffected(api_client, user, other_user, unthrottled):
    for n in range(30):
        api_login(api_client, user.username, f"guess-{n}")

    response = api_login(api_client, other_user.username, TEST_PASSWORD, address=ELSEWHERE)

    assert response.status_code == 200, response.content
    assert response.json()["access"]


def test_the_api_lock_opens_after_an_admin_reset(api_client, user, unthrottled):
    for n in range(30):
        api_login(api_client, user.username, f"guess-{n}")

    call_command("axes_reset_username", user.username, verbosity=0)

    assert api_login(api_client, user.username, TEST_PASSWORD, address=ELSEWHERE).status_code == 200


# --- configuration ----------------------------------------------------------------------------------


def test_lockouts_are_per_username_and_per_address_with_the_configured_limits():
    assert django_settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert django_settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert django_settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert django_settings.AXES_FAILURE_LIMIT == 10
    assert timedelta(minutes=15) == django_settings.AXES_COOLOFF_TIME
    # Refused attempts during a lockout are not counted: a locked address cannot lock other accounts.
    assert django_settings.AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is False


def test_lockouts_read_the_same_client_address_as_the_throttles(api_client, user, settings, unthrottled):
    from axes.models import AccessAttempt

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # With one trusted proxy the client is the address that proxy appended, whatever the client invented.
    forwarded = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "192.0.2.66, 198.51.100.7"}
    api_client.post(API_LOGIN, {"username": user.username, "password": "guess"}, format="json", **forwarded)
    Client().post(LOGIN_PAGE, {"login": user.username, "password": "guess"}, **forwarded)

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert AccessAttempt.objects.get().failures_since_start == 2
