"""App configuration for freqai."""

from django.apps import AppConfig


class FreqaiConfig(AppConfig):
    name = "freqai"
