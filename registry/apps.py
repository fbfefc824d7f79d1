from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The shared layer every app builds on (API plumbing, validators, filters, middleware, health,
    list counts, the domain-event bus). It imports no feature app; apps plug into it (health checks,
    error kinds, event subscribers)."""

    name = "registry"
    verbose_name = "Registry (shared)"

    def ready(self) -> None:
        from registry import counts

        counts.connect()
