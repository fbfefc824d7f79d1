"""Fixtures the approvals tests share: an approver, and a model one move from production."""

import io

import pytest

from accounts.tests.factories import ApproverFactory
from mlmodels import services
from mlmodels.models import Stage
from mlmodels.tests.factories import MLModelFactory


@pytest.fixture
def approver(db):
    """An approver who owns no model: "reviewer"."""
    return ApproverFactory(username="reviewer")


@pytest.fixture
def staged(user):
    """The owner's model "churn" in staging with an artifact file (versions 1 and 2): one move from
    production."""
    model = MLModelFactory(owner=user, name="churn")
    data = io.BytesIO(b"weights")
    data.name = "model.bin"
    services.model_attach_file(model=model, actor=user, file=data)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    return model
