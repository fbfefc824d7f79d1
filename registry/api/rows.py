"""The API's read path: declared columns, shown as DRF's serializers would show them.

A view whose output fields are plain columns turns them into the response's mapping with a
``RowFormat``: a list reads its page as tuples of the columns (``QuerySet.values_list``) rather than
as model instances, and one object is shown from its instance's attributes; no serializer fields are
built or walked for each response. The DRF serializer of the same resource stays the description of
the output (the schema, the browsable API, the other writes' responses), and
registry/tests/test_serializers.py holds the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.utils import timezone


class RowFormat:
    """The output mapping of rows of ``columns``: the value of column ``sources.get(name, name)``
    under each name of ``fields``, in that order.

    Each value is shown as it is read, which is what DRF's integer, float, string, choice, boolean
    and JSON fields show for a column of that type. The columns named in ``datetimes`` are shown as
    DRF's DateTimeField shows them with its default format: ISO 8601 in the current time zone, with
    ``Z`` for UTC. A field of any other kind (a dotted source, a method, another format) is not a
    plain column: its view keeps its serializer.
    """

    def __init__(
        self, fields: Sequence[str], *, sources: Mapping[str, str] | None = None, datetimes: Iterable[str] = ()
    ):
        sources = dict(sources or {})
        datetimes = set(datetimes)
        unknown = (set(sources) | datetimes) - set(fields)
        if unknown:
            raise ValueError(f"Not among the fields: {', '.join(sorted(unknown))}.")
        self.fields = tuple(fields)
        self.columns = tuple(sources.get(name, name) for name in self.fields)
        self._datetimes = tuple(index for index, name in enumerate(self.fields) if name in datetimes)
        self._read = attrgetter(*self.columns)

    def format(self, row: Sequence[Any]) -> dict[str, Any]:
        """The output of one row."""
        return self._format(row, _output_zone())

    def format_rows(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """The output of each row (a list serializer's ``data``)."""
        zone = _output_zone()
        return [self._format(row, zone) for row in rows]

    def format_instance(self, instance: Any) -> dict[str, Any]:
        """The output of the row of ``instance``'s attributes, the row ``values_list(*columns)``
        reads from its table (for one object, read or just written: making one instance costs
        less than building a query of named columns)."""
        row = self._read(instance)
        return self._format(row if len(self.columns) > 1 else (row,), _output_zone())

    def _format(self, row: Sequence[Any], zone: tzinfo | None) -> dict[str, Any]:
        if self._datetimes:
            row = list(row)
            for index in self._datetimes:
                if row[index] is not None:
                    row[index] = iso_datetime(row[index], zone)
        return dict(zip(self.fields, row, strict=True))


def _output_zone() -> tzinfo | None:
    return timezone.get_current_timezone() if settings.USE_TZ else None


def iso_datetime(value: datetime, zone: tzinfo | None) -> str:
    """DRF's DateTimeField output with its default format: ISO 8601 in ``zone`` (naive without
    one), ``Z`` for UTC."""
    if zone is None:
        if timezone.is_aware(value):
            value = timezone.make_naive(value, UTC)
    elif timezone.is_naive(value):
        value = timezone.make_aware(value, zone)
    elif value.tzinfo is not zone:
        value = value.astimezone(zone)
    text = value.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
