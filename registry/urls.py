from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from mlmodels import views as mlmodels_views
from registry.api.errors import api_not_found
from registry.health import health

urlpatterns = [
    path("", mlmodels_views.dashboard, name="dashboard"),
    path("models/", include("mlmodels.urls")),
    path("experiments/", include("experiments.urls")),
    path("accounts/", include("accounts.urls")),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "api/docs/",
        # The split view serves Swagger UI's init script as a file, so the page needs no inline script.
        SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]),
        name="swagger-ui",
    ),
    path("api/auth/", include("rest_framework.urls")),  # session login for the browsable API
    path("api/v1/", include("registry.api.urls")),
    # Anything else under /api/ is a JSON 404, also when DEBUG would show Django's HTML page.
    re_path(r"^api/", api_not_found),
]

handler400 = "registry.api.errors.bad_request"
handler403 = "registry.api.errors.permission_denied"
handler404 = "registry.api.errors.page_not_found"
handler500 = "registry.api.errors.server_error"
