from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform

from registry.comparisons import like, like_regex
from registry.fields import JSONDocumentField
from registry.validators import (
    FieldedConstraintsMixin,
    free_text_validators,
    name_key,
    validate_alias,
    validate_json_object,
    validate_printable_name,
    validate_tags,
)

METRIC_FIELDS = ("accuracy", "precision", "recall", "f1_score")


class Framework(models.TextChoices):
    SKLEARN = "sklearn", "scikit-learn"
    PYTORCH = "pytorch", "PyTorch"
    TENSORFLOW = "tensorflow", "TensorFlow"
    KERAS = "keras", "Keras"
    XGBOOST = "xgboost", "XGBoost"
    LIGHTGBM = "lightgbm", "LightGBM"
    ONNX = "onnx", "ONNX"
    HUGGINGFACE = "huggingface", "Hugging Face"
    OTHER = "other", "Other"


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"
    CLUSTERING = "clustering", "Clustering"
    ANOMALY_DETECTION = "anomaly_detection", "Anomaly detection"
    OTHER = "other", "Other"


class Stage(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


# The lifecycle graph: the only moves a model may make, from its current stage.
ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    Stage.DEVELOPMENT: (Stage.STAGING, Stage.ARCHIVED),
    Stage.STAGING: (Stage.PRODUCTION, Stage.DEVELOPMENT, Stage.ARCHIVED),
    Stage.PRODUCTION: (Stage.STAGING, Stage.ARCHIVED),
    Stage.ARCHIVED: (Stage.DEVELOPMENT,),
}


def _metric_field(name: str) -> models.FloatField:
    return models.FloatField(
        name,
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )


def _metric_checks(prefix: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(
            condition=Q(**{f"{metric}__isnull": True}) | Q(**{f"{metric}__gte": 0.0, f"{metric}__lte": 1.0}),
            name=f"{prefix}_{metric}_between_0_and_1",
            violation_error_message=f"{metric} must be between 0 and 1.",
        )
        for metric in METRIC_FIELDS
    ]


def _file_key_check(prefix: str, field: str = "file") -> models.CheckConstraint:
    """The database's own guard on stored locations: a file key is NULL or a relative key under
    ``users/`` as the storage service writes it. Nothing a client sends can become a ``file:`` or
    ``s3://`` URI, a ``//host`` reference, an absolute or ``..`` path, or carry a query or fragment.
    (The services only ever write keys from ``storage.artifact_key``; this holds even if a future
    code path forgets to.)"""
    forbidden = ("..", "//", ":", "?", "#", "\\", "%")
    well_formed = Q(**{f"{field}__startswith": "users/"})
    for fragment in forbidden:
        well_formed &= ~Q(**{f"{field}__contains": fragment})
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True}) | well_formed,
        name=f"{prefix}_file_key_registry_written",
        violation_error_message="A file key is a relative users/… key written by the registry.",
    )


TAG_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")


class TaggedQuerySet(models.QuerySet):
    """Rows with a JSON ``tags`` object: models, and versions (their own tags)."""

    def tagged(self, key: str, value: str | None = None, *, comparator: str = "="):
        """Rows carrying the tag ``key`` (with ``value``, when given, compared by ``comparator``: "=";
        "!=", another value; "LIKE" or "ILIKE", a value matching the pattern ``value`` as
        ``registry.comparisons.like`` reads it, case-sensitive or not)."""
        if comparator not in TAG_COMPARATORS:
            raise ValueError(f"Tags are compared by {', '.join(TAG_COMPARATORS)}, not {comparator!r}.")
        if connection.vendor == "postgresql":
            if value is None:
                return self.filter(tags__has_key=key)
            if comparator == "=":
                return self.filter(tags__contains={key: value})
            if comparator == "!=":
                return self.filter(tags__has_key=key).exclude(tags__contains={key: value})
            alias = f"tag_value_{len(self.query.annotations)}"
            matching = like(alias, value, ignore_case=comparator == "ILIKE")
            return self.alias(**{alias: KeyTextTransform(key, "tags")}).filter(matching)
        # SQLite's JSON paths cannot name every key (one with a double quote): json_each compares keys as
        # they are. Its LIKE ignores ASCII case: LIKE adds the regular expression Django's REGEXP reads.
        table = self.model._meta.db_table
        rows = f"SELECT r.id FROM {table} r, json_each(r.tags) t WHERE t.key = %s"  # noqa: S608 (our own table)
        if value is None:
            return self.filter(id__in=RawSQL(rows, [key]))  # noqa: S611 (the values are parameters)
        condition, params = {
            "=": ("t.value = %s", [value]),
            "!=": ("t.value != %s", [value]),
            "LIKE": ("t.value LIKE %s AND t.value REGEXP %s", [value, like_regex(value)]),
            "ILIKE": ("t.value LIKE %s", [value]),
        }[comparator]
        return self.filter(id__in=RawSQL(f"{rows} AND t.type = 'text' AND {condition}", [key, *params]))  # noqa: S611

    def untagged(self, key: str, value: str):
        """The rows ``tagged(key, value)`` leaves out, told by each row's own tags (no subquery over the
        table): cheap enough to add to every list."""
        if connection.vendor == "postgresql":
            return self.exclude(tags__contains={key: value})
        if '"' in key:
            return self.exclude(id__in=self.tagged(key, value).values("id"))
        alias = f"tag_value_{len(self.query.annotations)}"
        absent = Q(**{f"{alias}__isnull": True}) | ~Q(**{alias: value})
        return self.alias(**{alias: KeyTextTransform(key, "tags")}).filter(absent)


