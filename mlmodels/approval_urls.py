from django.urls import path

from mlmodels import approval_views

urlpatterns = [
    path("", approval_views.approval_inbox, name="approval-inbox"),
    path("<int:pk>/approve/", approval_views.approval_approve, name="approval-approve"),
    path("<int:pk>/reject/", approval_views.approval_reject, name="approval-reject"),
    path("<int:pk>/cancel/", approval_views.approval_cancel, name="approval-cancel"),
]
