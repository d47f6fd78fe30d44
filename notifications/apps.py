from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from imports.signals import import_ended, upload_finished

        from .receivers import create_deliveries, upload_finished_deliveries

        import_ended.connect(create_deliveries, dispatch_uid="notifications.import_ended")
        upload_finished.connect(
            upload_finished_deliveries, dispatch_uid="notifications.upload_finished"
        )
