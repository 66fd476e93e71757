"""The user model: Django's, with the full name the API document shows."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    full_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.username
