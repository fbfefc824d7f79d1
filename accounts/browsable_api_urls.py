"""The browsable API's login and logout links (DRF's ``rest_framework`` URL names), sent to the app's
own sign-in: one door for people, with the lockouts, single sign-on and second factors."""

from allauth.account import views as allauth_views
from django.urls import path
from django.views.generic import RedirectView

app_name = "rest_framework"

urlpatterns = [
    path("login/", RedirectView.as_view(pattern_name="login", query_string=True), name="login"),
    path("logout/", allauth_views.logout, name="logout"),
]
