from rest_framework.views import get_view_name as drf_view_name


def get_view_name(view) -> str:
    """The title of a page of the browsable API (settings' VIEW_NAME_FUNCTION).

    DRF builds it from the class name, so ``MLModelViewSet``'s list read "Ml Model List". A view may
    name its pages itself: ``titles = {"List": "Models", "Instance": "Model"}``, by route suffix.
    """
    titles = getattr(view, "titles", None) or {}
    return titles.get(getattr(view, "suffix", None)) or drf_view_name(view)
