from operator import attrgetter

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

from registry.validators import MAX_JSON_BYTES, MAX_JSON_DEPTH

# Sent by the browsable API's HTML forms alongside the data.
FORM_HOUSEKEEPING = {"csrfmiddlewaretoken"}


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (DRF drops them silently), naming the ones it accepts."""

    def validate(self, attrs):
        if isinstance(self.initial_data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(self.initial_data) - writable - FORM_HOUSEKEEPING)
            if unknown:
                accepted = ", ".join(sorted(writable))
                raise serializers.ValidationError(
                    {name: [f"Unknown or read-only field. Accepted fields: {accepted}."] for name in unknown}
                )
        return super().validate(attrs)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class JSONObjectField(serializers.JSONField):
    """A JSON object (a mapping of names to values); lists, strings and numbers are refused. Its
    limits (registry.validators.validate_json_document, run by the services) are in its help text,
    and so in the schema."""

    default_error_messages = {"not_object": "Must be a JSON object (a mapping of names to values)."}

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            f"A JSON object, at most {MAX_JSON_DEPTH} levels deep and {MAX_JSON_BYTES // 1024} KB once encoded, "
            "in valid Unicode text.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


class CachedFieldsMixin:
    """Builds an output serializer's fields once per class instead of once per response, and reads
    plain attributes in one call.

    A ModelSerializer introspects its model and deep-copies every field each time it is created
    (a third of the time of a request for one model), and DRF's field-by-field attribute lookup and
    timezone handling were most of the time of a page of 100 models. The fields of the serializers
    that use this hold no per-request state (no request, no context, no hyperlinks), so one plan
    serves every response. Plain attributes are read with one ``attrgetter`` call; the values of
    integer, float, string, choice, boolean and JSON fields are already what DRF would output; the
    other fields (datetimes, dotted sources, methods) take their own path. The output is DRF's own,
    field for field (registry/tests/test_serializers.py).
    """

    def to_representation(self, instance):
        return type(self)._plan().represent(instance)

    @classmethod
    def _plan(cls) -> "_Plan":
        plan = cls.__dict__.get("_cached_plan")
        if plan is None:
            meta = getattr(cls, "Meta", None)
            plan = cls._cached_plan = _Plan(cls()._readable_fields, model=getattr(meta, "model", None))
        return plan

    @classmethod
    def rows(cls, queryset: QuerySet) -> QuerySet:
        """``queryset`` as rows of just the columns this serializer shows, for ``represent_rows``.

        A page of 100 models spent a fifth of its time making model instances it only read from.
        A serializer with a field that is not one plain column keeps the instances.
        """
        columns = cls._plan().columns
        return queryset if columns is None else queryset.values_list(*columns)

    @classmethod
    def represent_rows(cls, rows) -> list[dict]:
        """The output of ``many=True`` for what ``rows`` gave (rows, or instances)."""
        plan = cls._plan()
        if plan.columns is None:
            return [plan.represent(row) for row in rows]
        zone = _output_zone()
        return [plan.represent_row(row, zone) for row in rows]


# Output fields whose value is already its JSON representation when it is not None.
_AS_IS = (
    serializers.IntegerField,
    serializers.FloatField,
    serializers.CharField,
    serializers.ChoiceField,
    serializers.BooleanField,
    serializers.DictField,
    serializers.JSONField,
)


class _Plan:
    def __init__(self, fields, *, model=None):
        fields = list(fields)
        plain = [
            field
            for field in fields
            if len(field.source_attrs) == 1
            and not isinstance(field, serializers.SerializerMethodField)
            and (isinstance(field, _AS_IS) or _is_iso_datetime(field))
        ]
        self.names = [field.field_name for field in fields]
        self.plain_names = tuple(field.field_name for field in plain)
        sources = [field.source_attrs[0] for field in plain]
        self.read_plain = attrgetter(*sources) if len(sources) > 1 else (lambda obj: (getattr(obj, sources[0]),))
        self.datetimes = tuple(field.field_name for field in plain if _is_iso_datetime(field))
        self.others = tuple(field for field in fields if field not in plain)
        # Shown from a row of these columns when every field is a plain one read from a column.
        concrete = model._meta.concrete_fields if model else ()
        columns = {name for field in concrete for name in (field.name, field.attname)}
        every_field_a_column = not self.others and all(source in columns for source in sources)
        self.columns = tuple(sources) if every_field_a_column else None

    def _iso_datetimes(self, values: dict, zone) -> None:
        for name in self.datetimes:
            if values[name] is not None:
                values[name] = _iso_datetime(values[name], zone)

    def represent_row(self, row: tuple, zone) -> dict:
        values = dict(zip(self.names, row, strict=True))
        self._iso_datetimes(values, zone)
        return values

    def represent(self, instance) -> dict:
        values = dict(zip(self.plain_names, self.read_plain(instance), strict=True))
        self._iso_datetimes(values, _output_zone())
        for field in self.others:
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            values[field.field_name] = None if attribute is None else field.to_representation(attribute)
        return {name: values[name] for name in self.names if name in values}


def _is_iso_datetime(field) -> bool:
    return (
        isinstance(field, serializers.DateTimeField)
        and getattr(field, "format", api_settings.DATETIME_FORMAT) == ISO_8601
        and not hasattr(field, "timezone")
    )


def _output_zone():
    return timezone.get_current_timezone() if settings.USE_TZ else None


def _iso_datetime(value, zone) -> str:
    """DRF's DateTimeField output (ISO 8601 in the current timezone, ``Z`` for UTC)."""
    if zone is not None and value.tzinfo is not zone and timezone.is_aware(value):
        value = value.astimezone(zone)
    text = value.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
