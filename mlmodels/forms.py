from django import forms

from mlmodels.models import METRIC_FIELDS, Framework, MLModel, TaskType
from registry.forms import JSONObjectFormField
from registry.validators import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TEXT_LENGTH


def _metric_field(**options) -> forms.FloatField:
    return forms.FloatField(
        required=False, min_value=0, max_value=1, widget=forms.NumberInput(attrs={"step": "any"}), **options
    )


class MLModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))
    framework = forms.ChoiceField(choices=Framework.choices, initial=Framework.OTHER)
    task_type = forms.ChoiceField(choices=TaskType.choices, initial=TaskType.OTHER)
    experiment = forms.ModelChoiceField(queryset=MLModel.experiment_model().objects.none(), required=False)
    accuracy = _metric_field()
    precision = _metric_field()
    recall = _metric_field()
    f1_score = _metric_field(label="F1 score")
    hyperparameters = JSONObjectFormField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, data=None, *, user, linked_experiment_id: int | None = None, **kwargs):
        super().__init__(data, **kwargs)
        # The experiments ``user`` may link a model to (the services check it again), and the one
        # the model is already linked to, which may stay.
        experiments = MLModel.experiment_model().objects
        linkable = experiments.editable_by(user) | experiments.filter(pk=linked_experiment_id)
        self.fields["experiment"].queryset = linkable.order_by("name")

    @classmethod
    def for_model(cls, model: MLModel, data=None, *, user) -> "MLModelForm":
        initial = {field: getattr(model, field) for field in ("name", "description", "framework", "task_type")}
        initial.update({field: getattr(model, field) for field in METRIC_FIELDS})
        initial["experiment"] = model.experiment_id
        initial["hyperparameters"] = model.hyperparameters
        return cls(data, initial=initial, user=user, linked_experiment_id=model.experiment_id)

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        if data.get("hyperparameters") is None:
            data["hyperparameters"] = {}
        return data


class LifecycleForm(forms.Form):
    lifecycle = forms.CharField()
    comment = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)


class AliasForm(forms.Form):
    alias = forms.CharField(max_length=64, help_text="e.g. champion, challenger")
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    comment = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)


class TagForm(forms.Form):
    key = forms.CharField(max_length=MAX_TAG_KEY, strip=False)
    value = forms.CharField(required=False, max_length=MAX_TAG_VALUE, strip=False)


class TagKeyForm(forms.Form):
    key = forms.CharField(max_length=MAX_TAG_KEY, strip=False)


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)


class UploadForm(forms.Form):
    file = forms.FileField()
    note = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)
