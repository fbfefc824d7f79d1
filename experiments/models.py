import math
import uuid

from django.conf import settings
from django.db import connection, models
from django.db.models.expressions import RawSQL

from registry.fields import JSONDocumentField
from registry.validators import (
    FieldedConstraintsMixin,
    free_text_validators,
    validate_json_object,
    validate_printable_name,
    validate_string_list,
)


class ExperimentQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ExperimentQuerySet":
        """Every signed-in user reads every experiment; anonymous visitors read none."""
        return self if user.is_authenticated else self.none()

    def tagged(self, tag: str) -> "ExperimentQuerySet":
        """Experiments whose tags include ``tag`` exactly."""
        if connection.vendor == "postgresql":
            return self.filter(tags__contains=[tag])
        # SQLite has no JSON containment lookup; its json_each() gives the same exact match.
        tagged_ids = RawSQL("SELECT e.id FROM experiments_experiment e, json_each(e.tags) t WHERE t.value = %s", [tag])
        return self.filter(id__in=tagged_ids)

    def editable_by(self, user) -> "ExperimentQuerySet":
        """Experiments the user may change: their own, or all of them for a superuser."""
        if user.is_superuser:
            return self
        return self.filter(owner=user)


class Experiment(FieldedConstraintsMixin, models.Model):
    CONSTRAINT_ERROR_FIELDS = {"duplicate_name": "name"}

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200, validators=[validate_printable_name])
    description = models.TextField(blank=True, validators=free_text_validators)
    parameters = JSONDocumentField(default=dict, blank=True, validators=[validate_json_object])
    tags = JSONDocumentField(default=list, blank=True, validators=[validate_string_list])
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"],
                name="experiments_experiment_unique_name_per_owner",
                violation_error_code="duplicate_name",
                violation_error_message="You already have an experiment with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def can_change(self, user) -> bool:
        return user.is_authenticated and (user.is_superuser or self.owner_id == user.pk)


# --- runs -------------------------------------------------------------------------------------------
# A run is MLflow's: one execution of training code inside an experiment, with its params, metric
# histories and tags. Times are epoch milliseconds, as on MLflow's wire, so the MLflow facade passes
# them through unchanged.


def new_run_id() -> str:
    return uuid.uuid4().hex


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING", "Running"
    SCHEDULED = "SCHEDULED", "Scheduled"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    KILLED = "KILLED", "Killed"


