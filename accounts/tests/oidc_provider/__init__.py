"""A stand-alone OpenID Connect provider (allauth's IdP) that the SSO tests run on loopback.

It is its own Django project, never the registry's: `accounts.tests.conftest.oidc_provider` starts it
with DJANGO_SETTINGS_MODULE=accounts.tests.oidc_provider.settings and drives it through `control`.
"""
