"""EncryptedTextField: text stored Fernet-encrypted, with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"multibot-field-encryption").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(value: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """Encrypted at rest; the empty string stays empty so "no key set" remains queryable."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value in (None, ""):
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            # SECRET_KEY changed since this was written: the secret is unrecoverable, say so once.
            logger.error("cannot decrypt %s.%s: SECRET_KEY changed?", self.model.__name__, self.name)
            return None

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
