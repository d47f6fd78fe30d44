from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from imports.signals import import_ended

        from .receivers import create_deliveries

        import_ended.connect(create_deliveries, dispatch_uid="notifications.create_deliveries")
