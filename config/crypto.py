"""Symmetric encryption of secrets at rest (access tokens), keyed by FIELD_ENCRYPTION_KEY.

MultiFernet: the first key encrypts, every listed key decrypts, so a key is
rotated by putting the new one first, running ``manage.py rotate_encryption_keys``,
then removing the old one.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"


class DecryptionError(ImproperlyConfigured):
    """A stored secret could not be decrypted with any configured key."""


@cache
def _fernet(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])


def fernet() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY)


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise DecryptionError("stored secret is not in the encrypted format")
    try:
        return fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY: "
            "the key was changed without keeping the old one in the list"
        ) from None


def rotate(stored: str) -> str:
    """The same secret encrypted under the first (newest) key."""
    return PREFIX + fernet().rotate(stored[len(PREFIX) :].encode()).decode()
