from django.urls import path

from mlmodels import views

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("new/", views.model_create, name="model-create"),
    path("<int:pk>/", views.model_detail, name="model-detail"),
    path("<int:pk>/edit/", views.model_edit, name="model-edit"),
    path("<int:pk>/delete/", views.model_delete, name="model-delete"),
    path("<int:pk>/versions/", views.model_versions, name="model-versions"),
    path("<int:pk>/compare/", views.model_compare, name="model-compare"),
    path("<int:pk>/parts/<slug:part>/", views.model_part, name="model-part"),
    path("<int:pk>/lifecycle/", views.model_lifecycle, name="model-lifecycle"),
    path("<int:pk>/upload/", views.model_upload, name="model-upload"),
    path("<int:pk>/versions/<int:number>/rollback/", views.model_rollback, name="model-rollback"),
    path("<int:pk>/tags/", views.model_tag_set, name="model-tag-set"),
    path("<int:pk>/tags/delete/", views.model_tag_delete, name="model-tag-delete"),
    path("<int:pk>/aliases/", views.model_alias_set, name="model-alias-set"),
    path("<int:pk>/aliases/<str:alias>/delete/", views.model_alias_delete, name="model-alias-delete"),
]
