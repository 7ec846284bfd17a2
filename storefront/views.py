"""The connector's pages and its webhook door."""
from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import webhook_receive


@csrf_exempt  # a shop signs its webhooks with HMAC (checked before parsing); it has no session or CSRF token
@require_POST
def webhook(request):
    answer = webhook_receive(body=request.body, headers=request.headers)
    return JsonResponse({"message": answer.message}, status=answer.status)
