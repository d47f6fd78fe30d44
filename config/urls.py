from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from imports import health
from imports.monitoring import metrics_view

admin.site.site_header = "VM Import Portal: audit"
admin.site.site_title = "VM Import Portal audit"
# The audit list needs the width for its columns at 1280 px, not a second menu.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Django tries the patterns in order: first the paths asked most often,
    # the probes (every few seconds, from each load balancer), the API (one
    # prefix to test) and the pages, where every open import page asks for
    # its status every few hundred milliseconds (imports/urls.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include("imports.api_urls")),
    path("", include("imports.urls")),
    path("admin/", admin.site.urls),
    # Sign-in and passwords only: no e-mailed password resets (admins reset them).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("notifications.urls")),
    path("metrics", metrics_view, name="metrics"),
]

# Under /api/ every error is JSON in one shape; a dependency that is down is
# a 503, never a 500 (imports/errors.py).
handler400 = "imports.errors.bad_request"
handler403 = "imports.errors.permission_denied"
handler404 = "imports.errors.page_not_found"
handler500 = "imports.errors.server_error"
