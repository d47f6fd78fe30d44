"""`manage.py fakeaws`: the emulator's own command line, for those used to manage.py."""

from pathlib import Path

from django.core.management.base import BaseCommand

from fakeaws import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION

    def run_from_argv(self, argv):
        # The emulator touches neither Django nor the database: its argparse
        # command line takes every argument (and --help) as it is.
        cli.main(argv[2:], prog=f"{Path(argv[0]).name} fakeaws")
