"""Settings shared by every environment; everything comes from the environment."""
import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from kombu import Exchange
from kombu import Queue as KombuQueue

from config.celery import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR = Path(env("VITRINE_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "catalog",
    "brand",
    "studio",
    "storefront",
]

MIDDLEWARE = [
    # First: a body over its cap is refused before anything below reads or spools it.
    "config.middleware.RequestBodyCapMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: it turns a sign-in that axes refused into the lockout page (catalog/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "catalog.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "products"
LOGOUT_REDIRECT_URL = "login"
# axes first: it refuses a locked-out account + address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

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
                "studio.context_processors.notifications",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'vitrine.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default has a web server and a worker writing to one file: WAL lets readers
    # run beside a writer, IMMEDIATE takes the write lock up front instead of failing late.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("VITRINE_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Storage: local media folder by default, S3-compatible by setting. Code only ever talks to
# the STORAGES aliases, never to paths.
STORAGE_BACKEND = env("STORAGE_BACKEND", default="local")
MEDIA_ROOT = Path(env("VITRINE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: files go through workspace-scoped views
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 600,
            "file_overwrite": False,
        },
    }
elif STORAGE_BACKEND == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
else:
    raise environ.ImproperlyConfigured(f"STORAGE_BACKEND must be 'local' or 's3', not {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Request bodies (config/middleware.py answers 413 from Content-Length, or as soon as a
# chunked body passes its cap, before any view, parser or authentication reads it). Upload
# routes may send VITRINE_UPLOAD_MAX_BYTES plus the multipart envelope (boundaries, part
# headers, the small form fields); LoRA uploads brand.services.LORA_MAX_BYTES plus the same;
# every other request, /login/ and the token endpoint included, VITRINE_REQUEST_MAX_BYTES.
# docker/gunicorn.conf.py and docker/nginx.conf ship the same numbers.
VITRINE_REQUEST_MAX_BYTES = env.int("VITRINE_REQUEST_MAX_BYTES", default=1024 * 1024)
VITRINE_UPLOAD_OVERHEAD_BYTES = 256 * 1024
# Uploads: Django streams any file above this to a temporary file, so the web process never
# holds a large upload in memory; the rest of a body (form fields, JSON read as request.body)
# may not pass the small request cap, the same number the middleware enforces.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = VITRINE_REQUEST_MAX_BYTES
DATA_UPLOAD_MAX_NUMBER_FILES = 100

# Vitrine's own knobs.
VITRINE_DEMO = env.bool("VITRINE_DEMO", default=False)
VITRINE_UPLOAD_MAX_BYTES = env.int("VITRINE_UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)
VITRINE_UPLOAD_MAX_PIXELS = env.int("VITRINE_UPLOAD_MAX_PIXELS", default=100_000_000)
# Photos up to this many pixels are decoded in the request (≈ 7 bytes of web memory a pixel
# for 8-bit RGB, up to 87 MB at 12.5 MP, so three at once stay within 300 MB; alpha, CMYK and
# 16-bit images count 1.5×: generation.decoding.ImageHeader.decode_pixels);
# larger ones are accepted on their header and decoded by a cpu worker (the photo is
# "checking" until then), so the web process stays small whatever is uploaded.
VITRINE_UPLOAD_INLINE_MAX_PIXELS = env.int("VITRINE_UPLOAD_INLINE_MAX_PIXELS", default=12_500_000)
# Metadata budgets per photo (generation/decoding.py metadata_check): an embedded colour
# profile, and each of EXIF, XMP and text. 1 MiB is what Pillow reads back from a PNG's
# profile or text chunk; above it a photo would be accepted and then fail every later step.
VITRINE_UPLOAD_MAX_ICC_BYTES = env.int("VITRINE_UPLOAD_MAX_ICC_BYTES", default=1024 * 1024)
VITRINE_UPLOAD_MAX_METADATA_BYTES = env.int("VITRINE_UPLOAD_MAX_METADATA_BYTES", default=1024 * 1024)
VITRINE_WORKING_MAX_SIDE = env.int("VITRINE_WORKING_MAX_SIDE", default=4096)
VITRINE_THUMBNAIL_SIDE = env.int("VITRINE_THUMBNAIL_SIDE", default=512)
# Segmentation: "auto" (best rembg model installed under VITRINE_REMBG_HOME, else graphcut),
# "graphcut" (no weights; "studio" is a deprecated alias) or "rembg:<model>" with weights under VITRINE_REMBG_HOME
# (rembg's U2NET_HOME layout; `manage.py models pull NAME` fills it where the machine is online).
VITRINE_SEGMENTER = env("VITRINE_SEGMENTER", default="auto")
#: Where people reach this Vitrine, for links in emails.
VITRINE_BASE_URL = env("VITRINE_BASE_URL", default="http://127.0.0.1:8000")
VITRINE_REMBG_HOME = env("VITRINE_REMBG_HOME", default=env("U2NET_HOME", default=str(VAR_DIR / "models" / "rembg")))
# Content Credentials (C2PA, generation/credentials.py): every delivered asset is signed with this
# private key and certificate chain (PEM, end-entity first; ES256). With VITRINE_C2PA_DEV_CERT
# (on unless production settings) a missing pair is created as a development chain on first use;
# `make migrate` / `make run` create it up front (`manage.py c2pa_dev_cert`).
VITRINE_C2PA_KEY = env("VITRINE_C2PA_KEY", default=str(VAR_DIR / "c2pa" / "signer.key"))
VITRINE_C2PA_CERT = env("VITRINE_C2PA_CERT", default=str(VAR_DIR / "c2pa" / "signer-chain.pem"))
VITRINE_C2PA_DEV_CERT = env.bool("VITRINE_C2PA_DEV_CERT", default=True)
# The engine imports no Django and reads these from the environment: publish the resolved values.
os.environ["VITRINE_C2PA_KEY"], os.environ["VITRINE_C2PA_CERT"] = VITRINE_C2PA_KEY, VITRINE_C2PA_CERT
os.environ["VITRINE_C2PA_DEV_CERT"] = "true" if VITRINE_C2PA_DEV_CERT else "false"
VITRINE_WORKER_STALE_SECONDS = env.int("VITRINE_WORKER_STALE_SECONDS", default=60)
# A running job's worker renews its lease every third of this; a lease that lapses means the
# worker died, and the job is taken over (its message came back) or requeued by the reaper.
VITRINE_JOB_LEASE_SECONDS = env.int("VITRINE_JOB_LEASE_SECONDS", default=60)
# Workers that may die on one job before it fails with a reason (a photo that kills every
# worker it touches must not loop forever).
VITRINE_JOB_MAX_ATTEMPTS = env.int("VITRINE_JOB_MAX_ATTEMPTS", default=5)
# How often each worker looks for running jobs whose lease lapsed.
VITRINE_JOB_REAP_SECONDS = env.int("VITRINE_JOB_REAP_SECONDS", default=30)
# A queued job whose task went to the broker this long ago and that no worker took up may
# have lost its message (a broker restarted without persistence, a worker killed holding it):
# the reaper sends it again, as far as the broker's queue is short of messages.
VITRINE_JOB_RESEND_SECONDS = env.int("VITRINE_JOB_RESEND_SECONDS", default=900)
# Generation jobs on the gpu broker queue or running at once, all workspaces together; the
# rest wait undispatched and workspaces take turns for the free slots (studio/dispatch.py).
# Keep it at about the number of GPU workers (+1 so the next job is already there).
VITRINE_GPU_IN_FLIGHT = env.int("VITRINE_GPU_IN_FLIGHT", default=2)
# Per workspace: queued generation jobs at once, and images (variants × channels) asked for
# in any 24 hours; past either, new jobs are refused with a reason (API: 429).
VITRINE_WORKSPACE_MAX_QUEUED_JOBS = env.int("VITRINE_WORKSPACE_MAX_QUEUED_JOBS", default=100)
VITRINE_WORKSPACE_MAX_IMAGES_PER_DAY = env.int("VITRINE_WORKSPACE_MAX_IMAGES_PER_DAY", default=2000)
# Settings: an invitation link works for this many days; a new API token expires after this
# many days unless its creator picks another date (or none).
VITRINE_INVITATION_DAYS = env.int("VITRINE_INVITATION_DAYS", default=7)
VITRINE_API_TOKEN_DAYS = env.int("VITRINE_API_TOKEN_DAYS", default=90)

# Storefront connector (storefront/). Credentials (access tokens, webhook secrets) are
# encrypted with the first of these Fernet keys; every key decrypts, so a new key goes first
# and the old one stays listed until `manage.py storefront_rekey` has run. Unset, a key is
# derived from DJANGO_SECRET_KEY (fine for `make run`; production sets its own).
VITRINE_CREDENTIALS_KEYS = env.list("VITRINE_CREDENTIALS_KEYS", default=[])
# The OAuth app (non-embedded) a merchant installs; its secret also signs webhooks. The
# previous secret is still accepted on webhooks during a rotation.
VITRINE_STOREFRONT_CLIENT_ID = env("VITRINE_STOREFRONT_CLIENT_ID", default="")
VITRINE_STOREFRONT_CLIENT_SECRET = env("VITRINE_STOREFRONT_CLIENT_SECRET", default="")
VITRINE_STOREFRONT_PREVIOUS_CLIENT_SECRET = env("VITRINE_STOREFRONT_PREVIOUS_CLIENT_SECRET", default="")
VITRINE_STOREFRONT_SCOPES = env("VITRINE_STOREFRONT_SCOPES", default="read_products,write_products")
VITRINE_STOREFRONT_API_VERSION = env("VITRINE_STOREFRONT_API_VERSION", default="2025-01")
# Where a shop answers OAuth (authorize, access token) and its Admin API; `{shop}` is the
# shop's domain. Tests and `make run` point it at the loopback fake (http://127.0.0.1:PORT).
VITRINE_STOREFRONT_SHOP_URL = env("VITRINE_STOREFRONT_SHOP_URL", default="https://{shop}")
# Outbound calls to a storefront: seconds per request (connect and read alike).
VITRINE_STOREFRONT_TIMEOUT_SECONDS = env.float("VITRINE_STOREFRONT_TIMEOUT_SECONDS", default=20.0)
# Publishing: how often, and how many times, a run asks the shop whether an uploaded image is
# processed (READY or FAILED); an image still processing after that is checked by a later run.
VITRINE_STOREFRONT_MEDIA_POLLS = env.int("VITRINE_STOREFRONT_MEDIA_POLLS", default=20)
VITRINE_STOREFRONT_MEDIA_POLL_SECONDS = env.float("VITRINE_STOREFRONT_MEDIA_POLL_SECONDS", default=1.5)
# Import and sync (storefront/sync.py): every connection is synced incrementally (by
# updated_at) this often by the worker loop; 0 turns the schedule off. Products per page (the
# shop allows up to 250). One task works this many seconds, then queues itself to go on from
# its cursor; a queued or running sync that has not moved for the stale time is sent again.
VITRINE_STOREFRONT_SYNC_SECONDS = env.int("VITRINE_STOREFRONT_SYNC_SECONDS", default=900)
VITRINE_STOREFRONT_SYNC_PAGE_SIZE = env.int("VITRINE_STOREFRONT_SYNC_PAGE_SIZE", default=250)
VITRINE_STOREFRONT_SYNC_SLICE_SECONDS = env.int("VITRINE_STOREFRONT_SYNC_SLICE_SECONDS", default=240)
VITRINE_STOREFRONT_SYNC_STALE_SECONDS = env.int("VITRINE_STOREFRONT_SYNC_STALE_SECONDS", default=900)
# Fetching product images from a shop (storefront/fetch.py, SSRF-guarded): only these hosts
# (an entry starting with "." also allows its subdomains), only https unless turned off (it
# is off by default only with DJANGO_DEBUG), every resolved address global — except loopback
# when VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK is true (tests and the demo's fake shop on
# 127.0.0.1). The byte cap is the upload cap; the time cap covers the whole download.
VITRINE_STOREFRONT_IMAGE_HOSTS = env.list("VITRINE_STOREFRONT_IMAGE_HOSTS", default=["cdn.shopify.com"])
VITRINE_STOREFRONT_FETCH_HTTPS_ONLY = env.bool("VITRINE_STOREFRONT_FETCH_HTTPS_ONLY", default=not DEBUG)
VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = env.bool("VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK", default=False)
VITRINE_STOREFRONT_FETCH_TIMEOUT_SECONDS = env.float("VITRINE_STOREFRONT_FETCH_TIMEOUT_SECONDS", default=30.0)
VITRINE_STOREFRONT_FETCH_MAX_REDIRECTS = 3

# Email (invitations): EMAIL_URL as django-environ reads it, e.g. smtp+tls://user:pass@host:587;
# unset, mail is printed by the console backend (what `make run` wants: the link is in the log).
vars().update({key: value for key, value in env.email_url("EMAIL_URL", default="consolemail://").items() if value is not None})
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # an SMTP server that hangs must not hang a request
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Vitrine <vitrine@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery. Without REDIS_URL the broker is kombu's filesystem transport: it needs no server,
# survives restarts (messages are files), and works across the web and worker processes.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
# A generation task's soft time limit; its hard one, 60 s later, is the longest any task runs.
VITRINE_GENERATION_SOFT_TIME_LIMIT = env.int("VITRINE_GENERATION_SOFT_TIME_LIMIT", default=1800)


def broker_transport_options(broker_url: str, var_dir: Path) -> dict:
    """The broker's transport options (a function: the fault tests point a process at another
    broker with the options its workers use)."""
    if broker_url.startswith("filesystem:"):
        folder = Path(var_dir) / "broker"
        for name in ("out", "processed", "control"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    # Redis hands an unacknowledged message to another worker after the visibility timeout.
    # Below the longest task's hard limit, a healthy long generation would run twice; the
    # job lease (not this timeout) is what notices a dead worker quickly.
    return {"visibility_timeout": VITRINE_GENERATION_SOFT_TIME_LIMIT + 60 + 600}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL, VAR_DIR)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # the job row is the result
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = Queue.CPU.value
CELERY_TASK_QUEUES = [KombuQueue(q.value, Exchange(q.value), routing_key=q.value) for q in Queue]
# Which queue each task runs on, in one table.
CELERY_TASK_ROUTES = {
    "catalog.tasks.photo_decode_task": {"queue": Queue.CPU.value},
    "catalog.tasks.photo_thumbnail_task": {"queue": Queue.CPU.value},
    "studio.tasks.cutout_photo_task": {"queue": Queue.CPU.value},
    "studio.tasks.cutout_touch_up_task": {"queue": Queue.CPU.value},
    "studio.tasks.generate_scenes_task": {"queue": Queue.GPU.value},
    "storefront.tasks.storefront_webhook_process_task": {"queue": Queue.IO.value},
    "storefront.tasks.storefront_export_task": {"queue": Queue.IO.value},
    "storefront.tasks.storefront_sync_task": {"queue": Queue.IO.value},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("VITRINE_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("VITRINE_TASK_TIME_LIMIT", default=660)
CELERY_TASK_ALWAYS_EAGER = env.bool("VITRINE_TASKS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "catalog.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["catalog.api.permissions.IsWorkspaceMember"],
    "DEFAULT_PAGINATION_CLASS": "catalog.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "catalog.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vitrine API",
    "DESCRIPTION": "Product photos in, locked and approved product images out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: Vitrine runs offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several rows have a `status`; each set of values gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "InvitationStatusEnum": ["open", "expired", "accepted", "revoked"],
        "ApiTokenStatusEnum": ["active", "expired", "revoked"],
        "JobStatusEnum": "catalog.jobs.JobStatus",
    },
    # Every operation declares the error statuses it can answer, with the error format (config/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.declare_error_responses"],
}

# Doors (docs/operations.md, "Security") -------------------------------------------------------
# Proxies in front of Vitrine that append to X-Forwarded-For; exactly that many hops from the
# right are believed (config/client_ip.py). 0: the header is ignored, REMOTE_ADDR is the client.
VITRINE_TRUSTED_PROXIES = env.int("VITRINE_TRUSTED_PROXIES", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = VITRINE_TRUSTED_PROXIES  # DRF's throttles: the same address
# Sign-in lockout (django-axes): this many wrong passwords for one account from one address
# within the cool-off lock that account from that address until the cool-off has passed.
VITRINE_LOGIN_FAILURE_LIMIT = env.int("VITRINE_LOGIN_FAILURE_LIMIT", default=10)
VITRINE_LOGIN_COOLOFF_MINUTES = env.int("VITRINE_LOGIN_COOLOFF_MINUTES", default=15)
AXES_FAILURE_LIMIT = VITRINE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=VITRINE_LOGIN_COOLOFF_MINUTES)
# Account and address together: one person's typos (or an attacker's guesses) lock only that
# account from that address; colleagues behind the same office NAT keep signing in, and the
# real owner can still sign in from home. Spraying many accounts from one address is slowed
# by the API token throttle (20/min per address) and by password hashing, not locked.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_USERNAME_CALLABLE = "catalog.lockout.lockout_username"
AXES_LOCKOUT_CALLABLE = "catalog.lockout.lockout_response"
# Refused attempts during a lockout do not push its end further: the time on the page stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Content-Security-Policy (django-csp). Scripts only from our own static files (no inline
# script, no eval); inline <style> elements only with the per-request nonce (the API docs
# page). style-src-attr allows style="" attributes: they carry per-row values that cannot
# live in a static file (brand swatch colours, an asset's aspect ratio, the before/after
# crop) and Swagger UI sets them too; a style attribute cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-elem": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# /healthz: details (checks, workers, jobs) only for a staff session or
# `Authorization: Bearer <VITRINE_HEALTH_TOKEN>`; unset, only staff see them.
VITRINE_HEALTH_TOKEN = env("VITRINE_HEALTH_TOKEN", default="")
# The storage check writes and deletes a file: at most this often per process.
VITRINE_HEALTH_STORAGE_SECONDS = env.int("VITRINE_HEALTH_STORAGE_SECONDS", default=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("VITRINE_LOG_LEVEL", default="INFO")},
}
