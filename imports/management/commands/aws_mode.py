from django.core.management.base import BaseCommand

from imports import aws


class Command(BaseCommand):
    help = (
        "Print 'aws' when AWS credentials and a region are configured, else 'emulator'. "
        "`make run` starts the local AWS emulator in the second case."
    )

    def handle(self, **options):
        self.stdout.write("aws" if aws.aws_configured() else "emulator")
