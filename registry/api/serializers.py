from operator import attrgetter

from django.conf import settings
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

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
    """A JSON object (a mapping of names to values); lists, strings and numbers are refused."""

    default_error_messages = {"not_object": "Must be a JSON object (a mapping of names to values)."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


class CachedFieldsMixin:
    """Builds an output serializer's fields once per class instead of once per response, and reads
    plain attributes and datetimes on a short path.

    A ModelSerializer introspects its model and deep-copies every field each time it is created
    (a third of the time of a request for one model), and DRF's generic attribute lookup and
    timezone handling were most of the time of a page of 100 models. The fields of the serializers
    that use this hold no per-request state (no request, no context, no hyperlinks), so one set
    serves every response; the output is the same as DRF's (checked by the API tests).
    """

    def to_representation(self, instance):
        readers = type(self).__dict__.get("_cached_readers")
        if readers is None:
            readers = type(self)._cached_readers = tuple(_reader(field) for field in self._readable_fields)
        zone = timezone.get_current_timezone() if settings.USE_TZ else None
        representation = {}
        for name, read, convert, is_datetime in readers:
            try:
                value = read(instance)
            except SkipField:
                continue
            if value is None:
                representation[name] = None
            elif is_datetime:
                representation[name] = _iso_datetime(value, zone)
            else:
                representation[name] = convert(value)
        return representation


def _reader(field):
    """(name, read the attribute, convert it, is an ISO 8601 datetime) for one output field."""
    simple = len(field.source_attrs) == 1 and not isinstance(field, serializers.SerializerMethodField)
    read = attrgetter(field.source_attrs[0]) if simple else field.get_attribute
    is_datetime = (
        isinstance(field, serializers.DateTimeField)
        and getattr(field, "format", api_settings.DATETIME_FORMAT) == ISO_8601
        and not hasattr(field, "timezone")
    )
    return field.field_name, read, field.to_representation, is_datetime


def _iso_datetime(value, zone) -> str:
    """DRF's DateTimeField output (ISO 8601 in the current timezone, ``Z`` for UTC)."""
    if zone is not None and timezone.is_aware(value):
        value = value.astimezone(zone)
    text = value.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
