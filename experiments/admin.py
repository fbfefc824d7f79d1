from django.contrib import admin

from experiments import services
from experiments.models import Experiment
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
