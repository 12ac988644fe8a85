"""/healthz: is this process able to reach what it needs? 200 when all checks pass, else 503."""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from config.redis import get_redis
from config.tasks import BEAT_HEARTBEAT_KEY


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    get_redis().ping()


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"database": _database, "redis": _redis, "broker": _broker}


@never_cache
def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as error:
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    healthy = all(result["ok"] for result in results.values())
    body = {"status": "ok" if healthy else "fail", "checks": results}
    if results["redis"]["ok"]:
        # Informational: beat and a periodic worker are alive when this is recent.
        beat = get_redis().get(BEAT_HEARTBEAT_KEY)
        body["beat_heartbeat_age_s"] = round(time.time() - float(beat), 1) if beat else None
    return JsonResponse(body, status=200 if healthy else 503)
