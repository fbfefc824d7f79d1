from django.conf import settings
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class ConfiguredBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """Django's bcrypt hasher with its work factor taken from settings.BCRYPT_ROUNDS.

    It keeps the algorithm name ``bcrypt_sha256``, so hashes stay readable by Django's own hasher,
    and ``must_update`` re-hashes a password at its next login when the configured rounds change.
    """

    @property
    def rounds(self) -> int:
        return settings.BCRYPT_ROUNDS
