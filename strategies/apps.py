"""App configuration for strategies."""

from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
