from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from mlmodels import views as mlmodels_views
from registry.api.errors import api_not_found
from registry.health import health


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico whatever a page links (the JSON API, files, error pages): send them
    to the icon the pages link. Not permanent, and looked up per request: the static file's hashed name
    changes with its content, and the manifest may not exist yet when this module is imported."""
    return HttpResponseRedirect(static("favicon.svg"))


# The admin signs people in through the app's login page (allauth's recipe), so a second factor or
# SSO_ONLY cannot be skipped by its own password form.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", mlmodels_views.dashboard, name="dashboard"),
    path("models/", include("mlmodels.urls")),
    path("experiments/", include("experiments.urls")),
    path("approvals/", include("mlmodels.approval_urls")),
    path("webhooks/", include("webhooks.urls")),
    path("accounts/", include("accounts.urls")),
    path("health", health, name="health"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "api/docs/",
        # The split view serves Swagger UI's init script as a file, so the page needs no inline script.
        SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]),
        name="swagger-ui",
    ),
    path("api/auth/", include("accounts.browsable_api_urls")),  # the browsable API's login link
    path("api/v1/", include("registry.api.urls")),
    # MLflow's REST API, where its client looks for it (MLFLOW_TRACKING_URI is this server's root).
    path("api/2.0/mlflow/", include("mlflow_api.urls")),
    path("ajax-api/2.0/mlflow/", include("mlflow_api.urls")),
    # Its artifact proxy (mlflow-artifacts:/… URIs) and server-info probe, under both prefixes.
    path("", include("mlflow_api.artifact_urls")),
    # Anything else under /api/ is a JSON 404, also when DEBUG would show Django's HTML page.
    re_path(r"^api/", api_not_found),
]

handler400 = "registry.api.errors.bad_request"
handler403 = "registry.api.errors.permission_denied"
handler404 = "registry.api.errors.page_not_found"
handler500 = "registry.api.errors.server_error"
