"""The shipped process definitions: systemd units, supervisord's and gunicorn's configuration.

The units are parsed here, and checked by `systemd-analyze verify` where
Debian's systemd is installed (CI installs it), on copies pointed at this
checkout: verify wants every command to exist.
"""

import configparser
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.serve import PREPARATION, configuration_problems, production_environment

from .sockets import closed_port

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ["web", "worker", "beat"]


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def readme_section(title):
    """The README's `### title` section, up to the next heading of its level."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else None]


def units_the_readme_enables():
    """The units its `systemctl enable` commands name, `.service` added as systemctl adds it."""
    enabled = set()
    for line in readme_section("systemd").splitlines():
        words = line.split("#", 1)[0].split()
        if words[:3] == ["sudo", "systemctl", "enable"]:
            names = [word for word in words[3:] if not word.startswith("-")]
            enabled |= {name if "." in name else f"{name}.service" for name in names}
    return enabled


@pytest.mark.parametrize("process", SERVICES)
def test_each_process_is_restarted_whenever_it_exits_and_stops_within_30s(process):
    service = unit(f"vm-import-portal-{process}.service")
    assert service["Service"]["Restart"] == "always"
    assert service["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
    assert service["Service"]["KillSignal"] == "SIGTERM"
    assert int(service["Service"]["TimeoutStopSec"]) <= 30
    assert service["Install"]["WantedBy"] == "vm-import-portal.target"
    assert "vm-import-portal-prepare.service" in service["Unit"]["Requires"]


def test_the_readme_enables_the_target_that_starts_the_services_at_boot():
    # `systemctl enable` of a service only makes the target want it: with the
    # target itself not enabled, nothing started after a reboot.
    enabled = units_the_readme_enables()
    for process in SERVICES:
        name = f"vm-import-portal-{process}.service"
        assert name in enabled, f"the README never enables {name}"
        wanted_by = unit(name)["Install"]["WantedBy"]
        assert wanted_by in enabled, f"the README enables {name} but not {wanted_by}, its starter"
    assert unit("vm-import-portal.target")["Install"]["WantedBy"] == "multi-user.target"
    for name in enabled:  # `enable` does nothing for a unit without an [Install] section
        assert unit(name).has_section("Install"), f"{name} has nothing to enable"


@pytest.mark.parametrize("process", SERVICES)
def test_the_readme_gives_each_service_the_time_to_stop_its_unit_gives(process):
    name = f"vm-import-portal-{process}.service"
    seconds = unit(name)["Service"]["TimeoutStopSec"]
    row = next(
        line for line in readme_section("systemd").splitlines() if line.startswith(f"| `{name}`")
    )
    assert f"{seconds} s to stop" in row


def test_every_machine_s_preparation_migrates_one_machine_at_a_time():
    # Django's migrate, started on several machines at once, creates the
    # same tables twice and fails; migrate_exclusively takes turns.
    commands = [
        line.removeprefix("ExecStart=")
        for line in (UNITS / "vm-import-portal-prepare.service").read_text().splitlines()
        if line.startswith("ExecStart=")
    ]
    assert commands[0].endswith("manage.py migrate_exclusively")
    assert not any(" migrate " in f"{command} " for command in commands)
    assert PREPARATION[0] == ["migrate_exclusively"]


def test_only_the_worker_s_main_process_gets_sigterm():
    # KillMode=mixed: the worker finishes the tasks its threads hold (Celery's
    # warm shutdown) rather than each being killed mid-call.
    assert unit("vm-import-portal-worker.service")["Service"]["KillMode"] == "mixed"


def test_the_worker_runs_celery_s_threads_pool_under_both_supervisors():
    # Its calls wait on AWS: threads hold them at once in one process, with
    # no hop to a child and back per task (README, "The worker's pool").
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "deploy" / "supervisord.conf")
    assert "worker --pool threads " in conf["program:worker"]["command"]
    service = unit("vm-import-portal-worker.service")["Service"]
    assert "worker --pool threads --concurrency ${CELERY_CONCURRENCY} " in service["ExecStart"]
    assert service["Environment"] == "CELERY_CONCURRENCY=8"  # the env file may override it


@pytest.mark.parametrize("program", ["worker", "beat"])
def test_celery_prints_no_banner_under_either_supervisor(program):
    # Its start-up banner is plain text among JSON log lines (LOG_FORMAT=json).
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "deploy" / "supervisord.conf")
    assert "/celery --quiet -A config " in conf[f"program:{program}"]["command"]
    service = unit(f"vm-import-portal-{program}.service")["Service"]
    assert "/celery --quiet -A config " in service["ExecStart"]


def test_the_web_unit_uses_the_shipped_gunicorn_configuration():
    command = unit("vm-import-portal-web.service")["Service"]["ExecStart"]
    assert "--config /opt/vm-import-portal/deploy/gunicorn.conf.py" in command
    assert (ROOT / "deploy" / "gunicorn.conf.py").is_file()


@pytest.mark.skipif(
    not shutil.which("systemd-analyze") and not os.environ.get("CI"),
    reason="Debian's systemd is not installed (.ci/run installs it)",
)
def test_systemd_analyze_verifies_the_units(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text((UNITS / "env.example").read_text())
    venv_bin = ROOT / ".venv" / "bin"
    if not (venv_bin / "celery").exists():
        pytest.skip("no .venv in this checkout")
    names = []
    for path in sorted(UNITS.glob("vm-import-portal*")):
        text = path.read_text()
        text = text.replace("/opt/vm-import-portal", str(ROOT))
        text = text.replace("/etc/vm-import-portal/env", str(env_file))
        text = text.replace("User=portal", "User=root").replace("Group=portal", "Group=root")
        (tmp_path / path.name).write_text(text)
        names.append(path.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on some mistakes (an unknown value is "ignored"): any
    # word from it is a finding.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_supervisord_restarts_all_three_and_stops_them_in_time():
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "deploy" / "supervisord.conf")
    assert conf["group:portal"]["programs"] == "web,worker,beat"
    for process in SERVICES:
        program = conf[f"program:{process}"]
        assert program["autorestart"] == "true"
        assert program["stopsignal"] == "TERM"
        assert int(program["stopwaitsecs"]) <= 25  # all stop together, within 30 s


def test_make_serve_names_everything_missing_at_once():
    problems = configuration_problems({})
    assert [problem.split()[0] for problem in problems] == [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CACHE_URL",
    ]


def test_make_serve_refuses_the_embedded_engines():
    problems = configuration_problems(
        {
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "portal.example.com",
            "DATABASE_URL": "sqlite:///portal.sqlite3",
            "CELERY_BROKER_URL": "filesystem://",
            "CACHE_URL": "locmem://",
        }
    )
    assert [problem.split()[0] for problem in problems] == [
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CACHE_URL",
    ]


def test_make_serve_accepts_postgres_with_redis_or_rabbitmq():
    for broker in ("redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672/portal"):
        environ = {
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "portal.example.com",
            "DATABASE_URL": "postgres://portal@db:5432/portal",
            "CELERY_BROKER_URL": broker,
            "CACHE_URL": "redis://127.0.0.1:6379/1",
        }
        assert configuration_problems(environ) == []


def make_serve(data_dir, **variables):
    """`python -m config.serve` on a production configuration, `variables` on top: (status, output).

    Nothing listens on the database's port, so a run that passed its checks
    would stop at the migrations, before supervisord.
    """
    environ = {
        **os.environ,
        "SECRET_KEY": "serve-test-" + "k" * 50,
        "ALLOWED_HOSTS": "portal.example.com",
        "DATABASE_URL": f"postgres://portal@127.0.0.1:{closed_port()}/portal",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "CACHE_URL": f"redis://127.0.0.1:{closed_port()}/1",
        "DATA_DIR": str(data_dir),
    }
    for name in ("DEBUG", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE"):
        environ.pop(name, None)
    environ.update(variables)
    result = subprocess.run(
        [sys.executable, "-m", "config.serve"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json, not 'xml'"),
        ("DEBUG", "nope", "DEBUG must be one of 1/0/true/false/yes/no/on/off, not 'nope'"),
    ],
)
def test_make_serve_names_a_value_the_settings_refuse_in_one_line(
    tmp_path, variable, value, message
):
    status, output = make_serve(tmp_path, **{variable: value})
    assert status == 2, output
    assert f"  - {message}\n" in output
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 4, output


def test_make_serve_names_the_value_the_settings_refuse_beside_the_missing_ones(tmp_path):
    status, output = make_serve(tmp_path, LOG_FORMAT="xml", CACHE_URL="")
    assert status == 2, output
    assert "  - CACHE_URL is not set" in output
    assert "  - LOG_FORMAT must be text or json, not 'xml'" in output
    assert "Traceback" not in output


def test_make_serve_says_in_a_few_lines_that_it_cannot_reach_the_database(tmp_path):
    status, output = make_serve(tmp_path)
    assert status == 1, output
    assert "CommandError: Cannot reach the database portal: " in output
    assert "Connection refused" in output
    assert output.rstrip().endswith(
        "make serve: manage.py migrate_exclusively failed (exit 1); its own message is above."
    )
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 4, output


def test_make_serve_defaults_to_production_and_json_logs(tmp_path):
    environ = production_environment({"DATA_DIR": str(tmp_path)})
    assert environ["DEBUG"] == "0"
    assert environ["LOG_FORMAT"] == "json"
    assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus")
    chosen = production_environment({"DEBUG": "1", "LOG_FORMAT": "text"})
    assert (chosen["DEBUG"], chosen["LOG_FORMAT"]) == ("1", "text")  # set: kept


def test_make_run_gives_a_stopping_process_more_than_honcho_s_5_seconds(tmp_path):
    # A process that needs 6 s to stop after SIGTERM, as a worker finishing
    # its AWS call does, beside one that stops at once, as the web does:
    # honcho alone would SIGKILL the slow one 5 s after the quick one stopped.
    (tmp_path / "Procfile").write_text(
        "slow: trap 'sleep 6; echo finished cleanly; exit 0' TERM; echo up; "
        "while true; do sleep 0.1; done\n"
        "quick: while true; do sleep 0.1; done\n"
    )
    honcho = subprocess.Popen(
        [sys.executable, "-m", "config.procfile", "start", "--procfile", "Procfile"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Both started (honcho never stops a process that starts after Ctrl-C).
    seen, deadline = "", time.monotonic() + 20
    for line in honcho.stdout:
        seen += line
        if "| up" in seen and "quick.1 started" in seen:
            break
        assert time.monotonic() < deadline, seen
    honcho.send_signal(signal.SIGINT)
    output = honcho.communicate(timeout=30)[0]
    assert "finished cleanly" in output
    assert "SIGKILL" not in output


def test_a_production_machine_installs_the_portals_requirements_only():
    # make serve and the README's systemd steps: no moto, Playwright or pytest there.
    plan = subprocess.run(
        ["make", "-n", "-B", "serve"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "pip install --quiet --disable-pip-version-check -r requirements.txt" in plan
    assert "requirements-dev.txt" not in plan
    readme = (ROOT / "README.md").read_text()
    assert "sudo make install-production" in readme and "sudo make install\n" not in readme
