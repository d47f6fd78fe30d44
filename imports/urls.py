from django.urls import path

from . import invitation_views, team_views, upload_views, views

app_name = "imports"

urlpatterns = [
    # First, the paths asked most often (config/urls.py): every open import
    # page polls its status, and the history its imports in flight.
    path("imports/<int:pk>/status", views.status, name="status"),
    path("imports/in-flight", views.history_poll, name="history_poll"),
    path("", views.history, name="history"),
    path("imports/new", views.new_import, name="new"),
    path("imports/new/validate/<str:field>", views.validate_field, name="validate"),
    path("imports/new/vm-import-tasks", views.vm_import_tasks, name="vm_import_tasks"),
    path("imports/new/bucket-files", views.bucket_files, name="bucket_files"),
    path("imports/<int:pk>", views.detail, name="detail"),
    path("imports/<int:pk>/cancel", views.cancel, name="cancel"),
    # Companion's routes under the import, so @uppy/aws-s3's `endpoint`
    # option can be /imports/<pk>/ as it is.
    path("imports/<int:pk>/s3/multipart", upload_views.create_upload, name="upload_create"),
    path("imports/<int:pk>/s3/multipart/<str:upload_id>", upload_views.upload, name="upload"),
    path(
        "imports/<int:pk>/s3/multipart/<str:upload_id>/complete",
        upload_views.complete_upload,
        name="upload_complete",
    ),
    path(
        "imports/<int:pk>/s3/multipart/<str:upload_id>/batch",
        upload_views.sign_parts,
        name="upload_parts",
    ),
    path(
        "imports/<int:pk>/s3/multipart/<str:upload_id>/<int:part_number>",
        upload_views.sign_part,
        name="upload_part",
    ),
    path("teams/switch", views.switch_team, name="switch_team"),
    path("team", team_views.team_settings, name="team"),
    path("team/activity", team_views.team_activity, name="team_activity"),
    path("team/check-setup", team_views.check_setup, name="check_setup"),
    path("team/members", team_views.change_member, name="change_member"),
    path("team/members/<int:pk>/remove", team_views.remove_member, name="remove_member"),
    path("team/invitations/resend", team_views.resend_invitation, name="resend_invitation"),
    # The e-mailed link: ?team=&uid=&token=, then the same address without them.
    path("invitation", invitation_views.accept_invitation, name="accept_invitation"),
    path("tokens", team_views.api_tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", team_views.revoke_token, name="revoke_token"),
]
