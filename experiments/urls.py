from django.urls import path

from experiments import views

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("new/", views.experiment_create, name="experiment-create"),
    path("<int:pk>/", views.experiment_detail, name="experiment-detail"),
    path("<int:pk>/edit/", views.experiment_edit, name="experiment-edit"),
    path("<int:pk>/delete/", views.experiment_delete, name="experiment-delete"),
    path("<int:pk>/models/compare/", views.experiment_model_compare, name="experiment-model-compare"),
    path("<int:pk>/runs/compare/", views.run_compare, name="run-compare"),
    path("<int:pk>/runs/<str:run_id>/", views.run_detail, name="run-detail"),
]
