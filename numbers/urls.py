"""API routes of the numbers app (mounted under /api/)."""

from rest_framework import routers

from numbers.api import NumberViewSet

router = routers.SimpleRouter()
router.register("numbers", NumberViewSet, basename="number")

urlpatterns = router.urls
