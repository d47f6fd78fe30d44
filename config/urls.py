from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "VM Import Portal: audit"
admin.site.site_title = "VM Import Portal audit"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("imports.api_urls")),
    path("", include("imports.urls")),
]
