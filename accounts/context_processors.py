from django.conf import settings

from accounts import services


def sign_in(request) -> dict:
    """What the layout and the login page show of the ways in: registration, and SSO only."""
    return {"REGISTRATION_OPEN": services.registration_open(), "SSO_ONLY": settings.SSO_ONLY}
