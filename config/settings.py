"""Settings for the VM Import Portal, read from the environment.

Every variable has a default that runs with no setup (SQLite and a filesystem
broker under DATA_DIR); production sets DEBUG=0 and must then name a real
SECRET_KEY and ALLOWED_HOSTS. The README lists every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    truthy, falsy = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
    if value.lower() in truthy:
        return True
    if value.lower() in falsy:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, not {value!r}")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def proxy_ssl_header(value):
    """SECURE_PROXY_SSL_HEADER from "Header" or "Header: value" (value https); "" for none."""
    if not value.strip():
        return None
    header, _, expected = value.partition(":")
    meta_name = "HTTP_" + header.strip().upper().replace("-", "_")
    return (meta_name, expected.strip() or "https")


DEBUG = env_bool("DEBUG", True)
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "imports",
]

MIDDLEWARE = [
    # First: every line logged while serving a request carries its ID.
    "config.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "imports.audit.AuditMiddleware",
    # Last, as django-axes asks: it answers locked-out sign-ins.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "imports.context_processors.portal",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# SQLite in WAL mode is the embedded default: readers never wait for the
# worker's writes, and IMMEDIATE transactions take the write lock up front so
# two writers queue on the busy timeout instead of failing with "locked".
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not the shared in-memory database, so that tests see SQLite's
    # real locking (shared-cache memory databases fail instead of waiting)
    # and a worker process can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-portal.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions are read on every polled partial; caching them keeps that poll to
# the user and the import. The file cache is shared by all local processes;
# production points CACHE_URL at Redis.
CACHE_URL = env("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "imports:history"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(DATA_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing root
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"))
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_HTTPONLY = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
X_FRAME_OPTIONS = "DENY"

# How many proxies of ours stand in front of the portal: the client address is
# read that many hops from the right of X-Forwarded-For (0: REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Sign-in attempts: locked for a while after too many failures for the same
# username from the same address.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "imports.audit.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# A strict Content-Security-Policy: our own scripts, styles and images only;
# no inline script, no eval (htmx's allowEval is off in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Logs: JSON lines with LOG_FORMAT=json (make serve's default), plain text
# otherwise; every line carries the request ID (config/logs.py).
LOG_FORMAT = env("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = logging_config(LOG_FORMAT, env("LOG_LEVEL", "INFO"))

# Celery: the filesystem transport needs no server; production uses Redis.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
# Django's LOGGING formats the worker's lines too (JSON, with the request ID).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The portal's own knobs (seconds unless said otherwise).
IMPORT_MAX_ATTEMPTS = env_int("IMPORT_MAX_ATTEMPTS", 8)
IMPORT_RETRY_BASE_DELAY = env_int("IMPORT_RETRY_BASE_DELAY", 2)
IMPORT_RETRY_MAX_DELAY = env_int("IMPORT_RETRY_MAX_DELAY", 300)
IMPORT_STUCK_AFTER = env_int("IMPORT_STUCK_AFTER", 600)
IMPORT_SWEEP_INTERVAL = env_int("IMPORT_SWEEP_INTERVAL", 60)
# The refresher follows young imports every IMPORT_REFRESH_INTERVAL seconds,
# and those older than IMPORT_REFRESH_SLOW_AFTER every IMPORT_REFRESH_SLOW_INTERVAL.
IMPORT_REFRESH_INTERVAL = env_int("IMPORT_REFRESH_INTERVAL", 10)
IMPORT_REFRESH_SLOW_AFTER = env_int("IMPORT_REFRESH_SLOW_AFTER", 300)
IMPORT_REFRESH_SLOW_INTERVAL = env_int("IMPORT_REFRESH_SLOW_INTERVAL", 60)
IMPORT_REFRESH_CONCURRENCY = env_int("IMPORT_REFRESH_CONCURRENCY", 8)
IMPORT_REFRESH_MAX_PAUSE = env_int("IMPORT_REFRESH_MAX_PAUSE", 300)
# A cycle's lock expires after this, should its worker die mid-cycle.
IMPORT_REFRESH_LOCK_SECONDS = env_int("IMPORT_REFRESH_LOCK_SECONDS", 300)
AWS_CONNECT_TIMEOUT = env_int("AWS_CONNECT_TIMEOUT", 5)
AWS_READ_TIMEOUT = env_int("AWS_READ_TIMEOUT", 30)
AWS_REGION = env("AWS_REGION") or env("AWS_DEFAULT_REGION")
VM_IMPORT_TASKS_CACHE_SECONDS = env_int("VM_IMPORT_TASKS_CACHE_SECONDS", 30)
API_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 25

CELERY_BEAT_SCHEDULE = {
    "refresh-imports": {
        "task": "imports.tasks.refresh_imports",
        "schedule": IMPORT_REFRESH_INTERVAL,
    },
    "requeue-stuck-imports": {
        "task": "imports.tasks.requeue_stuck_imports",
        "schedule": IMPORT_SWEEP_INTERVAL,
    },
}

# --- Production serving: metrics, beat, proxies (issue 12) -------------------
# /metrics answers only a bearer of METRICS_TOKEN, and 404 when it is unset.
METRICS_TOKEN = env("METRICS_TOKEN")
# prometheus_client's multiprocess mode: each process (gunicorn and Celery
# workers, beat) writes its counters here and /metrics adds them up. It must
# be in the environment before prometheus_client is first imported, which
# settings always precede; `make run` and `make serve` empty it at start.
PROMETHEUS_MULTIPROC_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "prometheus"))
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# A worker machine (no web process) serves its counters on this port.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
if not DEBUG:
    # Prometheus scrapes over the private network, not through the TLS proxy.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# Every beat takes a lock first (config/beat.py): a second beat, started by
# mistake or on another machine, waits and sends nothing.
CELERY_BEAT_SCHEDULER = "config.beat:SingleBeatScheduler"
