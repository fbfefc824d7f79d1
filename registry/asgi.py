"""The ASGI entry point: HTTP to Django, WebSocket to the live updates (live/).

Production serves only /ws/ with it (daphne behind nginx, docker-compose.yml's ``live`` service);
the HTTP API stays on gunicorn's sync workers (registry/wsgi.py). ``manage.py runserver`` serves both.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
# Django is set up before the consumers' modules import models.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # A page of another site cannot open a socket with our session cookie (cross-site WebSocket
        # hijacking): its Origin must be one of ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
