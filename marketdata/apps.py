"""App configuration for marketdata."""

from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
