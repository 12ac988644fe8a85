"""The inbox in the admin: conversations, their threads and contacts (views in views.py).

Every member (agents included) reads and answers conversations; the inbox views are
added to the Conversation admin's URLs, behind the admin's login.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from accounts.tenancy import WorkspaceScopedAdmin
from config.admin import ReadOnlyAdminMixin
from conversations import views
from conversations.models import Contact, Conversation


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    # The plain list stays (scoped, read-only); people work in the inbox views below.
    list_display = ["contact", "number", "status", "assigned_to", "unread", "last_message_at"]
    list_filter = ["status", "number"]
    search_fields = ["contact__phone", "contact__name"]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        inbox = [
            path("inbox/", wrap(views.inbox), name="conversations_inbox"),
            path("inbox/list/", wrap(views.inbox_list), name="conversations_inbox_list"),
            path("inbox/<int:pk>/", wrap(views.thread), name="conversations_thread"),
            path("inbox/<int:pk>/poll/", wrap(views.thread_poll), name="conversations_poll"),
            path("inbox/<int:pk>/reply/", wrap(views.thread_reply), name="conversations_reply"),
            path(
                "inbox/<int:pk>/template/",
                wrap(views.thread_template),
                name="conversations_template",
            ),
            path("inbox/<int:pk>/action/", wrap(views.thread_action), name="conversations_action"),
            path("inbox/<int:pk>/typing/", wrap(views.thread_typing), name="conversations_typing"),
        ]
        return inbox + super().get_urls()


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["phone", "name", "first_seen_at", "last_inbound_at"]
    search_fields = ["phone", "name", "wa_id"]
    readonly_fields = [
        "workspace",
        "phone",
        "wa_id",
        "bsuid",
        "name",
        "attributes",
        "first_seen_at",
        "last_inbound_at",
    ]
