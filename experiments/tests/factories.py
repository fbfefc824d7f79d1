import factory

from accounts.tests.factories import UserFactory
from experiments.models import Experiment


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"experiment-{n}")
    description = factory.Faker("sentence")
    parameters = factory.LazyFunction(lambda: {"learning_rate": 0.01, "epochs": 10})
    tags = factory.LazyFunction(lambda: ["baseline"])
