from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from experiments.api import ExperimentViewSet, RunViewSet
from mlmodels import api as mlmodels_api
from mlmodels import approvals_api
from webhooks import api as webhooks_api

app_name = "api"


class Router(DefaultRouter):
    # No ".json" suffix routes: ?format= chooses a renderer, and the viewsets' actions take no
    # format argument (a suffix route was a 500).
    include_format_suffixes = False


router = Router()
router.register("models", mlmodels_api.MLModelViewSet, basename="models")
router.register("experiments", ExperimentViewSet, basename="experiments")
router.register(r"experiments/(?P<id>[0-9]{1,18})/runs", RunViewSet, basename="experiment-runs")
router.register("approvals", approvals_api.ApprovalViewSet, basename="approvals")
router.register("webhooks", webhooks_api.WebhookViewSet, basename="webhooks")

# The guide's auth and file routes have no trailing slash; DRF clients often add one: both work.
auth_patterns = [
    re_path(r"^register/?$", accounts_api.RegisterView.as_view(), name="auth-register"),
    re_path(r"^login/?$", accounts_api.LoginView.as_view(), name="auth-login"),
    re_path(r"^refresh/?$", accounts_api.RefreshView.as_view(), name="auth-refresh"),
    re_path(r"^logout/?$", accounts_api.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^me/?$", accounts_api.MeView.as_view(), name="auth-me"),
    re_path(
        r"^api-keys/?$",
        accounts_api.ApiKeyViewSet.as_view({"get": "list", "post": "create"}),
        name="auth-api-keys-list",
    ),
    re_path(
        r"^api-keys/(?P<pk>[0-9]+)/?$",
        accounts_api.ApiKeyViewSet.as_view({"delete": "destroy"}),
        name="auth-api-keys-detail",
    ),
]
file_patterns = [
    re_path(r"^upload/?$", mlmodels_api.FileUploadView.as_view(), name="files-upload"),
    path("download/<path:path>", mlmodels_api.FileDownloadView.as_view(), name="files-download"),
    path("presigned-url/<path:path>", mlmodels_api.PresignedUrlView.as_view(), name="files-presigned-url"),
    path("signed/<str:token>", mlmodels_api.SignedDownloadView.as_view(), name="files-signed-download"),
]

urlpatterns = [
    path("auth/", include(auth_patterns)),
    re_path(r"^service-accounts/?$", accounts_api.ServiceAccountsView.as_view(), name="service-accounts"),
    re_path(
        r"^service-accounts/(?P<pk>[0-9]{1,18})/api-keys/?$",
        accounts_api.ServiceAccountApiKeysView.as_view(),
        name="service-account-api-keys",
    ),
    path("files/", include(file_patterns)),
    path("", include(router.urls)),
]
