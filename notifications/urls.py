"""API routes of notifications (mounted under /api/)."""

from rest_framework import routers

from notifications.api import ChannelViewSet, NotificationViewSet

router = routers.SimpleRouter()
router.register("notification-channels", ChannelViewSet, basename="notification-channel")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = router.urls
