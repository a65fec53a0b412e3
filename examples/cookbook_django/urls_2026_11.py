"""The URLconf of 2026.11: read notes."""

from django.urls import path

from . import views

urlpatterns = [path("notes/", views.notes)]
