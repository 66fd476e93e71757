"""App configuration for jobs."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
