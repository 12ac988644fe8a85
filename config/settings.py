"""Django settings, read from the environment (12-factor) with working local defaults."""

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    check_redis_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=True)


def _dev_secret(name: str, make) -> str:
    """A secret generated once per checkout and kept in var/, for local runs only.

    Web, worker and beat must agree on it (tokens encrypted by one are read by
    the others), so it cannot be a fresh random value per process.
    """
    path = BASE_DIR / "var" / "dev-secrets.json"
    path.parent.mkdir(exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = make()
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored[name]


SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _dev_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))

# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be set when DEBUG is off "
            '(generate one: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )
    FIELD_ENCRYPTION_KEY = _dev_secret(
        "FIELD_ENCRYPTION_KEY", lambda: Fernet.generate_key().decode()
    )
for _key in FIELD_ENCRYPTION_KEY.split(","):
    try:
        Fernet(_key.strip())
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each)"
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "accounts",
    "numbers",
    "templates_sync",
    "campaigns",
    "messaging",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wacampaigns")
DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# pytest (8.2+) sets PYTEST_VERSION: tests get their own Redis database, which
# they flush, so a developer's queues and rate state are never touched.
TESTING = bool(os.environ.get("PYTEST_VERSION"))
if TESTING:
    REDIS_URL = check_redis_url(
        "TEST_REDIS_URL", env_str("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    INSTALLED_APPS.append("tests.testapp")
    # Live-server request threads must not keep connections open past their
    # request, or the test database cannot be dropped at the end of the run.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    REDIS_URL = check_redis_url("REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / "var" / "media"

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp campaign platform API",
    "DESCRIPTION": "Numbers, templates, campaigns, sending state and conversations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL if TESTING else env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None  # results are recorded in PostgreSQL by the tasks themselves
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 150, minimum=1)
# Longer than any task's hard limit, so an unacked task is redelivered only
# after its worker is surely gone.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False

# --- WhatsApp / Graph API ---------------------------------------------------
WHATSAPP_GRAPH_URL = env_str("WHATSAPP_GRAPH_URL", "https://graph.facebook.com").rstrip("/")
WHATSAPP_GRAPH_VERSION = env_str("WHATSAPP_GRAPH_VERSION", "v23.0")
WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET", "")
WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN", "")
GRAPH_CONNECT_TIMEOUT = env_float("GRAPH_CONNECT_TIMEOUT", 5.0, minimum=0.1)
GRAPH_READ_TIMEOUT = env_float("GRAPH_READ_TIMEOUT", 20.0, minimum=0.1)
GRAPH_POOL_SIZE = env_int("GRAPH_POOL_SIZE", 32, minimum=1)
# The shared adaptive send rate (msg/s) and its controller (engine.md, "Rate control").
SEND_RATE_START = env_float("SEND_RATE_START", 60.0, minimum=1)
SEND_RATE_MIN = env_float("SEND_RATE_MIN", 10.0, minimum=0.1)
SEND_RATE_MAX = env_float("SEND_RATE_MAX", 1000.0, minimum=1)
SEND_RATE_RAISE_FACTOR = 1.10
SEND_RATE_RAISE_AFTER_SECONDS = env_float("SEND_RATE_RAISE_AFTER_SECONDS", 300.0, minimum=1)
SEND_RATE_MAX_ERROR_SHARE = 0.01
SEND_RATE_CUT_FACTOR = 0.80
SEND_RATE_THROTTLE_STREAK = 3
SEND_RATE_COOLDOWN_SECONDS = env_float("SEND_RATE_COOLDOWN_SECONDS", 60.0, minimum=0)
# After a cut, throttles of sends already paced at the old rate keep arriving
# for about one batch; they must not cut again.
SEND_RATE_CUT_HOLD_SECONDS = env_float("SEND_RATE_CUT_HOLD_SECONDS", 2.0, minimum=0)
# Lanes: messages claimed per link, in-flight window per number, retry waits.
LANE_BATCH_SIZE = env_int("LANE_BATCH_SIZE", 100, minimum=1)
LANE_WINDOW = env_int("LANE_WINDOW", 1, minimum=1)
LANE_LEASE_SECONDS = env_float("LANE_LEASE_SECONDS", 30.0, minimum=1)
LANE_FLUSH_EVERY = env_int("LANE_FLUSH_EVERY", 50, minimum=1)
LANE_FLUSH_SECONDS = env_float("LANE_FLUSH_SECONDS", 0.5, minimum=0.01)
SEND_RETRY_DELAYS = [5, 20, 45]
PAIR_RATE_RETRY_SECONDS = 6
# A claim whose lease is gone and that is older than this is a dead worker's.
SWEEP_GRACE_SECONDS = env_float("SWEEP_GRACE_SECONDS", 30.0, minimum=1)
DEFAULT_PHONE_REGION = (env_str("DEFAULT_PHONE_REGION", "IN") or "IN").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
