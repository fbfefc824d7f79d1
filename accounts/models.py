from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower

from registry.validators import FieldedConstraintsMixin


class User(FieldedConstraintsMixin, AbstractUser):
    """A person or pipeline account. Email is required and unique whatever its letter case."""

    CONSTRAINT_ERROR_FIELDS = {"duplicate_email": "email"}

    email = models.EmailField("email address")
    # A pipeline's account: it never signs in with a password (accounts.backends) and acts only
    # through the API keys a superuser makes for it; it owns models and appears in trails like anyone.
    is_service_account = models.BooleanField(
        "service account",
        default=False,
        help_text="Acts only through API keys; cannot sign in with a password.",
    )
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


class ApiKey(models.Model):
    """A pipeline's or script's credential: ``mlr_<prefix>_<secret>``, sent as a Bearer token or as the
    password of HTTP Basic auth (accounts.authentication).

    Only ``prefix`` (to find the row) and the SHA-256 of the secret are stored. A plain, fast hash is
    enough here, unlike for passwords: the secret is 256 random bits, so there is nothing to guess or
    look up in a dictionary, and a slow hash would only cost every API request its time.
    """

    PREFIX_LENGTH = 8

    class Scope(models.TextChoices):
        READ = "read", "Read only (safe methods)"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the pipeline that uses it.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField("SHA-256 of the secret", max_length=64, editable=False)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Never expires when empty.")
    # Written at most once a minute (services.api_key_authenticate), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (mlr_{self.prefix}_…)"

    @property
    def is_read_only(self) -> bool:
        return self.scope == self.Scope.READ
