from django.urls import path

from . import team_views, views

app_name = "imports"

urlpatterns = [
    path("", views.history, name="history"),
    path("imports/new", views.new_import, name="new"),
    path("imports/new/validate/<str:field>", views.validate_field, name="validate"),
    path("imports/new/vm-import-tasks", views.vm_import_tasks, name="vm_import_tasks"),
    path("imports/<int:pk>", views.detail, name="detail"),
    path("imports/<int:pk>/cancel", views.cancel, name="cancel"),
    path("imports/<int:pk>/status", views.status, name="status"),
    path("imports/in-flight", views.history_poll, name="history_poll"),
    path("teams/switch", views.switch_team, name="switch_team"),
    path("team", team_views.team_settings, name="team"),
    path("team/members", team_views.change_member, name="change_member"),
    path("team/members/<int:pk>/remove", team_views.remove_member, name="remove_member"),
    path("tokens", team_views.api_tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", team_views.revoke_token, name="revoke_token"),
]
