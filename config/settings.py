"""Settings for the VM Import Portal, read from the environment.

Every variable has a default that runs with no setup (SQLite and a filesystem
broker under DATA_DIR); production sets DEBUG=0 and must then name a real
SECRET_KEY and ALLOWED_HOSTS. The README lists every variable.
"""

import math
import os
from pathlib import Path

import dj_database_url
import dj_email_url
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


def env_page_cost(name, default):
    """A positive number of PostgreSQL's cost units, or None (empty) for the server's own."""
    value = os.environ.get(name, default).strip()
    if not value:
        return None
    try:
        cost = float(value)
    except ValueError:
        cost = math.nan
    if not (math.isfinite(cost) and cost > 0):
        raise ImproperlyConfigured(
            f"{name} must be a positive number (1.1 for SSDs, 4 for spinning disks) "
            f"or empty for the server's own setting, not {value!r}"
        )
    return cost


def proxy_ssl_header(value):
    """SECURE_PROXY_SSL_HEADER from "Header" or "Header: value" (value https); "" for none."""
    if not value.strip():
        return None
    header, _, expected = value.partition(":")
    meta_name = "HTTP_" + header.strip().upper().replace("-", "_")
    return (meta_name, expected.strip() or "https")


DEBUG = env_bool("DEBUG", True)
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Only its owner may read a new one: it can hold the SQLite database (webhook
# secrets, sessions, password hashes), the broker's messages and the mails.
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "imports.errors.csrf_failure"  # JSON under /api/

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
    "notifications",
]

