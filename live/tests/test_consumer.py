"""The WebSocket of live updates (/ws/events/) on the real ASGI application: who may open it, what
it sends after a commit (and not after a rollback), and when it closes again."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from live.consumers import SIGNED_OUT
from live.tests.helpers import published, session_cookie, socket
from mlmodels import services
from mlmodels.models import Stage
from mlmodels.tests.factories import MLModelFactory

# Real commits: events go out after them (on_commit), as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_settings(settings):
    return settings


class RolledBack(Exception):
    pass


def run(scenario):
    async_to_sync(scenario)()


async def open_socket(cookie):
    communicator = socket(cookie)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def assert_closed_signed_out(communicator):
    closed = await communicator.receive_output(timeout=2)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == SIGNED_OUT


def test_an_anonymous_socket_is_told_it_is_signed_out_and_closed():
    async def scenario():
        communicator = socket(None)
        connected, _ = await communicator.connect()
        assert connected  # accepted first, so the page learns the reason and stops reconnecting
        await assert_closed_signed_out(communicator)

    run(scenario)


def test_a_socket_from_another_sites_page_is_refused(user):
    cookie = session_cookie(user)

    async def scenario():
        communicator = socket(cookie, origin="https://evil.example")
        connected, _ = await communicator.connect()
        assert not connected

    run(scenario)


def test_a_signed_in_user_receives_a_committed_stage_move_of_someone_elses_model(user, other_user):
    model = MLModelFactory(owner=other_user)
    cookie = session_cookie(user)

    def promote():
        with published("lifecycle.changed") as events:
            services.lifecycle_move(model=model, actor=other_user, to_stage=Stage.STAGING, comment="eval ok")
        return events[0]

    async def scenario():
        communicator = await open_socket(cookie)
        event = await database_sync_to_async(promote)()
        message = await communicator.receive_json_from(timeout=2)
        assert message["id"] == str(event.id)
        assert message["type"] == "lifecycle.changed"
        assert message["model"] == {"id": model.pk, "name": model.name}
        assert message["actor"] == {"id": other_user.pk, "username": other_user.username}
        assert message["data"]["from_stage"] == "development"
        assert message["data"]["to_stage"] == "staging"
        assert message["tab"] is None  # not made by a page
        await communicator.disconnect()

    run(scenario)


def test_a_rolled_back_change_sends_nothing(user):
    model = MLModelFactory(owner=user)
    cookie = session_cookie(user)

    def promote_then_roll_back():
        with pytest.raises(RolledBack), transaction.atomic():
            services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
            raise RolledBack

    def tag():
        services.tag_set(model=model, actor=user, key="team", value="payments")

    async def scenario():
        communicator = await open_socket(cookie)
        await database_sync_to_async(promote_then_roll_back)()
        assert await communicator.receive_nothing(timeout=0.3)
        # The socket works: the next committed change is the first thing it hears.
        await database_sync_to_async(tag)()
        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "tag.set"
        assert message["data"]["key"] == "team"
        await communicator.disconnect()

    run(scenario)


def test_the_tab_that_made_a_change_is_named_in_its_event(owner_client, user):
    model = MLModelFactory(owner=user)
    cookie = session_cookie(user)

    def promote_from_the_page():
        response = owner_client.post(
            reverse("model-lifecycle", args=[model.pk]),
            {"lifecycle": "staging", "comment": ""},
            HTTP_HX_REQUEST="true",
            HTTP_X_LIVE_TAB="tab-0123456789abcdef",
        )
        assert response.status_code == 200

    async def scenario():
        communicator = await open_socket(cookie)
        await database_sync_to_async(promote_from_the_page)()
        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "lifecycle.changed"
        assert message["tab"] == "tab-0123456789abcdef"  # that tab skips it: its answer showed the move
        await communicator.disconnect()

    run(scenario)


def test_logging_out_closes_the_sockets_of_that_session(user):
    browser = Client()
    browser.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    def log_out():
        assert browser.post(reverse("logout")).status_code == 302

    async def scenario():
        communicator = await open_socket(cookie)
        await database_sync_to_async(log_out)()
        await assert_closed_signed_out(communicator)

    run(scenario)


def test_a_revoked_session_is_closed_at_its_next_check(user, live_settings):
    live_settings.LIVE_SESSION_CHECK_SECONDS = 0  # every ping re-reads the session
    cookie = session_cookie(user)

    def revoke():
        account_services.user_end_sessions(user=user)

    async def scenario():
        communicator = await open_socket(cookie)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
        await database_sync_to_async(revoke)()
        await communicator.send_json_to({"type": "ping"})
        await assert_closed_signed_out(communicator)

    run(scenario)


def test_a_socket_ignores_what_it_cannot_read_from_the_page(user):
    cookie = session_cookie(user)

    async def scenario():
        communicator = await open_socket(cookie)
        await communicator.send_to(text_data="not json")
        await communicator.send_json_to(["a", "list"])
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
        await communicator.disconnect()

    run(scenario)
