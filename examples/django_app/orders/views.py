from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import pyresque
from orders.jobs import confirm_order
from orders.models import Order


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    """``POST /orders/ {"email": ...}``: save the order, confirm it in the background."""
    email = json.loads(request.body or b"{}").get("email", "")
    order = Order.objects.create(email=email)
    pyresque.enqueue(confirm_order, order.pk)
    return JsonResponse({"id": order.pk, "status": order.status}, status=202)


@require_GET
def show_order(request: HttpRequest, order_id: int) -> JsonResponse:
    order = get_object_or_404(Order, pk=order_id)
    return JsonResponse({"id": order.pk, "email": order.email, "status": order.status})
