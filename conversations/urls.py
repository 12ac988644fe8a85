"""API routes for contacts and conversations (mounted under /api/)."""

from rest_framework import routers

from conversations.api import ContactViewSet, ConversationViewSet

router = routers.SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("conversations", ConversationViewSet, basename="conversation")

urlpatterns = router.urls
