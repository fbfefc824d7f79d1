"""Factories that build rows through the services, so factory data obeys the same rules as real data."""

import factory

from accounts.tests.factories import UserFactory
from mlmodels import services
from mlmodels.models import ApprovalAction, ApprovalRequest, MLModel


class MLModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MLModel

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"model-{n}")
    description = factory.Faker("sentence")
    framework = "sklearn"
    task_type = "classification"
    accuracy = 0.9
    precision = 0.8
    recall = 0.7
    f1_score = 0.75
    hyperparameters = factory.LazyFunction(lambda: {"max_depth": 4})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        tags = kwargs.pop("tags", {})
        model = services.model_create(**kwargs)
        for key, value in tags.items():
            services.tag_set(model=model, actor=model.owner, key=key, value=value)
        return model


class ApprovalRequestFactory(factory.django.DjangoModelFactory):
    """A pending request for a protected alias, as ``mlmodels.services`` files one (approvals on);
    a different alias each, so several may wait on one model."""

    class Meta:
        model = ApprovalRequest

    model = factory.SubFactory(MLModelFactory)
    action = ApprovalAction.ALIAS
    alias = factory.Sequence(lambda n: f"protected-{n}")
    version_number = 1
    requested_by = factory.LazyAttribute(lambda request: request.model.owner)
    comment = "please"
