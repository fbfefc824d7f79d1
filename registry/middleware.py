from django.conf import settings
from django.http import HttpResponse, JsonResponse

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
