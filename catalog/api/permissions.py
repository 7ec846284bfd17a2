from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from catalog.models import ApiToken, Role
from catalog.selectors import membership_for

WORKSPACE_HEADER = "HTTP_X_VITRINE_WORKSPACE"
#: The signed-in browser's workspace (studio.views.base.workspace_page reads the same key), so
#: that the pages' own API calls act where the page does.
SESSION_WORKSPACE = "workspace"


class IsWorkspaceMember(BasePermission):
    """Signed in and a member of the workspace the request acts in (the `X-Vitrine-Workspace`
    header names it by slug; otherwise the browser session's workspace, else the caller's
    first one; an API token always acts in the workspace it was made in). Sets request.membership and request.workspace."""

    message = "Sign in with an account that belongs to a workspace."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        slug = request.META.get(WORKSPACE_HEADER)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if token is not None:
            # A key leaked from one workspace's script must not open the owner's other workspaces.
            if slug and slug != token.workspace.slug:
                raise PermissionDenied(
                    f"This API token acts in the workspace “{token.workspace.slug}” only; use a token made in “{slug}” there.",
                    code="token_other_workspace",
                )
            membership = token.member  # loaded with the token (catalog.selectors.api_token_for_key)
            if membership is not None:
                membership.user, membership.workspace = token.user, token.workspace
        else:
            if not slug and request.auth is None:
                slug = request.session.get(SESSION_WORKSPACE)
            membership = membership_for(user=request.user, workspace_slug=slug)
        if membership is None:
            return False
        request.membership = membership
        request.workspace = membership.workspace
        return True


class IsWorkspaceOwner(IsWorkspaceMember):
    """A member whose role in the request's workspace is owner."""

    message = "Only an owner of this workspace can do this."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.membership.role == Role.OWNER
