from rest_framework.permissions import BasePermission

from catalog.selectors import membership_for

WORKSPACE_HEADER = "HTTP_X_VITRINE_WORKSPACE"


class IsWorkspaceMember(BasePermission):
    """Signed in and a member of the workspace the request acts in (the `X-Vitrine-Workspace`
    header names it by slug; otherwise the caller's first workspace). Sets request.membership
    and request.workspace for the view."""

    message = "Sign in with an account that belongs to a workspace."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        membership = membership_for(user=request.user, workspace_slug=request.META.get(WORKSPACE_HEADER))
        if membership is None:
            return False
        request.membership = membership
        request.workspace = membership.workspace
        return True
