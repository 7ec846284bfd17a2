"""gunicorn settings for the web process (docker/compose.yml, deploy/k8s/base/web-deployment.yaml):
`gunicorn config.wsgi:application --config docker/gunicorn.conf.py`.

Request limits, in three places that agree (docs/operations.md, "Request limits"):
- here, the request line and headers, which gunicorn reads before Django sees anything;
- config/middleware.py, the body: 413 from Content-Length, or as soon as a chunked body
  (which gunicorn de-chunks) passes the route's cap; gunicorn itself has no body limit;
- docker/nginx.conf, the same body caps at the proxy, which also buffers slow clients so a
  sync worker is not held by one.
Every value can be overridden with GUNICORN_CMD_ARGS (e.g. "--workers 5")."""
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
# Sync workers: one request each, the connection closed after it, so a refused body is never
# drained to look for the next request on the same connection.
worker_class = "sync"

# A request line past this (long query strings included) is answered 414 by gunicorn; headers
# past these counts and sizes get 400. Enough for the API's filters and a session cookie.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# A 50 MB upload from a slow link behind a buffering proxy still arrives in well under this;
# a stuck worker is replaced after it. graceful_timeout matches the k8s termination period.
timeout = 120
graceful_timeout = 30
keepalive = 5

# Recycle workers now and then: a long-lived process keeps the peak memory of its largest
# request (Pillow's buffers are returned to the allocator, not always to the system).
max_requests = 1000
max_requests_jitter = 100

accesslog = "-"
errorlog = "-"
