"""The mlmodels app's subscribers of domain events (connected in ``MlmodelsConfig.ready``)."""

from django.core.cache import cache

from mlmodels.events import LIFECYCLE_CHANGED, MODEL_CREATED, MODEL_DELETED, MODEL_UPDATED, VERSION_CREATED
from mlmodels.selectors import DASHBOARD_COUNTS_KEY
from mlmodels.tasks import scan_version
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


def scan_new_artifact(event: Event) -> None:
    """Every version with a file or a folder gets its artifact scanned, by a task: the event arrives after the
    commit, so the worker finds the version."""
    if event.data["file"] is not None or event.data.get("files"):
        scan_version.delay(event.model["id"], event.data["version"])


def connect() -> None:
    subscribe(forget_dashboard_counts, types=DASHBOARD_EVENTS)
    subscribe(scan_new_artifact, types=(VERSION_CREATED,))
