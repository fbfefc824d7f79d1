from rest_framework import serializers

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
