"""URL map: admin, REST API under /api/, webhooks, health."""

from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from accounts import tokens
from accounts import views as accounts_views
from config.health import healthz
from webhooks.views import whatsapp_webhook


def favicon(request) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico whatever a page says: the same icon, served locally.

    Resolved per request: the hashed static name exists only once collectstatic ran."""
    return HttpResponsePermanentRedirect(static("wac/favicon.ico"))


api_patterns = [
    path("auth/token/", tokens.TokenLogin.as_view(), name="api-token"),
    path("auth/logout/", tokens.TokenLogout.as_view(), name="api-logout"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("workspaces/", accounts_api.WorkspaceList.as_view(), name="workspace-list"),
    path("workspaces/<int:pk>/", accounts_api.WorkspaceDetail.as_view(), name="workspace-detail"),
    path("", include("numbers.urls")),
    path("", include("templates_sync.urls")),
    path("", include("campaigns.urls")),
    path("", include("messaging.urls")),
    path("", include("notifications.urls")),
    path("", include("conversations.urls")),
    path("", include("automation.urls")),
]

urlpatterns = [
    # Before the admin's own: the same page, with the login lockout's 429.
    path("admin/login/", accounts_views.admin_login),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("webhooks/whatsapp/", whatsapp_webhook, name="whatsapp-webhook"),
]
