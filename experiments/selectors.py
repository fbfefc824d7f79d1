from django.db.models import Prefetch, QuerySet

from experiments.models import Experiment
from mlmodels.models import MLModel


def experiment_list(*, user) -> QuerySet[Experiment]:
    """Experiments the user may read (all, for a signed-in user), each with the ids of the models it
    produced: one extra query for the whole page, however many rows it has."""
    return Experiment.objects.visible_to(user).prefetch_related(
        Prefetch("models", queryset=MLModel.objects.only("id", "experiment_id").order_by("id"))
    )
