from django.contrib import admin

from experiments import logged_models, runs, services
from experiments.models import (
    Experiment,
    LoggedModel,
    LoggedModelParam,
    LoggedModelTag,
    Run,
    RunLatestMetric,
    RunParam,
    RunTag,
)
from mlmodels.models import MLModel


class ProducedModelInline(admin.TabularInline):
    model = MLModel
    fk_name = "experiment"
    verbose_name_plural = "models produced"
    fields = ("name", "owner", "framework", "lifecycle", "accuracy", "latest_version")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "tags", "created_at", "updated_at")
    list_filter = ("owner",)
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (ProducedModelInline,)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "owner") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            services.experiment_update(experiment=obj, actor=request.user, data=data)
            return
        created = services.experiment_create(owner=form.cleaned_data["owner"], actor=request.user, **data)
        obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.experiment_delete(experiment=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for experiment in queryset:
            services.experiment_delete(experiment=experiment, actor=request.user)


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RunParamInline(_ReadOnlyInline):
    model = RunParam
    fields = readonly_fields = ("key", "value")


class RunLatestMetricInline(_ReadOnlyInline):
    model = RunLatestMetric
    verbose_name_plural = "metrics (latest)"
    fields = readonly_fields = ("key", "value", "is_nan", "step", "timestamp")


class RunTagInline(_ReadOnlyInline):
    model = RunTag
    fields = readonly_fields = ("key", "value")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Read-only: runs are written by their clients (API v1, MLflow) through experiments.runs."""

    readonly_fields = (
        "run_id",
        "experiment",
        "user",
        "name",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "deleted_time",
        "artifact_uri",
    )

    list_display = ("name", "run_id", "experiment", "user", "status", "lifecycle_stage", "start_time")
    list_filter = ("status", "lifecycle_stage")
    search_fields = ("name", "run_id", "experiment__name", "user__username")
    list_select_related = ("experiment", "user")
    # Not the metric histories: thousands of points are for the run's page and the API, not a form.
    inlines = (RunParamInline, RunLatestMetricInline, RunTagInline)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj):
        # The admin's delete is the runs' own: soft (restorable), with its event. Deleting the
        # experiment still removes its runs.
        runs.run_delete(run=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for run in queryset.select_related("experiment"):
            runs.run_delete(run=run, actor=request.user)


class LoggedModelParamInline(_ReadOnlyInline):
    model = LoggedModelParam
    fields = readonly_fields = ("key", "value")


class LoggedModelTagInline(_ReadOnlyInline):
    model = LoggedModelTag
    fields = readonly_fields = ("key", "value")


@admin.register(LoggedModel)
class LoggedModelAdmin(admin.ModelAdmin):
    """Read-only: logged models are written by MLflow's client through experiments.logged_models."""

    readonly_fields = (
        "model_id",
        "experiment",
        "user",
        "source_run",
        "name",
        "model_type",
        "status",
        "status_message",
        "creation_time",
        "last_updated_time",
        "lifecycle_stage",
        "artifact_uri",
    )
    list_display = ("name", "model_id", "experiment", "source_run", "status", "lifecycle_stage", "creation_time")
    list_filter = ("status", "lifecycle_stage")
    search_fields = ("name", "model_id", "experiment__name", "source_run__run_id")
    list_select_related = ("experiment", "source_run")
    inlines = (LoggedModelParamInline, LoggedModelTagInline)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj):
        # Soft, with its event, as MLflow's delete is; deleting the experiment removes it.
        logged_models.logged_model_delete(logged_model=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for logged_model in queryset.select_related("experiment"):
            logged_models.logged_model_delete(logged_model=logged_model, actor=request.user)
