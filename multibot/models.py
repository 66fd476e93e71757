"""The user model: Django's, with the full name the API document shows."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    full_name = models.CharField(max_length=150, blank=True)
    # Carried by every token issued (claim "token_version"); raising it ends all of them at once,
    # access tokens included (multibot.authentication.JWTAuthentication compares the two).
    token_version = models.PositiveIntegerField(default=0, editable=False)

    def __str__(self) -> str:
        return self.username
