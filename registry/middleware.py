import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse, UnreadablePostError

logger = logging.getLogger(__name__)

# Room for the multipart envelope (boundaries, headers, the other form fields) around the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


class RequestSizeLimitMiddleware:
    """Refuse an oversized request with 413 from its Content-Length, before anything reads the body.

    Multipart requests may carry an artifact up to MAX_UPLOAD_BYTES; any other body is held to
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE, since parsers read such bodies into memory.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("multipart/form-data"):
            limit = settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES
        else:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            message = f"Request body too large: {length} bytes; the limit is {limit} bytes."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


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
            # The class attribute is an empty list: only a request that parsed uploads has handlers.
            for handler in request._upload_handlers:
                handler.upload_interrupted()

    def process_exception(self, request, exception):
        if not isinstance(exception, UnreadablePostError):
            return None
        logger.info("%s %s: the request body could not be read (%s)", request.method, request.path, exception)
        message = "The request body could not be read in full; nothing was saved."
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=400)
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


# Everything the pages use comes from this origin: scripts (htmx, app.js, Swagger UI's files and its
# init script, served split from the page) and styles. Inline *styles* stay allowed for the style
# attributes of the charts and bars and the indicator styles htmx injects; inline scripts do not.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header to every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
