from django.urls import path, re_path

from . import api, errors

app_name = "api"

urlpatterns = [
    path("imports", api.imports_collection, name="imports"),
    path("imports/<int:pk>", api.import_detail, name="import"),
    path("imports/<int:pk>/cancel", api.cancel_import, name="cancel"),
    path("vm-import-tasks", api.vm_import_tasks, name="vm_import_tasks"),
    path("openapi.json", api.openapi, name="openapi"),
]

# Last: any other URL under /api/ is the API's JSON 404. handler404 answers
# the same when DEBUG is off; with DEBUG on (make run) Django would answer
# an unresolved URL with its HTML debug page, which a script cannot read.
unknown_url = re_path(r"", errors.api_not_found)
urlpatterns.append(unknown_url)
