"""The project app: users, auth endpoints, monitoring, first-run bootstrap."""

from django.apps import AppConfig


class MultibotConfig(AppConfig):
    name = "multibot"
    verbose_name = "Multibot"
