"""The management commands `make run` relies on."""

import stat

from django.contrib.auth import get_user_model
from django.core.management import call_command

from imports.models import Membership, Team


def test_the_first_start_creates_an_admin_and_saves_the_credentials(db, settings, capsys, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    output = capsys.readouterr().out
    credentials = tmp_path / "admin-credentials.txt"
    username_line, password_line = credentials.read_text().splitlines()
    assert username_line == "username: admin"
    password = password_line.removeprefix("password: ")
    assert len(password) >= 16 and password in output
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert Membership.objects.get(user=admin).team.name == "default"


def test_later_starts_leave_the_admin_alone(db, settings, capsys, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    first = (tmp_path / "admin-credentials.txt").read_text()
    call_command("ensure_admin")
    assert "An admin already exists" in capsys.readouterr().out
    assert (tmp_path / "admin-credentials.txt").read_text() == first
    assert get_user_model().objects.count() == 1


def test_make_runs_import_bucket_goes_to_the_default_team_once_teams_have_buckets(
    db, settings, capsys, tmp_path
):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin", import_bucket="vm-import-portal-uploads")
    call_command("ensure_admin", import_bucket="another-bucket")  # a chosen bucket is kept
    team = Team.objects.get(name="default")
    output = capsys.readouterr().out
    # Team.import_bucket comes with disk imports (issue 9, the backend's half);
    # until it exists the option must change nothing and fail nothing.
    if hasattr(Team, "import_bucket"):
        assert team.import_bucket == "vm-import-portal-uploads"
        assert output.count("uploads disks to s3://") == 1
    else:
        assert "uploads disks" not in output
    assert get_user_model().objects.count() == 1
