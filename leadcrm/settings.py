"""LeadCRM settings, configured only by environment variables.

The defaults give the zero-setup laptop mode of `make run`: SQLite, Celery
running tasks eagerly in-process, DEBUG on. Production sets DJANGO_DEBUG=0,
a real DJANGO_SECRET_KEY, DATABASE_URL and CELERY_BROKER_URL.
"""

from datetime import date, time
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def _time(value: str) -> time:
    """ "HH:MM" from the environment; a bad value stops startup."""
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Not a time of day: {value!r}") from exc


env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "leads",
    "scoring",
    "campaigns",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "leadcrm.urls"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

WSGI_APPLICATION = "leadcrm.wsgi.application"
ASGI_APPLICATION = "leadcrm.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
    )
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("vi", _("Vietnamese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["leadcrm.formats"]
TIME_ZONE = env.str("LEADCRM_TIME_ZONE", default="Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "leadcrm.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}

# Celery. Without a broker the tasks run eagerly in-process, so `make run`
# works with nothing but Python.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL
)
# Eager tasks never reach a broker; naming the in-memory one keeps kombu from
# guessing at a local AMQP server, and naming a host keeps it from warning
# that none was given each time it connects.
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# A capture request must answer quickly even when the broker is down, so
# publishing gives up fast; the sweeper re-enqueues what was not published.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": 1,
    "socket_connect_timeout": 1,
    "max_retries": 0,
    "visibility_timeout": 600,
}
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-submissions": {
        "task": "campaigns.tasks.sweep_pending_submissions",
        "schedule": env.float("LEADCRM_SWEEP_SECONDS", default=60.0),
    },
    "nightly-rescore": {
        "task": "scoring.tasks.nightly_rescore",
        "schedule": crontab(hour=2, minute=0),
    },
    "mark-event-no-shows": {
        "task": "campaigns.tasks.mark_event_no_shows",
        "schedule": crontab(minute="*/15"),
    },
    "sweep-pending-inbound": {
        "task": "campaigns.tasks.sweep_pending_inbound",
        "schedule": env.float("LEADCRM_SWEEP_SECONDS", default=60.0),
    },
    "sweep-email-campaigns": {
        "task": "campaigns.tasks.sweep_email_campaigns",
        "schedule": env.float("LEADCRM_SWEEP_SECONDS", default=60.0),
    },
    "handoff-sweep": {
        "task": "leads.tasks.handoff_sweep",
        "schedule": env.float("LEADCRM_HANDOFF_SWEEP_SECONDS", default=300.0),
    },
    "sweep-rescore-jobs": {
        "task": "scoring.tasks.sweep_rescore_jobs",
        "schedule": 300.0,
    },
    "sweep-stale-scores": {
        "task": "scoring.tasks.sweep_stale_scores",
        "schedule": env.float("LEADCRM_SWEEP_SECONDS", default=60.0),
    },
    "refresh-dashboard-summary": {
        "task": "dashboard.tasks.refresh_summary",
        "schedule": env.float("LEADCRM_DASHBOARD_REFRESH_SECONDS", default=60.0),
    },
    # After the nightly rescore; also drops the counts of deleted leads.
    "rebuild-dashboard-summary": {
        "task": "dashboard.tasks.rebuild_summary",
        "schedule": crontab(hour=3, minute=30),
    },
    "send-task-reminders": {
        "task": "leads.tasks.send_task_reminders",
        "schedule": 60.0,
    },
}

