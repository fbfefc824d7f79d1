from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    name = "mlmodels"
    verbose_name = "Models"

    def ready(self) -> None:
        from mlmodels import signals, subscribers  # noqa: F401  (signals connects the stored-file clean-up)
        from mlmodels.storage import check_storage
        from registry.health import register_check

        register_check("storage", check_storage)
        subscribers.connect()
