"""What the navigation shows on every page: the caller's unread notifications."""
from studio import selectors


def notifications(request) -> dict:
    workspace = getattr(request, "workspace", None)
    if workspace is None or not request.user.is_authenticated:
        return {}
    return {"unread_notifications": selectors.notification_unread_count(user=request.user, workspace=workspace)}
