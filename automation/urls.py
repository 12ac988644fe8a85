"""API routes for the automatic replies (mounted under /api/)."""

from django.urls import path
from rest_framework import routers

from automation.api import AutomationSettingsView, KeywordRuleViewSet

router = routers.SimpleRouter()
router.register("keyword-rules", KeywordRuleViewSet, basename="keyword-rule")

urlpatterns = [
    path("automation/", AutomationSettingsView.as_view(), name="automation-settings"),
    *router.urls,
]