class LifecycleStage(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class RunQuerySet(models.QuerySet):
    def visible_to(self, user) -> "RunQuerySet":
        """Runs are read like their experiments: by every signed-in user."""
        return self if user.is_authenticated else self.none()


class Run(models.Model):
    run_id = models.CharField(max_length=32, unique=True, default=new_run_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250)
    status = models.CharField(max_length=9, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField(null=True, blank=True)
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=7, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    deleted_time = models.BigIntegerField(null=True, blank=True)
    artifact_uri = models.CharField(max_length=1000, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-start_time", "run_id"]
        indexes = [
            # An experiment's runs, newest first (the page, API v1 and MLflow's runs/search default).
            models.Index(fields=["experiment", "lifecycle_stage", "-start_time"], name="experiments_run_listing"),
        ]

    def __str__(self) -> str:
        return self.name or self.run_id

    @property
    def is_active(self) -> bool:
        return self.lifecycle_stage == LifecycleStage.ACTIVE

    @property
    def artifact_prefix(self) -> str:
        """Where its artifact files are stored: under its experiment owner's namespace, so that a
        version registered from them is a copy inside the registry's own storage."""
        return f"users/{self.experiment.owner_id}/runs/{self.run_id}/artifacts"

    @property
    def duration_ms(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def can_change(self, user) -> bool:
        """Its creator, its experiment's owner or a superuser."""
        return user.is_authenticated and (
            user.is_superuser or self.user_id == user.pk or self.experiment.owner_id == user.pk
        )


class RunParam(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="experiments_runparam_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="experiments_runtag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MetricValue:
    """What a metric row reads as: NaN is stored as 0 with ``is_nan`` set (SQLite turns a NaN into
    NULL; MLflow's SQL store does the same), infinities as themselves."""

    value: float
    is_nan: bool

    @property
    def metric_value(self) -> float:
        return math.nan if self.is_nan else self.value


class RunMetric(MetricValue, models.Model):
    """One logged point of a metric's history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_history")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["step", "timestamp", "id"]
        constraints = [
            # MLflow's primary key: logging the very same point twice keeps one. It also serves the
            # history of one key, in step order.
            models.UniqueConstraint(
                fields=["run", "key", "step", "timestamp", "value", "is_nan"], name="experiments_runmetric_unique_point"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.metric_value} (step {self.step})"


class RunLatestMetric(MetricValue, models.Model):
    """The latest point of each metric of a run: the one with the largest (step, timestamp, value),
    MLflow's rule. Kept by the log service, so lists and sorting never scan histories."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="experiments_runlatestmetric_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.metric_value}"


def new_logged_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


class LoggedModelStatus(models.TextChoices):
    # MLflow's enum names, as its wire carries them.
    PENDING = "LOGGED_MODEL_PENDING", "Pending"
    READY = "LOGGED_MODEL_READY", "Ready"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED", "Upload failed"


class LoggedModel(models.Model):
    """MLflow 3's logged model: the folder ``log_model`` writes (MLmodel, the weights, the
    environment), with its params and tags, made in an experiment (usually by a run) before any
    registered model's version is made from it."""

    model_id = models.CharField(max_length=34, unique=True, default=new_logged_model_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="logged_models")
    source_run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="logged_models")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=26, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    creation_time = models.BigIntegerField()
    last_updated_time = models.BigIntegerField()
    lifecycle_stage = models.CharField(max_length=7, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    artifact_uri = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-creation_time", "model_id"]
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "-creation_time"], name="experiments_lm_listing"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    @property
    def is_active(self) -> bool:
        return self.lifecycle_stage == LifecycleStage.ACTIVE

    @property
    def artifact_prefix(self) -> str:
        return f"users/{self.experiment.owner_id}/logged-models/{self.model_id}/artifacts"

    def can_change(self, user) -> bool:
        """Its creator, its experiment's owner or a superuser (a run's rule)."""
        return user.is_authenticated and (
            user.is_superuser or self.user_id == user.pk or self.experiment.owner_id == user.pk
        )


class LoggedModelParam(models.Model):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["logged_model", "key"], name="experiments_loggedmodelparam_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class LoggedModelTag(models.Model):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["logged_model", "key"], name="experiments_loggedmodeltag_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


# --- artifact files ---------------------------------------------------------------------------------
# What MLflow's artifact proxy (/api/2.0/mlflow-artifacts/artifacts/…) stores for a run or a logged
# model: one row per file, its path inside the owner's artifact folder and where it is stored
# (``experiments.artifacts`` is the one write path; folders are derived from the paths).


def _artifact_key_written_by_registry() -> models.Q:
    """A key is a relative ``users/…`` key as the registry writes it (the guard mlmodels' file keys
    carry too): no URI, no ``//host``, no ``.`` or ``..`` segment, no query, fragment, backslash or
    encoding. (A name like ``model..v2.bin`` is a file name, not a traversal.)"""
    condition = models.Q(key__startswith="users/")
    for fragment in ("/../", "/./", "//", ":", "?", "#", "\\", "%"):
        condition &= ~models.Q(key__contains=fragment)
    for ending in ("/..", "/."):
        condition &= ~models.Q(key__endswith=ending)
    return condition


class ArtifactFile(models.Model):
    """One artifact file of a run or (XOR) of a logged model, stored at ``key`` = the owner's
    ``artifact_prefix`` + "/" + ``path``; a new upload of the same path replaces the bytes there."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, null=True, blank=True, related_name="artifact_files")
    logged_model = models.ForeignKey(
        LoggedModel, on_delete=models.CASCADE, null=True, blank=True, related_name="artifact_files"
    )
    path = models.CharField(max_length=1024)
    key = models.CharField("file key", max_length=1024, unique=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(run__isnull=False) & models.Q(logged_model__isnull=True))
                | (models.Q(run__isnull=True) & models.Q(logged_model__isnull=False)),
                name="experiments_artifactfile_one_owner",
                violation_error_message="An artifact file belongs to a run or to a logged model, not both.",
            ),
            models.UniqueConstraint(fields=["run", "path"], name="experiments_artifactfile_unique_run_path"),
            models.UniqueConstraint(
                fields=["logged_model", "path"], name="experiments_artifactfile_unique_logged_model_path"
            ),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="experiments_artifactfile_size_not_negative"),
            models.CheckConstraint(
                condition=_artifact_key_written_by_registry(), name="experiments_artifactfile_key_registry_written"
            ),
        ]

    def __str__(self) -> str:
        return self.path
