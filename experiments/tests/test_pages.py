import pytest

from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(owner_client):
    return owner_client


@pytest.fixture
def other(other_client):
    return other_client


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="fraud-sweep", tags=["fraud"])


def test_anonymous_visitors_go_to_login(client, experiment):
    for url in ("/experiments/", f"/experiments/{experiment.pk}/", "/experiments/new/"):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_list_full_page_and_fragment_with_tag_filter(owner, experiment, user):
    ExperimentFactory(owner=user, name="vision", tags=["vision"])

    full = owner.get("/experiments/")
    fragment = owner.get("/experiments/?tag=fraud", HTTP_HX_REQUEST="true")

    assert b"<html" in full.content and b"vision" in full.content
    assert b"<html" not in fragment.content
    assert b"fraud-sweep" in fragment.content and b"vision" not in fragment.content


def test_detail_lists_the_models_it_produced(other, experiment, user):
    MLModelFactory(owner=user, name="produced", experiment=experiment)

    response = other.get(f"/experiments/{experiment.pk}/")

    assert b"produced" in response.content
    assert b"/edit/" not in response.content


def test_create_and_edit_with_inline_errors(owner):
    bad = owner.post("/experiments/new/", {"name": "x", "parameters": "[1]"})
    good = owner.post("/experiments/new/", {"name": "sweep", "parameters": '{"lr": 0.1}', "tags": "a, b"})

    assert b"Enter a JSON object" in bad.content
    experiment = Experiment.objects.get(name="sweep")
    assert (experiment.parameters, experiment.tags) == ({"lr": 0.1}, ["a", "b"])
    assert good["Location"] == f"/experiments/{experiment.pk}/"


def test_other_user_cannot_edit_or_delete(other, experiment):
    assert other.post(f"/experiments/{experiment.pk}/edit/", {"name": "mine"}).status_code == 403
    assert other.post(f"/experiments/{experiment.pk}/delete/").status_code == 403
    assert Experiment.objects.get(pk=experiment.pk).name == "fraud-sweep"


def test_owner_deletes_after_confirmation(owner, experiment):
    assert b"Delete experiment" in owner.get(f"/experiments/{experiment.pk}/delete/").content

    owner.post(f"/experiments/{experiment.pk}/delete/")

    assert not Experiment.objects.exists()