MIDDLEWARE = [
    # First: every line logged while serving a request carries its ID.
    "config.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a session or a database: text no database can
    # store (NUL, lone surrogates) is refused with a 400 here, which a
    # browser asking for a page gets as the portal's 400 page.
    "imports.inputs.RejectMalformedText",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, which refuses a Host outside ALLOWED_HOSTS:
    # load balancers probe a machine by its address.
    "imports.health.ProbesAnswerAnyHost",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.content_security.ContentSecurityPolicyMiddleware",
    # Every open import page polls its status: an unchanged poll is answered
    # here, with every header above and none of the work below, which has
    # nothing to do for an empty answer (imports/polling.py says why each).
    "imports.polling.UnchangedPollMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # An htmx request whose session ended: sign in as a whole page.
    "imports.error_pages.SignInAgainForHtmx",
    # A page's empty 405 (require_POST, GET /accounts/logout/) becomes the
    # portal's 405 page, inside the session and CSRF middleware.
    "imports.error_pages.MethodNotAllowedPages",
    # With DEBUG on (make run), a 404 is the portal's page, not Django's.
    "imports.error_pages.NotFoundPagesWithDebug",
    "imports.audit.AuditMiddleware",
    # A view's database or cache outage is a 503, DEBUG on or off.
    "imports.errors.DependencyDownMiddleware",
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
# A database that refuses costs an error at once; one that accepts and never
# answers costs DATABASE_CONNECT_TIMEOUT seconds, a query that hangs
# DATABASE_STATEMENT_TIMEOUT: then the person gets a 503, and the server
# keeps its workers.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 3)
DATABASE_STATEMENT_TIMEOUT = env_int("DATABASE_STATEMENT_TIMEOUT", 5)
# What PostgreSQL's planner takes a random page read to cost, against 1 for a
# sequential one. Its default, 4, prices a spinning disk; 1.1 is what its
# documentation suggests for solid-state storage, what servers run on now.
# With 4, a statement a connection prepared while a team had 100 imports
# beside other teams' kept a plan that sorts all of the team's imports for
# the history's first page once it had 100,000 (tests/test_database.py).
# Empty: the server's own setting.
DATABASE_RANDOM_PAGE_COST = env_page_cost("DATABASE_RANDOM_PAGE_COST", "1.1")
# A statement is prepared the second time one connection sends it: the hot
# ones (token, submit, transitions, polls) repeat thousands of times, and
# psycopg keeps the 100 last used per connection.
PREPARE_AFTER_USES = 2


def postgres_session_options():
    """libpq's connect timeout and keepalives, the server's statement timeout and page cost."""
    server_settings = [f"statement_timeout={DATABASE_STATEMENT_TIMEOUT * 1000}"]
    if DATABASE_RANDOM_PAGE_COST is not None:
        server_settings.append(f"random_page_cost={DATABASE_RANDOM_PAGE_COST}")
    return {
        "connect_timeout": DATABASE_CONNECT_TIMEOUT,
        "options": " ".join(f"-c {setting}" for setting in server_settings),
        # The statement timeout is the server's: a server or network that
        # went away answers nothing at all. TCP keepalives and a limit on
        # unacknowledged data end such a connection in about 30 s instead of
        # the kernel's 15 minutes, and the request with it.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,  # milliseconds
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
    # Persistent connections (conn_max_age above), not psycopg's pool
    # (OPTIONS["pool"], Django 5.1+): a sync gunicorn worker uses one
    # connection at a time and each of the worker's threads keeps its own,
    # so a pool per process would only add idle connections and a thread of
    # its own, and bench/submit_overhead.py measured no gain.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(postgres_session_options())
    # Prepared statements: the values travel apart from the SQL, and a
    # statement a connection sends a second time is planned once, not again
    # on every request. The token lookup (four tables) cost 0.9 ms, mostly
    # planning, and 0.3 ms prepared; an API POST's CPU in one process fell
    # by about 1 ms, and PostgreSQL's by the planning. A pooler in
    # transaction mode that does not track prepared statements (PgBouncer
    # before 1.21, or without max_prepared_statements) needs them off.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].update(
            server_side_binding=True, prepare_threshold=PREPARE_AFTER_USES
        )
    # Django's backend, batching bulk writes and cascades under the 65,535
    # values a statement bound on the server can take, and health-checking a
    # connection at most once a second (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions are read on every polled partial; caching them keeps that poll to
# the user and the import. The file cache is shared by all local processes;
# production points CACHE_URL at Redis.
CACHE_URL = env("CACHE_URL")
# Seconds a cache call may take: a Redis that is gone costs this, once.
CACHE_TIMEOUT = env_int("CACHE_TIMEOUT", 1)
if CACHE_URL:
    CACHES = {
        "default": {
            # Django's, with one redis.Redis per pool instead of one per call.
            "BACKEND": "imports.cache.ReusingRedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": CACHE_TIMEOUT, "socket_timeout": CACHE_TIMEOUT},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
# cached_db, except that a cache outage falls back to the database instead
# of failing (imports/sessions.py).
SESSION_ENGINE = "imports.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60)

# Bounds on what one request may make the server read (hostile input gets a
# 400; a body too large, 413 from the API): the largest valid import, 50 tags
# with \u-escaped text, is far below.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 200)
DATA_UPLOAD_MAX_NUMBER_FILES = 1  # the portal takes no file uploads
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# How long an invitation's set-password link works: Django's 3 days by default.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 60 * 60)
if PASSWORD_RESET_TIMEOUT < 60:
    raise ImproperlyConfigured(
        f"PASSWORD_RESET_TIMEOUT must be 60 seconds or more, not {PASSWORD_RESET_TIMEOUT}: "
        "an invitation's link would die before its e-mail is read"
    )
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "imports:history"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["config.formats"]  # the admin writes times as the pages do
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
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
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
LOGGING_CONFIG = "config.logs.configure"  # Python's warnings become log lines too

# Celery: the filesystem transport needs no server; production uses Redis.
BROKER_DIR = DATA_DIR / "broker"
# Seconds for one Redis broker connect or command. A publish from a web
# request waits on it: a Redis that hangs (its process stopped, its TCP still
# accepted) costs a submit about this long, then none for BROKER_PUBLISH_PAUSE
# (tasks.send_to_worker). The worker's BRPOP is not bound by it: kombu checks
# that connection itself (health_check_interval).
BROKER_TIMEOUT = env_int("BROKER_TIMEOUT", 1)
# Seconds a process leaves the broker alone after a publish failed; the
# imports recorded meanwhile are sent by the sweeper (IMPORT_UNSENT_AFTER).
BROKER_PUBLISH_PAUSE = env_int("BROKER_PUBLISH_PAUSE", 10)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    # kombu's, except that a message appears in the queue whole (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The worker looks for new messages this often (kombu's default is
        # 1 s, which a person waiting for the image ARN would feel).
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's, reusing its Redis clients (config/broker.py). Not for
        # rediss://: kombu chooses its TLS defaults by the transport's name.
        CELERY_BROKER_TRANSPORT = "config.broker:RedisTransport"
    # Every call on the broker has a deadline: a Redis that stops answering
    # costs a second, never a stuck web worker or consumer. A timeout is not
    # tried again by redis-py (retry_on_timeout): on a Redis that hangs, its
    # retry, on the connection's health-check PING as well as on the command,
    # made one publish wait four timeouts (20 s with 5 s ones), and kombu's
    # publish retries (below) multiplied that. A reset connection (a Redis
    # restarted) still fails at once, and is retried by kombu.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": BROKER_TIMEOUT,
        "socket_connect_timeout": BROKER_TIMEOUT,
        "socket_keepalive": True,
        "retry_on_timeout": False,
        "health_check_interval": 10,
    }


def give_up_on_a_timeout(error, interval):
    """kombu's errback between a publish's tries, and its reconnection's: a timeout ends them.

    A broker that did not answer in time hangs, and each further try (a
    reconnection, then the publish) would wait as long again. A connection
    the broker closed or reset (a restart) fails at once, and is tried again.
    """
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(error, TimeoutError | RedisTimeoutError):
        raise error


# Publishing an import gives up quickly when the broker is down: the import
# is already recorded and the sweeper sends it later. The retries are for a
# connection the broker closed (a restart): they reconnect at once.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "errback": give_up_on_a_timeout,
}
# kombu's deadline for (re)connecting before a publish, all its tries
# together, and RabbitMQ's connect and handshake: each of a publish's tries
# reconnects within it, so a broker that hangs costs a submit about this
# long. Workers reconnect for ever regardless (below).
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT
# A worker keeps trying to reach the broker for as long as it is down (the
# default gives up, and exits, after 100 tries).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Celery's Django fix-up closes the database connection around every task
# unless this is set, so each task paid for a new connection. Kept open here,
# and checked around each task the way Django checks it around each request
# (config/celery.py): CONN_MAX_AGE and a broken connection still close it.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
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
# A `queued` import whose message was lost is sent again after this long
# (retries wait up to IMPORT_RETRY_MAX_DELAY in `queued` on purpose), and
# one never attempted after IMPORT_UNSENT_AFTER.
IMPORT_STUCK_AFTER = env_int("IMPORT_STUCK_AFTER", 600)
IMPORT_UNSENT_AFTER = env_int("IMPORT_UNSENT_AFTER", 60)
IMPORT_SWEEP_INTERVAL = env_int("IMPORT_SWEEP_INTERVAL", 15)
# A disk import's tagging with no outcome this long after it became
# available lost its message, and is sent again (once).
IMPORT_TAGGING_LOST_AFTER = env_int("IMPORT_TAGGING_LOST_AFTER", 3600)
# The refresher follows young imports every IMPORT_REFRESH_INTERVAL seconds,
# and those older than IMPORT_REFRESH_SLOW_AFTER every IMPORT_REFRESH_SLOW_INTERVAL.
IMPORT_REFRESH_INTERVAL = env_int("IMPORT_REFRESH_INTERVAL", 10)
IMPORT_REFRESH_SLOW_AFTER = env_int("IMPORT_REFRESH_SLOW_AFTER", 300)
IMPORT_REFRESH_SLOW_INTERVAL = env_int("IMPORT_REFRESH_SLOW_INTERVAL", 60)
IMPORT_REFRESH_CONCURRENCY = env_int("IMPORT_REFRESH_CONCURRENCY", 8)
IMPORT_REFRESH_MAX_PAUSE = env_int("IMPORT_REFRESH_MAX_PAUSE", 300)
# A cycle's lock expires after this, should its worker die mid-cycle.
IMPORT_REFRESH_LOCK_SECONDS = env_int("IMPORT_REFRESH_LOCK_SECONDS", 300)
# An import whose image Image Builder no longer has fails after this
# many refresh cycles in a row, spanning at least this many seconds.
IMPORT_MISSING_CYCLES = env_int("IMPORT_MISSING_CYCLES", 3)
IMPORT_MISSING_AFTER = env_int("IMPORT_MISSING_AFTER", 300)
AWS_CONNECT_TIMEOUT = env_int("AWS_CONNECT_TIMEOUT", 5)
AWS_READ_TIMEOUT = env_int("AWS_READ_TIMEOUT", 30)
AWS_REGION = env("AWS_REGION") or env("AWS_DEFAULT_REGION")
# The Team page's Check setup makes several AWS calls while the person waits,
# each of which may wait out the timeouts above (35 s): all of them together
# get this long, well inside gunicorn's GUNICORN_TIMEOUT (45 s), so that an
# AWS that hangs costs the checks not yet run, never the whole page (a 502).
CHECK_SETUP_SECONDS = env_int("CHECK_SETUP_SECONDS", 25)
# A process shares one client per AWS service and target among its threads:
# the worker's (CELERY_CONCURRENCY, at most 16 by default) and the
# refresher's. botocore keeps 10 connections by default and, past that,
# opens and drops one per call with a warning.
AWS_MAX_POOL_CONNECTIONS = env_int("CELERY_CONCURRENCY", 16) + IMPORT_REFRESH_CONCURRENCY
# A claimed import is the worker's until its lease runs out: just past the
# longest an attempt can take (an STS AssumeRole, then ImportVmImage, each
# bounded by the AWS timeouts). The sweeper takes back only expired leases,
# so a slow call is never sent twice, and a killed worker's import is sent
# again within a lease and a sweep (about 95 s with the defaults).
IMPORT_LEASE_SECONDS = env_int(
    "IMPORT_LEASE_SECONDS", 2 * (AWS_CONNECT_TIMEOUT + AWS_READ_TIMEOUT) + 10
)
VM_IMPORT_TASKS_CACHE_SECONDS = env_int("VM_IMPORT_TASKS_CACHE_SECONDS", 30)
# An upload not completed this long after its last step is given up.
IMPORT_UPLOAD_ABANDONED_AFTER = env_int("IMPORT_UPLOAD_ABANDONED_AFTER", 7 * 24 * 3600)
API_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 25

