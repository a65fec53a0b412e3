"""The URLconf of 2026.12: read and add notes (with the body column of migration 0002)."""

from django.urls import path

from . import views

urlpatterns = [path("notes/", views.notes), path("notes/add/", views.add_note)]
