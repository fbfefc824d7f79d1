"""Signals, for the clean-up no service sees only (caches follow domain events: ``mlmodels.subscribers``).

Stored files follow their rows out, but only once the delete has committed: a version's or model's
``file``, and each file of a folder version (its VersionFile rows go with the version's cascade).

A model's versions can be deleted through many paths: a model delete, a user delete that cascades to
their models, the admin. Hooking the row deletion here covers them all; scheduling the storage
delete with ``on_commit`` means a delete that rolls back never loses a file.
"""

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver

from mlmodels.models import MLModel, ModelVersion, VersionFile
from mlmodels.storage import artifact_delete_quietly


def _delete_if_unreferenced(model_id: int, key: str) -> None:
    # Rollbacks make several versions share one key; keep the object while any row still uses it.
    still_used = (
        MLModel.objects.filter(pk=model_id, file=key).exists()
        or ModelVersion.objects.filter(Q(model_id=model_id) & Q(file=key)).exists()
    )
    if not still_used:
        artifact_delete_quietly(key)


@receiver(post_delete, sender=ModelVersion)
@receiver(post_delete, sender=MLModel)
def schedule_file_removal(sender, instance, **kwargs) -> None:
    key = instance.file
    if key:
        model_id = instance.pk if sender is MLModel else instance.model_id
        transaction.on_commit(lambda: _delete_if_unreferenced(model_id, key), robust=True)


def _delete_folder_file_if_unreferenced(key: str) -> None:
    # A rollback's version has rows of its own naming the same keys as the version it repeats.
    if not VersionFile.objects.filter(key=key).exists():
        artifact_delete_quietly(key)


@receiver(post_delete, sender=VersionFile)
def schedule_folder_file_removal(sender, instance, **kwargs) -> None:
    key = instance.key
    transaction.on_commit(lambda: _delete_folder_file_if_unreferenced(key), robust=True)
