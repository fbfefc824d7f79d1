from django import forms

from mlmodels.models import MLModel
from webhooks import services
from webhooks.addresses import MAX_URL_LENGTH

EVENT_CHOICES = [(type, type) for type in services.EVENT_TYPES]


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=MAX_URL_LENGTH,
        strip=False,
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.com/hooks/registry"}),
        help_text="Receives a signed POST for each event. Public addresses only.",
    )
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        initial=["lifecycle.changed", "alias.set"],
    )
    model = forms.ModelChoiceField(
        queryset=MLModel.objects.none(),
        required=False,
        empty_label="All my models",
        help_text="Only this model's events.",
    )
    description = forms.CharField(max_length=services.MAX_DESCRIPTION, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Subscribing to another owner's model is refused anyway: offer only one's own.
        self.fields["model"].queryset = MLModel.objects.filter(owner=user).only("id", "name").order_by("name")
