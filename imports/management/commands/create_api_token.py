from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from imports.models import ApiToken, Membership, Team


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME acting in TEAM, creating the user (with no "
        "usable password), the team and the membership if absent. The token is printed "
        "alone on the last line; only its digest is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--team", required=True, help="the team the token acts for")
        parser.add_argument("--name", default="", help="a label to recognise the token by")
        parser.add_argument(
            "--role",
            choices=Membership.Role.values,
            default=Membership.Role.SUBMITTER,
            help="role for a new membership (an existing one is left as it is)",
        )

    @transaction.atomic
    def handle(self, username, team, name, role, **options):
        user, user_created = get_user_model().objects.get_or_create(username=username)
        if user_created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        team_obj, _ = Team.objects.get_or_create(name=team)
        Membership.objects.get_or_create(team=team_obj, user=user, defaults={"role": role})
        _, raw_token = ApiToken.issue(user=user, team=team_obj, name=name)
        self.stdout.write(f"API token for {username} in team {team} (shown only now):")
        self.stdout.write(raw_token)
