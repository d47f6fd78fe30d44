from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("profile", views.profile, name="profile"),
    path("team/webhooks/new", views.add_webhook, name="add_webhook"),
    path("team/webhooks/added", views.webhook_added, name="webhook_added"),
    path("team/webhooks/<int:pk>", views.change_webhook, name="change_webhook"),
    path("team/webhooks/<int:pk>/remove", views.remove_webhook, name="remove_webhook"),
    path("team/webhooks/<int:pk>/test", views.test_webhook, name="test_webhook"),
    path("team/deliveries/<int:pk>/redeliver", views.redeliver, name="redeliver"),
]
