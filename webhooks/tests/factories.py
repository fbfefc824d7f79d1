import factory

from accounts.tests.factories import UserFactory
from webhooks.models import Delivery, Webhook
from webhooks.signing import new_secret


class WebhookFactory(factory.django.DjangoModelFactory):
    """A webhook made directly (no address check): tests aim it at their loopback receiver."""

    class Meta:
        model = Webhook

    owner = factory.SubFactory(UserFactory)
    url = "http://127.0.0.1:9/hook"
    events = factory.LazyFunction(lambda: ["lifecycle.changed"])
    secret = factory.LazyFunction(new_secret)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    webhook = factory.SubFactory(WebhookFactory)
    event_id = factory.Faker("uuid4")
    event_type = "lifecycle.changed"
    body = "{}"
