"""Settings for the registry, all read from the environment.

With no environment at all the app runs on embedded defaults (SQLite, files under media/, an
in-process cache, DEBUG on); production and CI point it at PostgreSQL, Redis and S3 through the
variables listed in the README. Secrets have no default once DEBUG is off.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from registry.env import env_bool, env_choice, env_int, env_list, env_rate, env_required, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

if DEBUG:
    # A development-only key: production refuses to start without SECRET_KEY (below).
    SECRET_KEY = env_str("SECRET_KEY", "django-insecure-development-key-only-for-debug-runs-0123456789")
else:
    SECRET_KEY = env_required("SECRET_KEY", why="it signs sessions and tokens, and DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"

INSTALLED_APPS = [
    # First: its runserver serves WebSockets too (live updates), so `make run` needs nothing more.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Its template filters are used by allauth's second-factor pages.
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_htmx",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Lockouts after repeated failed sign-ins, at every door that checks a password (see Accounts below).
    "axes",
    # Sign-in pages, single sign-on (OpenID Connect) and second factors / passkeys (see Accounts below).
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "registry",
    "accounts",
    "experiments",
    "mlmodels",
    "webhooks",
    "live",
    "mlflow_api",
]

MIDDLEWARE = [
    "registry.middleware.InterruptedUploadMiddleware",
    "registry.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After authentication (it lets only signed-in users' uploads be large), and before any view or
    # the CSRF check reads the body.
    "registry.middleware.RequestSizeLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Notes which browser tab made a change, so that tab does not refresh what its own answer showed.
    "live.middleware.LiveTabMiddleware",
    # Last, as django-axes requires: turns a lockout flagged during sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

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
                "accounts.context_processors.sign_in",
                "mlmodels.context_processors.approvals_nav",
                "live.context_processors.live_updates",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
if DATABASE_URL and not DATABASE_URL.startswith("sqlite"):
    DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
    DATABASES["default"].update(
        # Persistent connections, checked before reuse so a restarted server costs one retry-free
        # reconnect instead of an error on the next request.
        CONN_MAX_AGE=env_int("CONN_MAX_AGE", 60, minimum=0),
        CONN_HEALTH_CHECKS=True,
    )
else:
    sqlite_path = environ.Env.db_url_config(DATABASE_URL)["NAME"] if DATABASE_URL else None
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_path or BASE_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction starts, so two writers queue
                # (up to `timeout` seconds) instead of failing when both try to upgrade a read lock.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not the in-memory default: threads in the concurrency tests need their own
            # connections to one database, which shared-cache memory databases cannot queue. One file
            # per test process, so two test runs on one machine never share it.
            "TEST": {"NAME": Path(tempfile.gettempdir()) / f"registry-test-{os.getpid()}.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions ---------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                # The cache only holds what can be recomputed: when Redis is away the app answers
                # uncached (and logs it) rather than failing.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
            "KEY_PREFIX": "registry",
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The counters of the sign-in and registration doors (registry.api.throttles.AuthRateThrottle) live where
# every server process sees them, never in one process's memory: Redis when it is set, otherwise a
# database table that `migrate` creates (accounts.models.ThrottleCacheEntry, accounts.cache), with
# atomic increments.
CACHES["throttle"] = (
    {**CACHES["default"]}
    if REDIS_URL
    else {
        "BACKEND": "accounts.cache.CounterDatabaseCache",
        "LOCATION": "accounts_throttle_cache",
        # One entry per client address and window; past this many, expired entries are culled first.
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
)
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# List counts cached until the next write (registry/counts.py): only with a cache every server
# process shares, or one process would not see another's writes.
CACHE_COUNTS = env_bool("CACHE_COUNTS", bool(REDIS_URL))

# --- Task queue (registry/celery.py) ----------------------------------------------------------
# Redis is the broker when there is one; without it tasks run in-process once their transaction
# commits (eager), so the embedded defaults need no worker. TASKS_EAGER=1 forces that with Redis too.
# TASK_BROKER_URL may name another Redis database than the cache's: a cache's eviction policy must
# never reach queued tasks.
TASK_BROKER_URL = env_url("TASK_BROKER_URL", schemes=("redis", "rediss", "unix")) or REDIS_URL
CELERY_BROKER_URL = TASK_BROKER_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = env_bool("TASKS_EAGER", not TASK_BROKER_URL)
# Acknowledged once run, and put back when the worker dies mid-task: tasks are idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task not acknowledged this long after it was handed out goes to another worker (Redis broker);
# the workers look for such tasks every tenth of that (kombu's default sweep is ~100 s).
TASK_VISIBILITY_SECONDS = env_int("TASK_VISIBILITY_SECONDS", 600, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_VISIBILITY_SECONDS,
    "unacked_restore_interval": max(1, TASK_VISIBILITY_SECONDS // 10),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Enqueuing happens in requests, after their commit: with the broker away it gives up within a
# second (the bus logs the failure) rather than hold the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# --- Webhooks (webhooks/) -------------------------------------------------------------------
# Attempts per delivery, the first retry's wait (doubling after each, with jitter), and the time a
# receiver has to answer. 429, 5xx, timeouts and connection errors are retried; other answers final.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=30)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=0)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Webhooks go to public addresses only (webhooks/addresses.py); 1 lifts that, for tests and closed
# networks whose receivers have private addresses. Never on a registry that untrusted people use.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)

# --- Live updates (live/: Django Channels; README "Live updates") ---------------------------------
# Pages follow committed domain events over a WebSocket (/ws/events/, registry/asgi.py). With Redis
# every server process (gunicorn workers that make changes, daphne processes that hold the sockets)
# shares one channel layer; without it the in-memory layer serves the one process `make run` starts.
# channels_redis' pub/sub layer: one PUBLISH per event, fanned out to the sockets by each daphne
# process, over one connection per process. Its list-based core layer wrote one message per member
# and, with 200 pages connecting at once, failed joins with "Too many connections" (redis-py's pool
# of 100 refuses rather than waits): bench/live.py. A page that misses a message catches up anyway.
ASGI_APPLICATION = "registry.asgi.application"
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "registry-live"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Off: pages open no WebSocket (e.g. behind a proxy that does not route /ws/ to the ASGI server).
LIVE_UPDATES = env_bool("LIVE_UPDATES", True)
# How often an open socket re-checks that its session still stands (a logout closes it at once).
LIVE_SESSION_CHECK_SECONDS = env_int("LIVE_SESSION_CHECK_SECONDS", 30, minimum=1)

# --- Storage --------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

AWS_S3_ENDPOINT_URL = env_url("AWS_S3_ENDPOINT_URL", schemes=("http", "https"))
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY")
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "ml-models")
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "us-east-1")
USE_S3 = bool(AWS_S3_ENDPOINT_URL or AWS_ACCESS_KEY_ID)

if USE_S3:
    from boto3.s3.transfer import TransferConfig as _TransferConfig
    from botocore.config import Config as _BotoConfig

    # Uploads are read once, forward only (they are hashed on the way), so the transfer manager holds
    # each part in memory until it is sent; two waiting parts keep a large upload's memory small with
    # no loss of speed (measured: README, "Where the speed comes from").
    _UPLOAD_TRANSFER = _TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    _UPLOAD_TRANSFER.max_in_memory_upload_chunks = 2  # s3transfer's option; boto3's __init__ lacks it

    ARTIFACT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "access_key": AWS_ACCESS_KEY_ID,
            "secret_key": AWS_SECRET_ACCESS_KEY,
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "region_name": AWS_S3_REGION_NAME,
            "querystring_auth": True,
            "file_overwrite": False,
            "default_acl": None,
            # With client_config given, django-storages ignores its own addressing_style and
            # signature_version options, so they are set here. The timeouts make an unreachable
            # S3 fail in seconds, not after botocore's minute-long default connect timeout.
            "client_config": _BotoConfig(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            "transfer_config": _UPLOAD_TRANSFER,
        },
    }
else:
    ARTIFACT_STORAGE = {
        # Reads MEDIA_ROOT when used (not now), so an overridden MEDIA_ROOT takes effect.
        "BACKEND": "django.core.files.storage.FileSystemStorage",
    }

STORAGES = {
    "default": ARTIFACT_STORAGE,
    "staticfiles": {
        # Hashed, compressed names in production; plain names in development and tests, where the
        # manifest would have to be rebuilt after every change to static/.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# In development and tests whitenoise serves straight from static/ (no collectstatic step);
# production serves the collected, hashed files only.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Uploaded artifacts go to a temporary file as they arrive (never into memory, whatever their size),
# then stream from there to storage with their sha256 computed on the way.
FILE_UPLOAD_HANDLERS = ["registry.uploads.LargeChunkTemporaryFileUploadHandler"]

MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 5 * 1024**3, minimum=1)
# A compressed artifact is inflated into a temporary file for its scan (mlmodels/scans.py): at most
# four times MAX_UPLOAD_BYTES, and never more than this; beyond it the scan says "unknown".
SCAN_MAX_DECOMPRESSED_BYTES = env_int("SCAN_MAX_DECOMPRESSED_BYTES", 4 * 1024**3, minimum=1024**2)
# Every other request body (JSON, forms, the other fields of an upload) is read into memory: 1 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# The routes (URL names) that take artifact files, up to MAX_UPLOAD_BYTES, from signed-in users only;
# everywhere else a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused before it is read.
LARGE_UPLOAD_URL_NAMES = frozenset(
    {
        "api:files-upload",
        "api:models-version-files-upload",
        "model-upload",
        "admin:mlmodels_mlmodel_add",
        "admin:mlmodels_mlmodel_change",
    }
)
# The routes whose body is the file itself, whatever its content type (MLflow's artifact PUT): let
# through up to the same limit; their view authenticates before it reads a byte, then streams the
# body to storage and holds it to MAX_UPLOAD_BYTES itself.
RAW_UPLOAD_URL_NAMES = frozenset({"mlflow-artifacts-file"})

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
BCRYPT_ROUNDS = env_int("BCRYPT_ROUNDS", 12, minimum=4, maximum=31)
PASSWORD_HASHERS = [
    "accounts.hashers.ConfiguredBCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
PASSWORD_MIN_LENGTH = env_int("PASSWORD_MIN_LENGTH", 10, minimum=8, maximum=128)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
REGISTRATION_OPEN = env_bool("REGISTRATION_OPEN", True)
# On: an owner without the approve permission who moves a model to production, or sets a protected
# alias, files an approval request that an approver decides (mlmodels.services).
PRODUCTION_NEEDS_APPROVAL = env_bool("PRODUCTION_NEEDS_APPROVAL", False)
# django-axes watches every authenticate() call (the login pages, the admin's, the browsable API's and
# the API's login): AxesStandaloneBackend refuses a locked-out sign-in before ModelBackend checks the
# password. Failures are counted in the database (axes' default handler): shared by every server
# process with or without Redis, and still counted while Redis is away. A username is locked after
# AXES_FAILURE_LIMIT failures from anywhere; so is a client address after as many failures at any
# usernames. Attempts refused during a lockout are not counted, so a locked address cannot go on to
# lock other accounts, and a lock ends AXES_COOLOFF_MINUTES after its last counted failure (or at once
# with `manage.py axes_reset_username NAME`, or by deleting the attempt in the admin's Axes pages).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # allauth's username-or-email backend (a ModelBackend), refusing service accounts a password sign-in.
    "accounts.backends.AccountBackend",
]
# django-axes reads the username from what allauth's form passes to authenticate() (username or email).
AXES_USERNAME_CALLABLE = "accounts.backends.attempted_login"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The client address as the throttles read it (X-Forwarded-For trusted from NUM_PROXIES proxies only).
AXES_CLIENT_IP_CALLABLE = "registry.api.throttles.client_address"
# The lockout answer: the login page with the reason (JSON for the API), status 429.
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# Only failures are kept: no row per successful sign-in (personal data nobody prunes).
AXES_DISABLE_ACCESS_LOG = True
ACCESS_TOKEN_MINUTES = env_int("ACCESS_TOKEN_MINUTES", 30, minimum=1)
REFRESH_TOKEN_DAYS = env_int("REFRESH_TOKEN_DAYS", 7, minimum=1)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# django-allauth runs the sign-in pages: password (username or email), passkeys, a second factor, and
# single sign-on. Registration and password change stay the registry's own pages (accounts.views);
# allauth's password reset and email pages are not offered (accounts.urls): the registry sends no mail.
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
# Sign-in attempts are limited by django-axes at every door (above), not a second time by allauth: its
# per-address login limit is off, and its adapter leaves failed passwords to axes
# (accounts.adapters). allauth's limit on failed second-factor codes (login_failed, per user) stays.
ACCOUNT_RATE_LIMITS = {"login": None}
# Passkeys are checked against the page's origin: https, or http://localhost (which browsers also
# treat as secure) for development; an IP address such as 127.0.0.1 is no valid WebAuthn RP ID.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Model Registry"

# Single sign-on with OpenID Connect (any IdP: Keycloak, Entra ID, Google, Okta), only when
# OIDC_SERVER_URL is set. The redirect URI to register at the IdP is
# https://<registry host>/accounts/oidc/sso/login/callback/.
OIDC_SERVER_URL = env_url("OIDC_SERVER_URL", schemes=("http", "https"))
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "SSO")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# Groups of the IdP mapped, at every SSO sign-in, to the approvers group and to superuser (and taken
# away when the user is no longer in them); unset: those roles are left as the admin sets them.
OIDC_APPROVER_GROUPS = env_list("OIDC_APPROVER_GROUPS")
OIDC_ADMIN_GROUPS = env_list("OIDC_ADMIN_GROUPS")
# Sign-in through the IdP only: password and passkey sign-in stay for superusers (a way in when the IdP
# is down), everyone else is sent to the IdP. API keys keep working.
SSO_ONLY = env_bool("SSO_ONLY", False)
CSP_FORM_ACTION_ORIGINS: list[str] = []
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        # allauth's OpenID Connect provider, with a nonce bound to each sign-in (accounts.sso).
        "provider_class": "accounts.sso.NonceOpenIDConnectProvider",
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [],
    }
}
if OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"] = [
        {
            "provider_id": "sso",
            "name": OIDC_PROVIDER_NAME,
            "client_id": OIDC_CLIENT_ID or env_required("OIDC_CLIENT_ID", why="OIDC_SERVER_URL is set"),
            "secret": OIDC_CLIENT_SECRET or env_required("OIDC_CLIENT_SECRET", why="OIDC_SERVER_URL is set"),
            "settings": {"server_url": OIDC_SERVER_URL},
        }
    ]
    # The sign-on button's post is redirected to the IdP: the pages' CSP lets forms go there.
    _issuer = urlsplit(OIDC_SERVER_URL)
    CSP_FORM_ACTION_ORIGINS = [f"{_issuer.scheme}://{_issuer.netloc}"]
elif SSO_ONLY:
    raise ImproperlyConfigured("SSO_ONLY=1 needs OIDC_SERVER_URL: nobody but superusers could sign in.")
# The IdP vouches for the user: the first sign-in creates the account (REGISTRATION_OPEN is about
# local accounts), with a unique username made from its preferred_username or email.
SOCIALACCOUNT_AUTO_SIGNUP = True
# An SSO sign-in never takes over a local account that has the same email address.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API keys first (mlr_…, as a bearer token or a Basic password): a key never reaches the JWT
        # parser, and anything that is not a key goes on to the classes below.
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.ApiKeyBasicAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        # For the browsable API after a session login; it enforces CSRF.
        "rest_framework.authentication.SessionAuthentication",
    ],
    # A read-only API key is held to safe methods by its authentication class (accounts.authentication).
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "registry.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON bodies only (the schema advertises what the parsers accept, and generated clients choke on
    # a choice of three); the upload view takes multipart itself. The browsable API's raw data form
    # posts JSON.
    "DEFAULT_PARSER_CLASSES": ["registry.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "registry.api.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": ["registry.api.throttles.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_rate("THROTTLE_RATE_USER", "6000/minute"),
        # Login and registration, per client address: slows password guessing and sign-up floods.
        "auth": env_rate("THROTTLE_RATE_AUTH", "20/minute"),
    },
    # Trust X-Forwarded-For from this many proxies in front of the app (0: the peer's address), so a
    # client cannot dodge the per-address throttle by inventing the header.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "VIEW_NAME_FUNCTION": "registry.api.naming.get_view_name",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a digest of the password hash they were issued under: once the password changes
    # (any way: the pages, the admin, manage.py changepassword), its access tokens stop working at once.
    "CHECK_REVOKE_TOKEN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model Registry API",
    "DESCRIPTION": "Models, versions, lifecycle stages, artifact files and experiments of an ML team.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    # Swagger UI would load a badge from validator.swagger.io (sending it the schema URL) on any host but localhost.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # lifecycle, from_stage and to_stage share one set of choices: one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"StageEnum": "mlmodels.models.Stage"},
}
# How long a presigned or signed download URL stays valid.
PRESIGNED_URL_SECONDS = env_int("PRESIGNED_URL_SECONDS", 3600, minimum=1, maximum=7 * 24 * 3600)

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Under /api/ a CSRF failure is JSON too (every answer there is).
CSRF_FAILURE_VIEW = "registry.api.errors.csrf_failure"
if not DEBUG:
    # Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=1 so Django trusts its header.
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    },
    "loggers": {"django_redis": {"level": "WARNING"}},
}
