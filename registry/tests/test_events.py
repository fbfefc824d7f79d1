"""The domain-event bus: delivery after the commit only, subscribers by type, failures contained."""

import dataclasses
import json
import logging
import uuid
from datetime import datetime
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from registry import events
from registry.events import Event


@pytest.fixture
def subscribed():
    """``subscribed(handler, types=None)`` subscribes ``handler`` for the test only."""
    handlers = []

    def add(handler, types=None):
        events.subscribe(handler, types=types)
        handlers.append(handler)
        return handler

    yield add
    for handler in handlers:
        events.unsubscribe(handler)


@pytest.fixture
def received(subscribed):
    """The events delivered to a subscriber of every type, in order."""
    delivered: list[Event] = []
    subscribed(delivered.append)
    return delivered


def happened(**kwargs) -> Event:
    return events.record("thing.happened", actor=None, data=kwargs)


@pytest.mark.django_db(transaction=True)
def test_an_event_is_delivered_once_its_transaction_commits(received):
    with transaction.atomic():
        event = happened(n=1)
        with transaction.atomic():
            happened(n=2)
        assert received == [], "not before the outermost commit"

    assert [e.data["n"] for e in received] == [1, 2]
    assert received[0] is event


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_event_is_delivered_at_once(received):
    happened()

    assert [e.type for e in received] == ["thing.happened"]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_publishes_nothing(received):
    with pytest.raises(RuntimeError), transaction.atomic():
        happened()
        raise RuntimeError("the change failed after its event was recorded")

    with transaction.atomic():
        happened()
        transaction.set_rollback(True)

    assert received == []


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_only_its_own_events(received):
    with transaction.atomic():
        happened(n=1)
        with pytest.raises(RuntimeError), transaction.atomic():
            happened(n=2)
            raise RuntimeError
        happened(n=3)

    assert [e.data["n"] for e in received] == [1, 3]


@pytest.mark.django_db
def test_subscribers_get_every_event_or_the_types_they_ask_for(subscribed, captured_events):
    everything, models, lifecycle = [], [], []
    subscribed(everything.append)
    subscribed(models.append, types=["model.created", "model.deleted"])
    subscribed(lifecycle.append, types="lifecycle.changed")

    with captured_events():
        for type in ("model.created", "lifecycle.changed", "version.created", "model.deleted"):
            events.record(type, actor=None)

    assert [e.type for e in everything] == ["model.created", "lifecycle.changed", "version.created", "model.deleted"]
    assert [e.type for e in models] == ["model.created", "model.deleted"]
    assert [e.type for e in lifecycle] == ["lifecycle.changed"]


@pytest.mark.django_db
def test_the_decorator_subscribes_and_a_second_subscription_replaces_the_first(subscribed, captured_events):
    delivered = []

    @events.subscribe(types=["a.happened"])
    def handler(event):
        delivered.append(event.type)

    subscribed(handler, types=["b.happened"])  # cleaned up after the test
    with captured_events():
        for type in ("a.happened", "b.happened"):
            events.record(type, actor=None)

    assert delivered == ["b.happened"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_stops_neither_the_others_nor_the_caller(subscribed, received, caplog):
    after = []

    def broken(event):
        raise ValueError("subscriber bug")

    subscribed(broken)
    subscribed(after.append)

    with caplog.at_level(logging.ERROR, logger="registry.events"), transaction.atomic():
        happened()
    happened()  # outside a transaction too, delivered at once

    assert len(received) == len(after) == 2
    failures = [r for r in caplog.records if r.name == "registry.events"]
    assert len(failures) == 2
    assert "broken" in failures[0].getMessage() and "thing.happened" in failures[0].getMessage()
    assert failures[0].exc_info[0] is ValueError


def test_an_event_has_the_designed_shape_as_json():
    actor = SimpleNamespace(pk=7, is_authenticated=True, get_username=lambda: "ada")
    model = SimpleNamespace(pk=42, name="churn")

    event = Event.of("version.created", actor=actor, model=model, data={"version": 3, "fields": ("a", "b")})
    shown = event.as_dict()

    assert set(shown) == {"id", "type", "occurred_at", "actor", "model", "data"}
    assert uuid.UUID(shown["id"]).version == 4
    assert datetime.fromisoformat(shown["occurred_at"]) == event.occurred_at
    assert event.occurred_at.tzinfo is not None
    assert shown["type"] == "version.created"
    assert shown["actor"] == {"id": 7, "username": "ada"}
    assert shown["model"] == {"id": 42, "name": "churn"}
    assert shown["data"] == {"version": 3, "fields": ["a", "b"]}
    assert json.loads(json.dumps(shown)) == shown


def test_every_event_gets_its_own_id():
    assert Event(type="a.happened").id != Event(type="a.happened").id


def test_an_anonymous_or_missing_actor_and_no_model_are_none():
    for actor in (None, AnonymousUser()):
        shown = Event.of("a.happened", actor=actor).as_dict()
        assert (shown["actor"], shown["model"], shown["data"]) == (None, None, {})


def test_an_event_cannot_be_changed_by_a_subscriber():
    event = Event.of("a.happened", actor=None, data={"n": 1})

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = "b.happened"
    with pytest.raises(TypeError):
        event.data["n"] = 2
    assert hash(event) == hash(event.id)


@pytest.mark.parametrize("type", ["", "created", "Model.Created", "model.created.twice", "model-created"])
def test_an_event_type_is_noun_dot_verb(type):
    with pytest.raises(ValueError, match="noun"):
        Event(type=type)
