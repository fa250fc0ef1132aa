from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import pyresque
from orders.jobs import confirm_order
from orders.models import Order


def order_email(body: bytes) -> str:
    """The ``email`` of an order's JSON body; ValueError saying what is wrong with it."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('the body must be a JSON object such as {"email": "a@example.com"}')
    email = data.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ValueError('"email" must be a non-empty string')
    return email


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    """``POST /orders/ {"email": ...}``: save the order, confirm it in the background; a body
    that is not such an object is answered 400 with what is wrong."""
    try:
        email = order_email(request.body)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    order = Order.objects.create(email=email)
    pyresque.enqueue(confirm_order, order.pk)
    return JsonResponse({"id": order.pk, "status": order.status}, status=202)


@require_GET
def show_order(request: HttpRequest, order_id: int) -> JsonResponse:
    order = get_object_or_404(Order, pk=order_id)
    return JsonResponse({"id": order.pk, "email": order.email, "status": order.status})
