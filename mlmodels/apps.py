from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    name = "mlmodels"
    verbose_name = "Models"

    def ready(self) -> None:
        from mlmodels import signals  # noqa: F401  (connects the stored-file clean-up)
        from registry.counts import connect_signals

        connect_signals()
