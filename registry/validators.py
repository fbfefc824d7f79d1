from django.core.exceptions import ValidationError


def validate_json_object(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object (a mapping of names to values).", code="not_object")


def validate_string_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Must be a JSON list of strings.", code="not_string_list")
