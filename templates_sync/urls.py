"""API routes of the templates app (mounted under /api/)."""

from django.urls import path
from rest_framework import routers

from templates_sync.api import TemplateSync, TemplateViewSet

router = routers.SimpleRouter()
router.register("templates", TemplateViewSet, basename="template")

# The sync route comes first: the router's detail route would otherwise take "sync" as an id.
urlpatterns = [
    path("templates/sync/", TemplateSync.as_view(), name="template-sync"),
    *router.urls,
]
