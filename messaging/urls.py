"""API routes of the sending engine (mounted under /api/)."""

from django.urls import path

from messaging.api import SendingStateView

urlpatterns = [path("sending/", SendingStateView.as_view(), name="sending-state")]
