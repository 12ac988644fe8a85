"""The API's write throttle: POST, PUT, PATCH and DELETE per user, at ``API_WRITE_RATE``."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle


class WriteRateThrottle(UserRateThrottle):
    """Counts a user's writes (an anonymous client's per address) in Django's default cache.

    The cache is Redis, so every web worker counts against the same limit. Reads
    are not counted. A refusal is DRF's 429 with ``Retry-After``.
    """

    scope = "write"

    def get_rate(self) -> str:
        # Read when the throttle is made, not when DRF's settings were first
        # loaded, so a test (or a reloaded setting) takes effect.
        return settings.API_WRITE_RATE

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
