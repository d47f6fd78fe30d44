import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from imports.models import Membership, Team

DEFAULT_TEAM = "default"


class Command(BaseCommand):
    help = (
        "On the first start, create an admin with a random password in the team "
        "'default', print the credentials and write them to "
        "$DATA_DIR/admin-credentials.txt. Does nothing once a superuser exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--import-bucket",
            metavar="BUCKET",
            help="Give the team 'default' this S3 bucket for disk uploads, if it has none "
            "(make run passes the local emulator's).",
        )

    def handle(self, username, import_bucket=None, **options):
        self.create_admin(username)
        if import_bucket:
            self.give_default_team_a_bucket(import_bucket)

    def create_admin(self, username):
        credentials_file = settings.DATA_DIR / "admin-credentials.txt"
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            where = f" (see {credentials_file})" if credentials_file.exists() else ""
            self.stdout.write(f"An admin already exists{where}.")
            return
        password = secrets.token_urlsafe(16)
        with transaction.atomic():
            admin = User.objects.create_superuser(username=username, password=password)
            team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
            Membership.objects.create(team=team, user=admin, role=Membership.Role.ADMIN)
        # Created owner-only from the start: the file holds a password.
        fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {username}\npassword: {password}\n")
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the admin user (team '{DEFAULT_TEAM}'), saved to {credentials_file}:\n"
                f"  username: {username}\n  password: {password}"
            )
        )

    def give_default_team_a_bucket(self, bucket):
        team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
        if team.import_bucket:
            return  # chosen by someone: kept
        team.import_bucket = bucket
        team.save(update_fields=["import_bucket"])
        self.stdout.write(f"The team '{DEFAULT_TEAM}' uploads disks to s3://{bucket}.")
