"""The shop's views, shared by both URLconf sets; the version's settings say what they show."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from .shop.models import Note


def notes(request: HttpRequest) -> JsonResponse:
    decision = request.META["cohortroute.decision"]
    show_body = settings.VERSIONS[decision.version]["SHOW_BODY"]
    fields = ["title", "body"] if show_body else ["title"]
    return JsonResponse(
        {
            "version": decision.version,
            "tenant": decision.tenant,
            "notes": list(Note.objects.values(*fields).order_by("id")),
        }
    )


def add_note(request: HttpRequest) -> JsonResponse:
    note = Note.objects.create(title=request.GET.get("title", "untitled"))
    return JsonResponse({"id": note.id})
