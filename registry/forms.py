import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from registry.validators import MAX_JSON_DEPTH, json_text_depth, lone_surrogate


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: under its field when the form has one."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class JSONDocumentFormField(forms.JSONField):
    """Django's JSON form field, refusing text nested more than MAX_JSON_DEPTH levels before parsing
    it (the parser recurses once per level: a thousand levels raised RecursionError), and showing a
    value back even when it holds text that cannot be encoded (the validators then name the problem)."""

    def to_python(self, value):
        if isinstance(value, str) and json_text_depth(value) > MAX_JSON_DEPTH:
            raise ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.", code="too_deep")
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str) and json_text_depth(data) > MAX_JSON_DEPTH:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def prepare_value(self, value):
        prepared = super().prepare_value(value)
        if not isinstance(value, InvalidJSONInput) and isinstance(prepared, str) and lone_surrogate(prepared):
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return prepared


class JSONObjectFormField(JSONDocumentFormField):
    default_error_messages = {"not_object": 'Enter a JSON object, like {"max_depth": 6}.'}

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not isinstance(value, dict):
            raise ValidationError(self.error_messages["not_object"], code="not_object")
        return value
