"""The shop's data: one table of notes, in each tenant's own database."""

from __future__ import annotations

from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=200)
    # Added by migration 0002, which only 2026.12 needs.
    body = models.TextField(default="")

    class Meta:
        app_label = "shop"
