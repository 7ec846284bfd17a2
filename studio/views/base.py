"""What every page shares: who is asking, in which workspace, with which role."""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden

from catalog.models import Role

from catalog import selectors


def workspace_page(view):
    """Signed in, and acting in one of the caller's workspaces (request.workspace)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = selectors.membership_for(user=request.user, workspace_slug=request.session.get("workspace"))
        if membership is None:
            return HttpResponseForbidden("Your account does not belong to a workspace yet. Ask an owner to invite you.")
        request.membership, request.workspace = membership, membership.workspace
        return view(request, *args, **kwargs)

    return wrapper


def with_param(request, name: str, value: str | None) -> str:
    params = request.GET.copy()
    params.pop(name, None)
    if value:
        params[name] = value
    return f"?{params.urlencode()}" if params else "?"


#: Who may decide what ships and steer the brand: brand managers and owners.
DECIDERS = (Role.OWNER, Role.BRAND_MANAGER)


def role_page(*roles: str):
    """A workspace page only the given roles may open; anyone else gets 403 with the reason."""

    def decorate(view):
        @workspace_page
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.membership.role not in roles:
                return HttpResponseForbidden("Only a brand manager or an owner of this workspace can open this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def asset_before_style(asset) -> str:
    """CSS that puts the original photo where the asset's transform put the product, so the
    before/after slider compares the same pixels, not two framings."""
    t = asset.recipe["transform"]
    w, h = asset.width, asset.height
    return (
        f"left:{t['dx'] / w * 100:.4f}%;top:{t['dy'] / h * 100:.4f}%;"
        f"width:{asset.photo.width * t['scale'] / w * 100:.4f}%;height:{asset.photo.height * t['scale'] / h * 100:.4f}%"
    )


def asset_zoom_origin(asset) -> tuple[int, int]:
    """Where the product's centre sits on the asset's canvas (pixels), for the 1:1 zoom."""
    t = asset.recipe["transform"]
    bbox = asset.cutout.bbox or [0, 0, asset.photo.width, asset.photo.height]
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return int(t["dx"] + cx * t["scale"]), int(t["dy"] + cy * t["scale"])


def error_text(exc: Exception) -> str:
    """A refused request's reason as one line for the page (every field's messages joined)."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(message for messages in exc.message_dict.values() for message in messages)
        return " ".join(exc.messages)
    return str(exc)
