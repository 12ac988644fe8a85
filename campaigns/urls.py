"""API routes for campaigns and suppressions (mounted under /api/)."""

from django.urls import path
from rest_framework import routers

from campaigns.api import CSV_RENDERERS, CampaignViewSet, SuppressionViewSet

router = routers.SimpleRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("suppressions", SuppressionViewSet, basename="suppression")

urlpatterns = [
    # api.md names the exports without a trailing slash, as files.
    path(
        "campaigns/<int:pk>/report.csv",
        CampaignViewSet.as_view({"get": "report"}, renderer_classes=CSV_RENDERERS),
        name="campaign-report-csv",
    ),
    path(
        "campaigns/<int:pk>/import-errors.csv",
        CampaignViewSet.as_view({"get": "import_errors"}, renderer_classes=CSV_RENDERERS),
        name="campaign-import-errors-csv",
    ),
    *router.urls,
]
