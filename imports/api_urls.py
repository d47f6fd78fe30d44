from django.urls import path

from . import api

app_name = "api"

urlpatterns = [
    path("imports", api.imports_collection, name="imports"),
    path("imports/<int:pk>", api.import_detail, name="import"),
    path("vm-import-tasks", api.vm_import_tasks, name="vm_import_tasks"),
    path("openapi.json", api.openapi, name="openapi"),
]
