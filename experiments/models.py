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
