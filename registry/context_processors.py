from django.conf import settings


def site(request) -> dict:
    return {"REGISTRATION_OPEN": settings.REGISTRATION_OPEN}
