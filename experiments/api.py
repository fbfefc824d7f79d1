"""/api/v1/experiments/: thin views over experiments.services and experiments.selectors."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from experiments import selectors, services
from experiments.filters import ExperimentFilterSet
from experiments.models import Experiment
from registry.api.permissions import IsOwnerOrSuperuserToChange
from registry.api.serializers import JSONObjectField, StrictSerializer
from registry.validators import MAX_TEXT_LENGTH


class ExperimentSerializer(serializers.ModelSerializer):
    owner_id = serializers.IntegerField(read_only=True)
    parameters = serializers.DictField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    model_ids = serializers.SerializerMethodField(help_text="Ids of the models this experiment produced.")

    class Meta:
        model = Experiment
        fields = (
            "id",
            "name",
            "description",
            "parameters",
            "tags",
            "owner_id",
            "model_ids",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_model_ids(self, experiment) -> list[int]:
        return [model.pk for model in experiment.models.all()]


class ExperimentWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_LENGTH)
    parameters = JSONObjectField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)


@extend_schema_view(
    list=extend_schema(summary="List experiments"),
    retrieve=extend_schema(summary="Get an experiment"),
    create=extend_schema(
        summary="Create an experiment",
        request=ExperimentWriteSerializer,
        responses={201: ExperimentSerializer},
        examples=[
            OpenApiExample(
                "A sweep",
                value={"name": "fraud-sweep", "parameters": {"lr": 0.1}, "tags": ["fraud"]},
                request_only=True,
            )
        ],
    ),
    update=extend_schema(summary="Replace an experiment's fields", request=ExperimentWriteSerializer),
    partial_update=extend_schema(summary="Change some of an experiment's fields", request=ExperimentWriteSerializer),
    destroy=extend_schema(summary="Delete an experiment (its models stay, unlinked)"),
)
class ExperimentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ExperimentSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrSuperuserToChange]
    filterset_class = ExperimentFilterSet
    titles = {"List": "Experiments", "Instance": "Experiment"}
    queryset = Experiment.objects.none()  # for schema generation; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Experiment.objects.none()
        return selectors.experiment_list(user=self.request.user)

    def _write(self, request, *, partial: bool) -> dict:
        serializer = ExperimentWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _represent(self, experiment: Experiment) -> dict:
        """The experiment as a read shows it: read again through the selector, for its model ids."""
        return ExperimentSerializer(self.get_queryset().get(pk=experiment.pk)).data

    def create(self, request):
        data = self._write(request, partial=False)
        experiment = services.experiment_create(owner=request.user, **data)
        return Response(self._represent(experiment), status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        experiment = self.get_object()
        data = self._write(request, partial=partial)
        services.experiment_update(experiment=experiment, actor=request.user, data=data)
        return Response(self._represent(experiment))

    def destroy(self, request, pk=None):
        services.experiment_delete(experiment=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
