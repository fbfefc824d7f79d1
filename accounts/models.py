from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower

from registry.validators import FieldedConstraintsMixin


class User(FieldedConstraintsMixin, AbstractUser):
    """A person or pipeline account. Email is required and unique whatever its letter case."""

    CONSTRAINT_ERROR_FIELDS = {"duplicate_email": "email"}

    email = models.EmailField("email address")
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_ci_unique",
                violation_error_code="duplicate_email",
                violation_error_message="A user with this email address already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.username


class ThrottleCacheEntry(models.Model):
    """The table of the ``throttle`` cache when there is no Redis (settings.CACHES, DatabaseCache).

    The columns are those of ``manage.py createcachetable``; declaring them here means ``migrate``
    creates the table (no extra command on any deployment, with or without Redis) and test databases
    empty it between tests like any other table. Only the cache backend reads and writes it.
    """

    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "accounts_throttle_cache"
        default_permissions = ()

    def __str__(self) -> str:
        return self.cache_key
