from allauth.account import views as allauth_views
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from accounts import views

urlpatterns = [
    # allauth's sign-in and sign-out under the names the app has always used.
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("register/", views.register, name="register"),
    path("profile/", views.profile, name="profile"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_changed.html"),
        name="password-changed",
    ),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("security/", RedirectView.as_view(pattern_name="mfa_index"), name="security"),
    # allauth's pages that the registry's own replace (registration, password change), and those it does
    # not offer: it sends no mail, so no password reset by email and no email management.
    path("signup/", RedirectView.as_view(pattern_name="register")),
    path("password/change/", RedirectView.as_view(pattern_name="password-change")),
    path("password/set/", RedirectView.as_view(pattern_name="password-change")),
    re_path(r"^password/reset/", views.not_offered, name="not-offered"),
    re_path(r"^confirm-email/", views.not_offered, name="not-offered"),
    path("email/", views.not_offered, name="not-offered"),
    path("", include("allauth.urls")),
]
