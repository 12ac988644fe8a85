"""Django settings, read from the environment (12-factor) with working local defaults."""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    check_redis_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_proxy_ssl_header,
    env_rate,
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
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # intcomma for the admin's figures ("12,345 delivered").
    "django.contrib.humanize",
    "rest_framework",
    # API tokens, stored as digests with an expiry (accounts/tokens.py); before accounts,
    # whose admin replaces knox's.
    "knox",
    "drf_spectacular",
    # Swagger UI and Redoc as static files: /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "accounts",
    "numbers",
    "templates_sync",
    "campaigns",
    "messaging",
    "webhooks",
    "conversations",
    "automation",
    "notifications",
    # The admin last, so the product's templates (admin/base_site.html in accounts,
    # the campaign pages...) override Django's own; config.adminsite.AdminSite is
    # the product's site (dashboard, navigation by role).
    "config.adminsite.AdminConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # The input policy (config.inputs) for query strings, and JSON 404s under /api/.
    "config.api.ApiNotFoundMiddleware",
    "config.api.InputPolicyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx for the admin's live fragments.
    "django_htmx.middleware.HtmxMiddleware",
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

# The login lockout (accounts/lockout.py) refuses a locked attempt before any password
# is checked; it authenticates no one itself.
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins allowed per username and address, and per address alone, within
# the window; reaching either locks those attempts for one whole window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env_int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 30, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# Proxies in front of the app that append to X-Forwarded-For: the client address
# is the entry this many from the right (0: REMOTE_ADDR, the header is ignored).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 720, minimum=1)
# Writes (POST, PUT, PATCH, DELETE) per user, or per address when anonymous.
API_WRITE_RATE = env_rate("API_WRITE_RATE", "600/min")

# Shared by every web worker (DRF's throttle counts live here); a prefix of its
# own keeps it apart from the rate store's and the lanes' keys.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }
}

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
# Vendored front-end assets (config/static/vendor/README.md) and the admin's stylesheet.
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
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

# --- Request size limits ------------------------------------------------------
# Form fields and bodies read through request.body (Django's default, made explicit).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1024)
# An uploaded file bigger than this is streamed to a temporary file (in
# FILE_UPLOAD_TEMP_DIR, default the system's), never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=0)
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR") or None
FILE_UPLOAD_HANDLERS = [
    # First: refuses a file over CAMPAIGN_UPLOAD_MAX_BYTES before the others keep it.
    "campaigns.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# The largest contact file one upload may hold (API: 413 naming "file"; admin: 400).
CAMPAIGN_UPLOAD_MAX_BYTES = env_int("CAMPAIGN_UPLOAD_MAX_BYTES", 200_000_000, minimum=1)
# A CSV staged by the new-campaign wizard and never imported is deleted after this.
WIZARD_UPLOAD_TTL_HOURS = env_int("WIZARD_UPLOAD_TTL_HOURS", 24, minimum=1)
# The largest webhook body accepted (413 above it): Meta documents payloads of up to 3 MB,
# and a refused real one would be retried for days without ever succeeding.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 3 * 1024 * 1024, minimum=1024)
# Webhook events, refusal samples and counters older than this are deleted daily
# (webhooks/retention.py); status updates and inbound messages are kept.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30, minimum=1)

# --- HTTPS and security headers (Django's deployment checklist) ----------------
# Production is HTTPS (Meta only calls https:// webhooks, the admin takes passwords):
# http is redirected, and HSTS is sent once HTTPS is declared this way.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# The health check is probed over plain http from inside the host (docker-compose.yml).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 31_536_000 if SECURE_SSL_REDIRECT else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
X_FRAME_OPTIONS = env_choice("X_FRAME_OPTIONS", "DENY", {"DENY", "SAMEORIGIN"})
SECURE_REFERRER_POLICY = env_str("SECURE_REFERRER_POLICY", "same-origin")
# Only behind a TLS-terminating proxy that sets this header itself (e.g.
# X-Forwarded-Proto: https); trusting it otherwise lets any client claim HTTPS.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a promise about the registrable domain and all its subdomains,
    # made by submitting it to the browsers' list; a self-hosted instance (usually on
    # a subdomain, which the list does not take) cannot make it by default. Operators
    # who own the whole domain set SECURE_HSTS_PRELOAD=1 and submit it themselves.
    "security.W021",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.WriteRateThrottle"],
    # Anonymous throttles key on the client address, seen through the trusted proxies.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    # DRF's parsers, refusing bodies with NUL, unpaired surrogates or over-long strings.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.CheckedJSONParser",
        "config.parsers.CheckedFormParser",
        "config.parsers.CheckedMultiPartParser",
    ],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_FILTER_BACKENDS": [],
}

REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",  # api.md: Authorization: Token <token>
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp campaign platform API",
    "DESCRIPTION": "Numbers, templates, campaigns, sending state and conversations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Separate request and response components: write-only and read-only fields each
    # appear only where they apply, and required strings say they may not be blank.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: /api/docs/
    # works offline and loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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
# Deliverability guards (docs/deliverability.md).
# A number Meta spam-rate limited (131048) may be resumed by a person after this long.
SPAM_RATE_COOLDOWN_SECONDS = env_int("SPAM_RATE_COOLDOWN_SECONDS", 3600, minimum=0)
# A phone Meta refused with 131049 gets no marketing template for this long.
RECIPIENT_BACKOFF_SECONDS = env_int("RECIPIENT_BACKOFF_SECONDS", 86400, minimum=1)
# The inbox's replies: Meta's pair rate (one message per REPLY_PAIR_SECONDS to one user,
# with a burst of REPLY_PAIR_BURST) and the retries of a certain throttle refusal.
REPLY_PAIR_SECONDS = env_float("REPLY_PAIR_SECONDS", 6.0, minimum=0)
REPLY_PAIR_BURST = env_int("REPLY_PAIR_BURST", 10, minimum=1)
REPLY_MAX_RETRIES = env_int("REPLY_MAX_RETRIES", 5, minimum=0)
# This many identical failures in a row on a number (unknown or account-wide codes)
# pause its campaigns.
BREAKER_CONSECUTIVE_FAILURES = env_int("BREAKER_CONSECUTIVE_FAILURES", 10, minimum=2)
# Failed status webhooks of a number over a window: at least MIN_STATUSES final
# statuses and a failed share of RATE or more pause its campaigns.
BREAKER_FAILURE_RATE = env_float("BREAKER_FAILURE_RATE", 0.5, minimum=0.01)
BREAKER_FAILURE_WINDOW_SECONDS = env_int("BREAKER_FAILURE_WINDOW_SECONDS", 600, minimum=60)
BREAKER_FAILURE_MIN_STATUSES = env_int("BREAKER_FAILURE_MIN_STATUSES", 50, minimum=1)
# A claim whose lease is gone and that is older than this is a dead worker's.
SWEEP_GRACE_SECONDS = env_float("SWEEP_GRACE_SECONDS", 30.0, minimum=1)
DEFAULT_PHONE_REGION = (env_str("DEFAULT_PHONE_REGION", "IN") or "IN").upper()
# A scheduled campaign this long past its time without starting fails instead (expired).
CAMPAIGN_SCHEDULE_EXPIRY_HOURS = env_float("CAMPAIGN_SCHEDULE_EXPIRY_HOURS", 24.0, minimum=0.01)

# --- E-mail and notifications (README "E-mail and notifications") -----------
# The console backend prints mail to the worker's output (the demo); set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST for real mail.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "wacampaigns@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The address people open the admin at: links in notifications are built on it.
NOTIFY_BASE_URL = (env_str("NOTIFY_BASE_URL", "http://localhost:8000") or "").rstrip("/")
NOTIFY_CONNECT_TIMEOUT = env_float("NOTIFY_CONNECT_TIMEOUT", 5.0, minimum=0.1)
NOTIFY_READ_TIMEOUT = env_float("NOTIFY_READ_TIMEOUT", 10.0, minimum=0.1)
NOTIFY_RETRY_BASE_SECONDS = env_float("NOTIFY_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
NOTIFY_RETRY_MAX_SECONDS = env_float("NOTIFY_RETRY_MAX_SECONDS", 3600.0, minimum=0.01)
NOTIFY_RETRY_FOR_HOURS = env_float("NOTIFY_RETRY_FOR_HOURS", 24.0, minimum=0.001)
# Plain-http webhook and non-Slack "Slack" URLs: for local receivers (and tests) only.
NOTIFY_ALLOW_HTTP = env_bool("NOTIFY_ALLOW_HTTP", DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
