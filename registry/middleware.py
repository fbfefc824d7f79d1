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
