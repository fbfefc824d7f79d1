import factory

from accounts.tests.factories import UserFactory
from experiments.models import Experiment, Run


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"experiment-{n}")
    description = factory.Faker("sentence")
    parameters = factory.LazyFunction(lambda: {"learning_rate": 0.01, "epochs": 10})
    tags = factory.LazyFunction(lambda: ["baseline"])


class RunFactory(factory.django.DjangoModelFactory):
    """A bare run row; tests of the rules create runs through experiments.runs instead."""

    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    user = factory.LazyAttribute(lambda run: run.experiment.owner)
    name = factory.Sequence(lambda n: f"run-{n}")
    start_time = factory.Sequence(lambda n: 1_767_225_600_000 + n * 1000)
