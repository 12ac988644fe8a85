"""The product's admin site: the web UI's frame (branding, navigation by role, the dashboard).

``AdminConfig`` takes the place of ``django.contrib.admin`` in INSTALLED_APPS, so
``admin.site`` (what every app registers with) is ``AdminSite`` below, the way Django
documents overriding the default site. Imports of the apps happen inside the methods:
this module is loaded while the app registry is being populated.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig

from config.admin import can_configure


class AdminSite(admin.AdminSite):
    site_header = "WhatsApp campaigns"
    site_title = "WhatsApp campaigns"
    index_title = "Dashboard"
    # There is no public site: the admin is the product's UI ("View site" would be a 404).
    site_url = None
    index_template = "admin/wac_index.html"
    # The top navigation (base_site.html) leads to the main pages and the dashboard's
    # "All pages" to the rest; the sidebar would take a quarter of a 1440 px screen from
    # the lists.
    enable_nav_sidebar = False

    def each_context(self, request):
        context = super().each_context(request)
        user = getattr(request, "user", None)
        context["wac_can_configure"] = bool(user is not None and can_configure(user))
        return context

    def index(self, request, extra_context=None):
        """The home page is the dashboard: campaigns, sends, failures, numbers, alerts."""
        from django.utils import timezone

        from accounts.selectors import user_zone
        from config.dashboard import dashboard_context

        # In the zone of the user's workspace (settings.TIME_ZONE when they have several in
        # different zones): "today" starts at its midnight and every time shown is in it.
        with timezone.override(user_zone(request.user)):
            context = {**(extra_context or {}), **dashboard_context(request)}
            response = super().index(request, context)
            response.render()
        return response


class AdminConfig(DjangoAdminConfig):
    default_site = "config.adminsite.AdminSite"
