"""The kinds of failure every app may raise, and the shared layer knows how to answer.

Apps subclass these (``mlmodels.storage.StorageUnavailable``, ``mlmodels.services.FileTooLarge``);
the API's exception handler maps the base classes to their status codes, so the shared layer never
imports a feature app to know what they mean.
"""

from django.core.exceptions import ValidationError


class ServiceUnavailable(Exception):
    """A service the registry depends on could not be reached; nothing was changed (the API
    answers 503, the pages an inline error)."""


class TooLarge(ValidationError):
    """Input over a size limit: a ValidationError (pages show it as a form error) that the API
    answers with 413. ``detail`` is the message."""

    def __init__(self, detail: str, *, field: str):
        self.detail = detail
        super().__init__({field: [detail]}, code="too_large")


class Conflict(Exception):
    """The change no longer fits the state it would apply to (a request already decided, a move no
    longer allowed): nothing was changed; the API answers 409 with this message."""
