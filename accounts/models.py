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
