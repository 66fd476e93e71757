"""Multibot: a management server for fleets of freqtrade bots."""

from multibot.celery import app as celery_app

__all__ = ["celery_app"]
