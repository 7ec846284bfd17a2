"""The connector's pages and its webhook door.

The Storefronts page: every member sees the workspace's shops, import progress, webhook health
and exports; brand managers and owners connect and disconnect shops, sync, publish and retry
(the people who decide what ships, as on the brand and review pages). Views read through
selectors and write through one service call each; tokens are never rendered back."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from studio import selectors as studio_selectors
from studio.views.base import DECIDERS, error_text, role_page, workspace_page

from . import oauth, selectors, services
from .forms import ConnectOAuthForm, ConnectTokenForm
from .models import ConnectionStatus, ExportStatus, RunStatus
from .publish import PublishConflict, export_retry as export_retry_service, publish_request
from .sync import sync_request
from .webhooks import webhook_receive

PAGE_TEMPLATE = "storefront/storefronts.html"
CONNECTION_TEMPLATE = "storefront/_connection.html"
#: Where the OAuth flow keeps its `state` between "Connect with OAuth" and the callback.
SESSION_OAUTH = "storefront_oauth"
ACTIVE_EXPORTS = (ExportStatus.QUEUED, ExportStatus.UPLOADING, ExportStatus.PROCESSING)


@csrf_exempt  # a shop signs its webhooks with HMAC (checked before parsing); it has no session or CSRF token
@require_POST
def webhook(request):
    answer = webhook_receive(body=request.body, headers=request.headers)
    return JsonResponse({"message": answer.message}, status=answer.status)


def _can_manage(request) -> bool:
    return request.membership.role in DECIDERS


def _connection_view(request, connection) -> dict:
    """One connection as its card shows it."""
    latest = selectors.sync_latest(connection=connection)
    exports = list(selectors.export_list(workspace=request.workspace, connection=connection)[:50])
    syncing = latest is not None and latest.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    return {
        "connection": connection,
        "active": connection.status == ConnectionStatus.ACTIVE,
        "sync": latest,
        "syncing": syncing,
        "health": selectors.webhook_health(connection=connection),
        "exports": exports,
        "publishable": list(selectors.publishable_assets(workspace=request.workspace, connection=connection)[:50])
        if connection.status == ConnectionStatus.ACTIVE else [],
        # The card refreshes itself while anything on it is still moving (like a job's panel).
        "live": syncing or any(export.status in ACTIVE_EXPORTS for export in exports),
    }


def _page(request, *, status: int = 200, token_form=None, oauth_form=None, error: str = ""):
    connections = [_connection_view(request, connection) for connection in selectors.connection_list_with_sync(workspace=request.workspace)]
    response = render(request, PAGE_TEMPLATE, {
        "nav": "storefronts",
        "connections": connections,
        "can_manage": _can_manage(request),
        "token_form": token_form or ConnectTokenForm(),
        "oauth_form": oauth_form or ConnectOAuthForm(prefix="oauth"),
        "oauth_configured": oauth.oauth_configured(),
        "error": error,
    }, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _back():
    return redirect("storefronts")


@require_GET
@workspace_page
def storefronts(request):
    return _page(request)


@require_GET
@workspace_page
def connection_card(request, connection_id: int):
    """The card of one connection (htmx refreshes it while an import or an export runs)."""
    connection = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    return render(request, CONNECTION_TEMPLATE, {**_connection_view(request, connection), "can_manage": _can_manage(request)})


# Connecting -------------------------------------------------------------------------------


@sensitive_post_parameters("access_token", "webhook_secret")  # never in an error report
@require_POST
@role_page(*DECIDERS)
def connect_token(request):
    """A custom app: shop domain and access token."""
    form = ConnectTokenForm(request.POST)
    if form.is_valid():
        shop = form.cleaned_data["shop_domain"]
        try:
            connection = services.connection_create(
                workspace=request.workspace,
                shop_domain=shop,
                access_token=form.cleaned_data["access_token"],
                webhook_secret=form.cleaned_data["webhook_secret"],
                created_by=request.user,
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, texts in errors.items():
                form.add_error(field if field in ("shop_domain", "access_token") else None, texts)
        else:
            messages.success(request, f"{connection.shop_domain} is connected. Import its products with “Import everything”.")
            return _back()
    return _page(request, status=400, token_form=form)


@require_POST
@role_page(*DECIDERS)
def oauth_start(request):
    """"Connect with OAuth": to the shop's authorize page, with a fresh `state` in the session."""
    form = ConnectOAuthForm(request.POST, prefix="oauth")
    if form.is_valid():
        try:
            start = oauth.oauth_begin(shop_domain=form.cleaned_data["shop_domain"], redirect_uri=request.build_absolute_uri(reverse("storefront-oauth-callback")))
        except ValidationError as exc:
            form.add_error(None, error_text(exc))
        else:
            request.session[SESSION_OAUTH] = {"state": start.state, "shop": start.shop_domain, "workspace": request.workspace.pk}
            return redirect(start.authorize_url)
    return _page(request, status=400, oauth_form=form)


@require_GET
@role_page(*DECIDERS)
def oauth_callback(request):
    """The shop sends the person back here with `code, hmac, shop, state, timestamp`."""
    # Single use: whatever this callback brings, the state it was started with is spent.
    started = request.session.pop(SESSION_OAUTH, None) or {}
    if started.get("workspace") not in (None, request.workspace.pk):
        started = {}  # started in another workspace: refused by the state check below
    try:
        connection = oauth.oauth_complete(
            workspace=request.workspace,
            query=request.GET.dict(),
            expected_state=started.get("state", ""),
            expected_shop=started.get("shop", ""),
            created_by=request.user,
        )
    except ValidationError as exc:
        return _page(request, status=400, error=error_text(exc))
    messages.success(request, f"{connection.shop_domain} is connected through OAuth. Import its products with “Import everything”.")
    return _back()


@require_POST
@role_page(*DECIDERS)
def disconnect(request, connection_id: int):
    connection = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    services.connection_disable(connection=connection, reason=f"Disconnected in Vitrine by {request.user.email}.")
    messages.success(request, f"{connection.shop_domain} is disconnected and its access token erased. Its products and photos stay in Vitrine.")
    return _back()


# Import, sync, publish --------------------------------------------------------------------


@require_POST
@role_page(*DECIDERS)
def sync(request, connection_id: int):
    """"Sync now" (changes since the last sync) or "Import everything" (`full=1`)."""
    connection = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    full = request.POST.get("full") == "1"
    try:
        sync_request(connection=connection, user=request.user, full=full)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"{'Importing every product' if full else 'Syncing changes'} from {connection.shop_domain}; the progress shows below.")
    return _back()


@require_POST
@role_page(*DECIDERS)
def publish(request, connection_id: int):
    """Publish one approved image to the shop (once per image and content: the export row decides)."""
    connection = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=request.POST.get("asset"))
    try:
        publish_request(asset=asset, connection=connection, user=request.user, replace_earlier=request.POST.get("replace_earlier") == "1")
    except PublishConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Publishing the image of {asset.photo.product.title if asset.photo.product else 'the photo'} to {connection.shop_domain}; its status shows below.")
    return _back()


@require_POST
@role_page(*DECIDERS)
def export_retry(request, export_id: int):
    export = selectors.export_get(workspace=request.workspace, export_id=export_id)
    try:
        export_retry_service(export=export)
    except PublishConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Sending the image to {export.connection.shop_domain} again.")
    return _back()
