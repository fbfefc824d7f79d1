from django import forms
from django.core.exceptions import ValidationError

from registry.forms import JSONObjectFormField
from registry.validators import MAX_TEXT_LENGTH


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))
    parameters = JSONObjectFormField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 4}))
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. fraud, baseline.")

    def clean_tags(self) -> list[str]:
        tags = [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
        if any(len(tag) > 100 for tag in tags):
            raise ValidationError("Each tag has at most 100 characters.")
        return tags

    def clean_parameters(self) -> dict:
        return self.cleaned_data["parameters"] or {}