class MLModelQuerySet(TaggedQuerySet):
    def visible_to(self, user) -> "MLModelQuerySet":
        """Every signed-in user reads every model; anonymous visitors read none."""
        return self if user.is_authenticated else self.none()


class MLModel(FieldedConstraintsMixin, models.Model):
    CONSTRAINT_ERROR_FIELDS = {"duplicate_name": "name"}

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="models")
    experiment = models.ForeignKey(
        "experiments.Experiment", on_delete=models.SET_NULL, null=True, blank=True, related_name="models"
    )
    name = models.CharField(max_length=200, validators=[validate_printable_name])
    # The name as registry-wide uniqueness compares it (registry.validators.name_key), set on save: a
    # name says which model it is (models:/name@alias), whoever owns it. Case folding can lengthen a
    # name up to three times.
    name_key = models.CharField(max_length=600, editable=False)
    description = models.TextField(blank=True, validators=free_text_validators)
    framework = models.CharField(max_length=20, choices=Framework.choices, default=Framework.OTHER)
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.OTHER)
    lifecycle = models.CharField(max_length=20, choices=Stage.choices, default=Stage.DEVELOPMENT)
    accuracy = _metric_field("accuracy")
    precision = _metric_field("precision")
    recall = _metric_field("recall")
    f1_score = _metric_field("F1 score")
    hyperparameters = JSONDocumentField(default=dict, blank=True, validators=[validate_json_object])
    # Key → string value, set and removed one at a time by the services (not part of the versions).
    tags = JSONDocumentField(default=dict, blank=True, validators=[validate_tags])
    # Alias → version number (champion, challenger), kept by the alias service under the model's row
    # lock, every change audited in AliasEvent; read with the row, so lists show them without a query.
    aliases = JSONDocumentField(default=dict, blank=True, editable=False)
    # NULL, not "", is "no file": the API contract shows file_path as null.
    file = models.CharField("file key", max_length=1024, null=True, blank=True)  # noqa: DJ001
    file_size = models.BigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # How many files the current artifact has when it is a folder (its newest version's VersionFile
    # rows); 0 for a single file or none. A column, so that "has an artifact" costs no query.
    file_count = models.PositiveIntegerField(default=0, editable=False)
    # The highest version number recorded; the version service increments it under a row lock.
    latest_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MLModelQuerySet.as_manager()

    class Meta:
        verbose_name = "model"
        ordering = ["-created_at", "-id"]
        # The approvers' role (the "approvers" group holds it, see accounts.roles.can_approve).
        permissions = [("approve_production", "Can approve moves to production and set protected aliases")]
        indexes = [
            models.Index(fields=["lifecycle"], name="mlmodel_lifecycle_idx"),
            models.Index(fields=["framework"], name="mlmodel_framework_idx"),
            models.Index(fields=["task_type"], name="mlmodel_task_type_idx"),
            models.Index(fields=["created_at"], name="mlmodel_created_at_idx"),
            models.Index(fields=["updated_at"], name="mlmodel_updated_at_idx"),
            # MLflow's registered-models/search pages through the models by name.
            models.Index(fields=["name"], name="mlmodel_name_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["name_key"],
                name="mlmodel_unique_name",
                violation_error_code="duplicate_name",
                violation_error_message="Another model has this name; model names are unique across the registry.",
            ),
            models.CheckConstraint(condition=Q(lifecycle__in=Stage.values), name="mlmodel_lifecycle_valid"),
            *_metric_checks("mlmodel"),
            _file_key_check("mlmodel"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name_key = name_key(self.name)
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)

    def validate_constraints(self, exclude=None):
        self.name_key = name_key(self.name)
        super().validate_constraints(exclude=exclude)

    @staticmethod
    def experiment_model() -> type[models.Model]:
        """The experiments app's Experiment, which a model may link to: named by the foreign key, so
        this app never imports the app built on it."""
        return MLModel._meta.get_field("experiment").related_model

    def can_change(self, user) -> bool:
        return user.is_authenticated and (user.is_superuser or self.owner_id == user.pk)

    @property
    def allowed_moves(self) -> tuple[str, ...]:
        return ALLOWED_MOVES[self.lifecycle]

    @property
    def has_artifact(self) -> bool:
        """A single file or a folder of files (what production, rollbacks and downloads need)."""
        return bool(self.file) or self.file_count > 0


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Scan pending"
    CLEAN = "clean", "Clean"
    UNSAFE = "unsafe", "Unsafe"
    UNKNOWN = "unknown", "Unknown format"
    ERROR = "error", "Scan failed"


class ModelVersion(models.Model):
    """An immutable snapshot of a model's metrics, hyperparameters and file."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="versions")
    version_number = models.PositiveIntegerField()
    accuracy = _metric_field("accuracy")
    precision = _metric_field("precision")
    recall = _metric_field("recall")
    f1_score = _metric_field("F1 score")
    hyperparameters = JSONDocumentField(default=dict, blank=True, validators=[validate_json_object])
    # NULL, not "", is "no file": the API contract shows file_path as null.
    file = models.CharField("file key", max_length=1024, null=True, blank=True)  # noqa: DJ001
    file_size = models.BigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # A folder artifact's number of files (its VersionFile rows, ``files``); 0 for a single file or none.
    file_count = models.PositiveIntegerField(default=0, editable=False)
    experiment = models.ForeignKey(
        "experiments.Experiment", on_delete=models.SET_NULL, null=True, blank=True, related_name="model_versions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The run that produced it (a version registered from a run's or a logged model's artifacts).
    run = models.ForeignKey(
        "experiments.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="model_versions"
    )
    note = models.TextField(blank=True, validators=free_text_validators)
    # The version's own tags (a model's tags are not copied into its versions).
    tags = JSONDocumentField(default=dict, blank=True, validators=[validate_tags])
    # What the artifact scan (mlmodels.scans, run by a task once the file is stored) found: blank for a
    # version without a file; an unsafe file cannot go to production or get a protected alias.
    scan_status = models.CharField(max_length=10, choices=ScanStatus.choices, blank=True, editable=False)
    scan_findings = JSONDocumentField(default=list, blank=True, editable=False)
    artifact_format = models.CharField(max_length=20, blank=True, editable=False)
    artifact_metadata = JSONDocumentField(default=dict, blank=True, editable=False)
    scanned_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TaggedQuerySet.as_manager()

    class Meta:
        verbose_name = "model version"
        ordering = ["model", "-version_number"]
        # MLflow's model-versions/search pages through the versions newest first.
        indexes = [models.Index(fields=["created_at"], name="modelversion_created_at_idx")]
        constraints = [
            models.UniqueConstraint(fields=["model", "version_number"], name="modelversion_unique_number_per_model"),
            models.CheckConstraint(condition=Q(version_number__gte=1), name="modelversion_number_positive"),
            *_metric_checks("modelversion"),
            _file_key_check("modelversion"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} v{self.version_number}"

    @property
    def has_artifact(self) -> bool:
        return bool(self.file) or self.file_count > 0

    @property
    def is_folder(self) -> bool:
        return self.file_count > 0


# A folder version holds at most this many files: an MLflow model has a handful, a checkpoint folder
# a few hundred; beyond, the scans and the zip download would take too long for one request or task.
MAX_FILES_PER_VERSION = 10_000
MAX_FILE_PATH_LENGTH = 1024


class VersionFile(models.Model):
    """One file of a version whose artifact is a folder (an MLflow model: ``MLmodel``,
    ``model.pkl``…): its path inside the folder and where it is stored.

    The key is under the prefix of the version that stored it (``users/{o}/models/{m}/v{n}/``); a
    rollback's version has rows of its own pointing at the same keys, so a stored object stays while
    any row names it (``mlmodels.signals``). Paths are checked by ``mlmodels.folders``.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=MAX_FILE_PATH_LENGTH)
    key = models.CharField("file key", max_length=1024)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "version file"
        ordering = ["version", "path"]
        indexes = [models.Index(fields=["key"], name="versionfile_key_idx")]
        constraints = [
            models.UniqueConstraint(fields=["version", "path"], name="versionfile_unique_path_per_version"),
            models.CheckConstraint(condition=Q(size__gte=0), name="versionfile_size_not_negative"),
            _file_key_check("versionfile", field="key"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.path}"


class LifecycleEvent(models.Model):
    """One audited stage change, written in the same transaction as the change itself."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="events")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True, validators=free_text_validators)
    # The approval request this move carried out, when an approver decided it (who asked, and why).
    approval = models.ForeignKey("ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "lifecycle event"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "-created_at"], name="lifecycleevent_model_time_idx")]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.from_stage} → {self.to_stage}"


class AliasEvent(models.Model):
    """One audited alias change (set, moved or deleted), written in the same transaction as the change."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=64)
    # Version numbers: None as from_version is a new alias, None as to_version a deleted one.
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The approval request this change carried out, when an approver decided it.
    approval = models.ForeignKey("ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "alias event"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "-created_at"], name="aliasevent_model_time_idx")]

    def __str__(self) -> str:
        return f"{self.model_id}@{self.alias}: v{self.from_version} → v{self.to_version}"


class ProtectedAlias(models.Model):
    """An alias name (champion, production) that only approvers and superusers may set, move or delete;
    listed by superusers in the admin."""

    name = models.CharField(max_length=64, unique=True, validators=[validate_alias])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "protected alias"
        verbose_name_plural = "protected aliases"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApprovalAction(models.TextChoices):
    LIFECYCLE = "lifecycle", "Move to production"
    ALIAS = "alias", "Protected alias"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalRequest(models.Model):
    """A change an owner asked for that an approver must decide (PRODUCTION_NEEDS_APPROVAL): a move
    to production, or setting, moving or removing a protected alias. Approving applies it through the
    same service, in the decision's transaction; requests are never edited or deleted, only decided."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="approval_requests")
    action = models.CharField(max_length=20, choices=ApprovalAction.choices)
    # A lifecycle request names the stage (production); an alias request the alias and the version it
    # should point at (None: remove the alias).
    to_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    alias = models.CharField(max_length=64, blank=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True, validators=free_text_validators)
    status = models.CharField(max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_comment = models.TextField(blank=True, validators=free_text_validators)
    decided_at = models.DateTimeField(null=True, blank=True)
    # The newer request for the same change that cancelled this one.
    superseded_by = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "approval request"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="approval_status_time_idx"),
            models.Index(fields=["model", "-created_at"], name="approval_model_time_idx"),
        ]
        constraints = [
            # One pending request per model and change (the lifecycle, or one alias): a newer one
            # supersedes it (mlmodels.services), and the database holds that line under races.
            models.UniqueConstraint(
                fields=["model", "action", "alias"],
                condition=Q(status="pending"),
                name="approval_one_pending_per_change",
            ),
            models.CheckConstraint(condition=Q(status__in=ApprovalStatus.values), name="approval_status_valid"),
            models.CheckConstraint(condition=Q(action__in=ApprovalAction.values), name="approval_action_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id}: {self.summary} ({self.status})"

    @property
    def summary(self) -> str:
        """The change in a few words, as the pages and the history name it."""
        if self.action == ApprovalAction.LIFECYCLE:
            return f"move to {self.to_stage}"
        if self.version_number is None:
            return f"remove @{self.alias}"
        return f"point @{self.alias} at version {self.version_number}"

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING

    def action_data(self) -> dict:
        """``{type: "lifecycle", to_stage}`` or ``{type: "alias", alias, version}``, as the API shows it."""
        if self.action == ApprovalAction.LIFECYCLE:
            return {"type": self.action, "to_stage": self.to_stage}
        return {"type": self.action, "alias": self.alias, "version": self.version_number}
