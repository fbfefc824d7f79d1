"""The mlmodels app's subscribers of domain events (connected in ``MlmodelsConfig.ready``)."""

from django.core.cache import cache

from mlmodels.events import LIFECYCLE_CHANGED, MODEL_CREATED, MODEL_DELETED, MODEL_UPDATED
from mlmodels.selectors import DASHBOARD_COUNTS_KEY
from registry.events import Event, subscribe

# The dashboard counts models per stage and per framework: a model added or removed, a stage move,
# a framework change. A new version, a rename or new metrics leave its counts right.
DASHBOARD_EVENTS = (MODEL_CREATED, MODEL_DELETED, LIFECYCLE_CHANGED, MODEL_UPDATED)


def forget_dashboard_counts(event: Event) -> None:
    # Delivered once the change has committed: forgotten any earlier, the counts could be cached
    # again from the snapshot before the write.
    if event.type == MODEL_UPDATED and "framework" not in event.data["fields"]:
        return
    cache.delete(DASHBOARD_COUNTS_KEY)


def connect() -> None:
    subscribe(forget_dashboard_counts, types=DASHBOARD_EVENTS)
