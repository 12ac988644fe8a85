"""URL map: admin, REST API under /api/, webhooks, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from accounts import tokens
from accounts import views as accounts_views
from config.health import healthz
from webhooks.views import whatsapp_webhook

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
]

urlpatterns = [
    # Before the admin's own: the same page, with the login lockout's 429.
    path("admin/login/", accounts_views.admin_login),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("healthz", healthz, name="healthz"),
    path("webhooks/whatsapp/", whatsapp_webhook, name="whatsapp-webhook"),
]

admin.site.site_header = "WhatsApp campaigns"
admin.site.site_title = "WhatsApp campaigns"
