"""The bell's number for the admin's header (notifications/bell.html)."""

from django import template

from notifications.selectors import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """The request user's unread notifications, counted once per request."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if request is None or user is None:
        return 0
    if not hasattr(request, "_wac_unread_notifications"):
        request._wac_unread_notifications = unread_count(user)
    return request._wac_unread_notifications
