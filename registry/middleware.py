import functools
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse, UnreadablePostError
from django.urls import Resolver404, resolve
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# Room for the multipart envelope (boundaries, headers, the other form fields) around the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


class RequestSizeLimitMiddleware:
    """Refuse an oversized request with 413 from its Content-Length, before anything reads the body.

    Every body is held to DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB), whatever its content type, except a
    signed-in user's multipart body to one of the upload routes (settings.LARGE_UPLOAD_URL_NAMES),
    or any body to a route that takes the file as its body (settings.RAW_UPLOAD_URL_NAMES), which
    may carry an artifact of up to MAX_UPLOAD_BYTES. Anonymous clients (login, register) cannot
    make a worker read and spool megabytes. Placed after the authentication middleware: the session
    user is known there, and a bearer token is checked only for a large upload.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None or length <= limit:
            return self.get_response(request)
        upload_limit = settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES
        upload = _is_upload(request)
        if upload and length <= upload_limit:
            # A raw-body route's view authenticates (MLflow's Basic password too) before it reads a byte.
            if _takes_raw_body(request) or _signed_in(request):
                return self.get_response(request)
            message = f"Request body too large: {length} bytes; sign in to upload more than {limit} bytes."
        else:
            message = f"Request body too large: {length} bytes; the limit is {upload_limit if upload else limit} bytes."
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=413)
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def _view_name(request) -> str | None:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return None


def _is_upload(request) -> bool:
    """A multipart body to one of LARGE_UPLOAD_URL_NAMES, or any body to one of RAW_UPLOAD_URL_NAMES."""
    multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data")
    raw_names = getattr(settings, "RAW_UPLOAD_URL_NAMES", frozenset())
    if not multipart and not raw_names:
        return False
    name = _view_name(request)
    return name in raw_names or (multipart and name in settings.LARGE_UPLOAD_URL_NAMES)


def _takes_raw_body(request) -> bool:
    return _view_name(request) in getattr(settings, "RAW_UPLOAD_URL_NAMES", frozenset())


def _signed_in(request) -> bool:
    """Whether the request carries the session of an active user or credentials one of the API's
    other authentication classes accepts (a bearer token)."""
    if request.user.is_authenticated:
        return True
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication, SessionAuthentication):
            continue  # reads the session user through DRF's request: the check above
        try:
            if authentication().authenticate(request) is not None:
                return True
        except APIException:
            return False
    return False


class InterruptedUploadMiddleware:
    """Deletes the temporary files of a request's uploads when it ends, and answers 400 (not 500)
    when its body could not be read because the client went away.

    Django deletes a half-spooled upload when the body merely ends early, but not when reading it
    raises (a connection reset): the temporary file stayed on disk, open, until the garbage collector
    freed the request. The CSRF middleware swallows that error for page forms, so the cleanup runs
    after every response instead of on the exception alone; a completed upload's file is deleted by
    Django at the same point anyway.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            # The handlers that read the body's files, if it had any; for a request that parsed no
            # body they are made here (from FILE_UPLOAD_HANDLERS) and hold nothing to delete.
            for handler in request.upload_handlers:
                handler.upload_interrupted()

    def process_exception(self, request, exception):
        if not isinstance(exception, UnreadablePostError):
            return None
        logger.info("%s %s: the request body could not be read (%s)", request.method, request.path, exception)
        message = "The request body could not be read in full; nothing was saved."
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=400)
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


@functools.cache
def content_security_policy(form_action_origins: tuple[str, ...] = ()) -> str:
    """Everything the pages use comes from this origin: scripts (htmx, app.js, Swagger UI's files and
    its init script, served split from the page) and styles. Inline *styles* stay allowed for the style
    attributes of the charts and bars and the indicator styles htmx injects; inline scripts do not.
    Forms post here only, but for ``form_action_origins``: browsers apply form-action to the redirects
    that follow a post too, and the single sign-on button's post is redirected to the IdP."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            " ".join(("form-action 'self'", *form_action_origins)),
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header to every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = content_security_policy(tuple(settings.CSP_FORM_ACTION_ORIGINS))
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
