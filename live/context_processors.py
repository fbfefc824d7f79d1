from django.conf import settings


def live_updates(request) -> dict:
    """Whether the layout loads static/js/live.js (for signed-in users)."""
    return {"LIVE_UPDATES": settings.LIVE_UPDATES}
