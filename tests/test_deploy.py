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

from config.serve import configuration_problems, production_environment

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ["web", "worker", "beat"]


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("process", SERVICES)
def test_each_process_is_restarted_whenever_it_exits_and_stops_within_30s(process):
    service = unit(f"vm-import-portal-{process}.service")
    assert service["Service"]["Restart"] == "always"
    assert service["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
    assert service["Service"]["KillSignal"] == "SIGTERM"
    assert int(service["Service"]["TimeoutStopSec"]) <= 30
    assert service["Install"]["WantedBy"] == "vm-import-portal.target"
    assert "vm-import-portal-prepare.service" in service["Unit"]["Requires"]


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
