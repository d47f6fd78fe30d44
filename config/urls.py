from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from imports.monitoring import metrics_view

admin.site.site_header = "VM Import Portal: audit"
admin.site.site_title = "VM Import Portal audit"

urlpatterns = [
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
    path("api/", include("imports.api_urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("imports.urls")),
]
