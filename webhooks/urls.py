from django.urls import path

from webhooks import views

urlpatterns = [
    path("", views.webhook_list, name="webhook-list"),
    path("<int:pk>/", views.webhook_detail, name="webhook-detail"),
    path("<int:pk>/test/", views.webhook_test, name="webhook-test"),
    path("<int:pk>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    path("<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
    path("<int:pk>/deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver, name="delivery-redeliver"),
]