LEADCRM = {
    # Where `make run` and the sample tests find the shared lead export.
    "SAMPLE_DATA_DIR": env.path(
        "LEADCRM_SAMPLE_DATA_DIR", default=BASE_DIR.parent / "shared" / "data"
    ),
    "PHONE_DEFAULT_REGION": env.str("LEADCRM_PHONE_REGION", default="VN"),
    "CAPTURE_MAX_BYTES": env.int("LEADCRM_CAPTURE_MAX_BYTES", default=64 * 1024),
    # A submission still pending after this many seconds is re-enqueued.
    "SWEEP_AFTER_SECONDS": env.int("LEADCRM_SWEEP_AFTER_SECONDS", default=30),
    # Capture rate limits, per minute. Without a Redis URL (the laptop mode)
    # there is no limit; with Redis down the limiter lets posts through.
    "RATE_LIMIT_REDIS_URL": env.str(
        "LEADCRM_RATE_LIMIT_REDIS_URL",
        default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "",
    ),
    "RATE_LIMIT_PER_IP": env.int("LEADCRM_RATE_LIMIT_PER_IP", default=20),
    "RATE_LIMIT_PER_FORM": env.int("LEADCRM_RATE_LIMIT_PER_FORM", default=600),
    # Reverse proxies in front of the app that append to X-Forwarded-For;
    # 0 trusts only the connection's own address.
    "PROXY_COUNT": env.int("LEADCRM_PROXY_COUNT", default=0),
    # Where links in emails (double opt-in) point: this site as the public
    # sees it.
    "PUBLIC_URL": env.str("LEADCRM_PUBLIC_URL", default="http://127.0.0.1:8000"),
    "CONSENT_CONFIRM_DAYS": env.int("LEADCRM_CONSENT_CONFIRM_DAYS", default=7),
    # Hours after an event ends before its absent registrants become
    # no-shows, leaving time for the attendance import.
    "EVENT_NO_SHOW_AFTER_HOURS": env.int(
        "LEADCRM_EVENT_NO_SHOW_AFTER_HOURS", default=12
    ),
    # Largest signed delivery a lead platform may post to /in/<key>/.
    "INBOUND_MAX_BYTES": env.int("LEADCRM_INBOUND_MAX_BYTES", default=64 * 1024),
    # Email campaigns: messages per batch, and the most sent per second by
    # one worker (0: no limit; SMTP providers set their own).
    "EMAIL_BATCH_SIZE": env.int("LEADCRM_EMAIL_BATCH_SIZE", default=200),
    "EMAIL_RATE_PER_SECOND": env.float("LEADCRM_EMAIL_RATE_PER_SECOND", default=20.0),
    # A batch claimed this long ago by a worker that vanished is given up.
    "EMAIL_CLAIM_TIMEOUT_SECONDS": env.int(
        "LEADCRM_EMAIL_CLAIM_TIMEOUT_SECONDS", default=600
    ),
    # Lead ids in one task of a bulk rescore: a million leads make twenty
    # tasks, which the workers share.
    "RESCORE_SLICE_SPAN": env.int("LEADCRM_RESCORE_SLICE_SPAN", default=10_000),
    "RESCORE_PARALLEL": env.int("LEADCRM_RESCORE_PARALLEL", default=2),
    # Bearer token of the bounce endpoint; blank turns the endpoint off.
    "BOUNCE_TOKEN": env.str("LEADCRM_BOUNCE_TOKEN", default=""),
    # The sales hand-off SLA, counted in business hours (leads/sla.py).
    "SLA": {
        "TIME_ZONE": env.str("LEADCRM_SLA_TIME_ZONE", default="Asia/Ho_Chi_Minh"),
        # Monday is 0; Monday to Friday by default.
        "WORKDAYS": env.list("LEADCRM_SLA_WORKDAYS", cast=int, default=[0, 1, 2, 3, 4]),
        "DAY_START": _time(env.str("LEADCRM_SLA_DAY_START", default="08:00")),
        "DAY_END": _time(env.str("LEADCRM_SLA_DAY_END", default="17:30")),
        # ISO dates, e.g. Tết and national holidays of the year.
        "HOLIDAYS": [
            date.fromisoformat(day)
            for day in env.list("LEADCRM_SLA_HOLIDAYS", default=[])
        ],
        "ACCEPT_HOURS": env.float("LEADCRM_SLA_ACCEPT_HOURS", default=4.0),
        "CONTACT_HOURS": env.float("LEADCRM_SLA_CONTACT_HOURS", default=8.0),
        # Whether a lead not accepted in time moves to the next rep.
        "REASSIGN_ON_BREACH": env.bool("LEADCRM_SLA_REASSIGN_ON_BREACH", default=False),
    },
}

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_FILE_PATH = env.path("DJANGO_EMAIL_FILE_PATH", default=BASE_DIR / "sent-emails")
# SMTP in production, e.g. EMAIL_URL=smtp+tls://user:password@host:587
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str(
    "DJANGO_DEFAULT_FROM_EMAIL", default="LeadCRM <no-reply@localhost>"
)

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "forbidden_without_traceback": {
            "()": "leadcrm.logfilters.ForbiddenWithoutTraceback"
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["forbidden_without_traceback"]},
    },
}