# Notifications: e-mail from EMAIL_URL (smtp://user:pass@host:587/?tls=True),
# or Django's EMAIL_HOST/EMAIL_PORT/...; with neither, mails are written as
# files under DATA_DIR/mail.
EMAIL_URL = env("EMAIL_URL")
if EMAIL_URL:
    globals().update(dj_email_url.parse(EMAIL_URL))
elif env("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env("EMAIL_HOST")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "VM Import Portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in e-mails and chat messages point here.
PORTAL_URL = env("PORTAL_URL", f"http://127.0.0.1:{env('PORT', '8000')}")
# Lifts the webhook rules on https and on private addresses: for local use
# only (`make run` sets it); never in production.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT = env_int("WEBHOOK_TIMEOUT", 10)
# A CA bundle (PEM file) to verify webhook certificates with; the system's CAs by default.
WEBHOOK_CA_BUNDLE = env("WEBHOOK_CA_BUNDLE")
WEBHOOK_PAUSE_AFTER = env_int("WEBHOOK_PAUSE_AFTER", 5)
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 8)
NOTIFY_RETRY_BASE_DELAY = env_int("NOTIFY_RETRY_BASE_DELAY", 5)
NOTIFY_RETRY_MAX_DELAY = env_int("NOTIFY_RETRY_MAX_DELAY", 600)
NOTIFY_LEASE_SECONDS = env_int("NOTIFY_LEASE_SECONDS", 120)
NOTIFY_STUCK_AFTER = env_int("NOTIFY_STUCK_AFTER", 300)
NOTIFY_SWEEP_INTERVAL = env_int("NOTIFY_SWEEP_INTERVAL", 60)

CELERY_BEAT_SCHEDULE = {
    "requeue-lost-deliveries": {
        "task": "notifications.tasks.requeue_lost_deliveries",
        "schedule": NOTIFY_SWEEP_INTERVAL,
    },
    "refresh-imports": {
        "task": "imports.tasks.refresh_imports",
        "schedule": IMPORT_REFRESH_INTERVAL,
    },
    "requeue-stuck-imports": {
        "task": "imports.tasks.requeue_stuck_imports",
        "schedule": IMPORT_SWEEP_INTERVAL,
    },
    "expire-abandoned-uploads": {
        "task": "imports.tasks.expire_abandoned_uploads",
        "schedule": 3600,
    },
    "requeue-lost-tagging": {
        "task": "imports.tasks.requeue_lost_tagging",
        "schedule": 300,
    },
}

# --- Production serving: metrics, beat, proxies -------------------
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
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
# Every beat takes a lock first (config/beat.py): a second beat, started by
# mistake or on another machine, waits and sends nothing.
CELERY_BEAT_SCHEDULER = "config.beat:SingleBeatScheduler"
