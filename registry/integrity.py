from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError, models


@contextmanager
def integrity_as_validation(instance: models.Model) -> Iterator[None]:
    """Turn a constraint violation the database caught into the ValidationError that names it.

    Services validate before writing, but two concurrent requests can both pass validation; the
    database constraint then refuses the second one, and its caller deserves the same clear message
    as if validation had caught it. Use it outside the failed ``atomic`` block, whose rollback
    leaves the connection usable for the check.
    """
    try:
        yield
    except IntegrityError:
        instance.validate_constraints()
        raise
