from django.apps import AppConfig
from django.db.models.signals import post_migrate

AUDITORS = "Auditors"


def ensure_auditors_group(sender, **kwargs):
    """The "Auditors" group: staff in it read every team's audit and change nothing."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=AUDITORS)
    readable = Permission.objects.filter(
        content_type__app_label__in=["imports", "auth"], codename__startswith="view_"
    ) | Permission.objects.filter(codename="audit_all_teams")
    group.permissions.set(readable)


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "VM imports"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .signals import import_ended
        from .tasks import queue_tagging
        from .teams import choose_team_on_sign_in

        user_logged_in.connect(choose_team_on_sign_in, dispatch_uid="choose_team_on_sign_in")
        import_ended.connect(queue_tagging, dispatch_uid="imports.queue_tagging")
        post_migrate.connect(ensure_auditors_group, sender=self)
