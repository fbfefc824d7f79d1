"""Admin for the people who run the registry.

Every change goes through ``mlmodels.services`` (the same write path as the API and the pages), so
versions are recorded and lifecycle moves are audited whichever door a change comes through. The
lifecycle field itself is read-only here: stages change only through the actions.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from mlmodels import services
from mlmodels.models import (
    AliasEvent,
    ApprovalRequest,
    LifecycleEvent,
    MLModel,
    ModelVersion,
    ProtectedAlias,
    Stage,
    VersionFile,
)
from registry.validators import normalize_name

READ_ONLY_MODEL_FIELDS = (
    "lifecycle",
    # Set and removed one at a time (the API and the model page), through the services.
    "tags",
    "aliases",
    "file",
    "file_size",
    "file_sha256",
    "latest_version",
    "created_at",
    "updated_at",
)


class MLModelAdminForm(forms.ModelForm):
    artifact = forms.FileField(required=False, help_text="Upload a new artifact file; it is recorded as a new version.")

    class Meta:
        model = MLModel
        fields = (
            "owner",
            "name",
            "description",
            "framework",
            "task_type",
            "experiment",
            "accuracy",
            "precision",
            "recall",
            "f1_score",
            "hyperparameters",
        )

    def clean_name(self):
        # The services refuse a taken name too; here it is a form error, not a failed save.
        name = normalize_name(self.cleaned_data["name"])
        if error := services.name_taken_error(name, model=self.instance if self.instance.pk else None):
            raise forms.ValidationError(error, code="duplicate_name")
        return name


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ModelVersionInline(ReadOnlyInline):
    model = ModelVersion
    fk_name = "model"
    fields = (
        "version_number",
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "file",
        "file_size",
        "file_count",
        "created_by",
        "note",
        "tags",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("-version_number",)


class VersionFileInline(ReadOnlyInline):
    """A folder version's files: path, size, sha256 and where each is stored."""

    model = VersionFile
    fields = ("path", "size", "sha256", "key")
    readonly_fields = fields
    ordering = ("path",)


class LifecycleEventInline(ReadOnlyInline):
    model = LifecycleEvent
    fields = ("created_at", "from_stage", "to_stage", "actor", "comment")
    readonly_fields = fields


class AliasEventInline(ReadOnlyInline):
    model = AliasEvent
    fields = ("created_at", "alias", "from_version", "to_version", "actor")
    readonly_fields = fields


def _move_action(to_stage: Stage, description: str):
    def action(modeladmin, request, queryset):
        moved = 0
        for model in queryset:
            try:
                pending = services.lifecycle_move(
                    model=model, actor=request.user, to_stage=to_stage, comment="Moved in the admin"
                )
            except (ValidationError, PermissionDenied) as error:
                reason = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                modeladmin.message_user(request, f"Could not move {model.name}: {reason}", messages.ERROR)
            else:
                if pending is None:
                    moved += 1
                else:
                    modeladmin.message_user(
                        request, f"{model.name}: asked for approval (request #{pending.pk}).", messages.INFO
                    )
        if moved:
            modeladmin.message_user(request, f"Moved {moved} model(s) to {to_stage.label.lower()}.", messages.SUCCESS)

    action.__name__ = f"move_to_{to_stage.value}"
    return admin.action(description=description)(action)


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    form = MLModelAdminForm
    list_display = ("name", "owner", "framework", "task_type", "lifecycle", "accuracy", "latest_version", "updated_at")
    list_filter = ("framework", "task_type", "lifecycle", "owner")
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = READ_ONLY_MODEL_FIELDS
    date_hierarchy = "created_at"
    inlines = (ModelVersionInline, LifecycleEventInline, AliasEventInline)
    actions = (
        _move_action(Stage.STAGING, "Move to staging"),
        _move_action(Stage.PRODUCTION, "Promote to production"),
        _move_action(Stage.DEVELOPMENT, "Move back to development"),
        _move_action(Stage.ARCHIVED, "Archive"),
    )

    def get_readonly_fields(self, request, obj=None):
        # The owner is chosen when the model is created and never changes afterwards.
        return (*READ_ONLY_MODEL_FIELDS, "owner") if obj else READ_ONLY_MODEL_FIELDS

    def save_model(self, request, obj, form, change):
        editable = {name: form.cleaned_data[name] for name in form.changed_data if name in services.EDITABLE_FIELDS}
        artifact = form.cleaned_data.get("artifact")
        if change:
            services.model_update(
                model=obj, actor=request.user, data=editable, file=artifact, note="Changed in the admin"
            )
            return
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        created = services.model_create(owner=form.cleaned_data["owner"], actor=request.user, file=artifact, **fields)
        obj.pk = created.pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        # Versions and events are view-only on their own, but they belong to their model and go
        # with it: their missing delete permission must not block deleting the model.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        owned = {row._meta.verbose_name for row in (ModelVersion, LifecycleEvent, AliasEvent, ApprovalRequest)}
        return deleted, model_count, perms_needed - owned, protected

    def delete_model(self, request, obj):
        services.model_delete(model=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for model in queryset:
            services.model_delete(model=model, actor=request.user)


class ViewOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ViewOnlyAdmin):
    list_display = ("model", "version_number", "accuracy", "f1_score", "file_size", "created_by", "created_at")
    list_filter = ("model__framework", "model__lifecycle")
    search_fields = ("model__name", "note")
    list_select_related = ("model", "created_by")
    inlines = (VersionFileInline,)


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ViewOnlyAdmin):
    list_display = ("created_at", "model", "from_stage", "to_stage", "actor", "comment")
    list_filter = ("to_stage", "from_stage")
    search_fields = ("model__name", "comment", "actor__username")
    list_select_related = ("model", "actor")
    date_hierarchy = "created_at"


@admin.register(ProtectedAlias)
class ProtectedAliasAdmin(admin.ModelAdmin):
    """Superusers list the aliases only approvers may set (Django's admin permissions: superusers hold them)."""

    list_display = ("name", "created_at")
    search_fields = ("name",)

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ViewOnlyAdmin):
    """Requests are decided on the Approvals page and through the API (one service decides them);
    the admin shows them."""

    list_display = ("id", "created_at", "model", "action", "to_stage", "alias", "version_number", "status")
    list_display += ("requested_by", "decided_by", "decided_at")
    list_filter = ("status", "action")
    search_fields = ("model__name", "alias", "comment", "decision_comment", "requested_by__username")
    list_select_related = ("model", "requested_by", "decided_by")
    date_hierarchy = "created_at"
