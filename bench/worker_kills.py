"""Benchmark: a worker killed in the middle of its AWS calls, default settings.

    .venv/bin/python bench/worker_kills.py [--kills 20]

Starts the AWS emulator answering ImportVmImage only after --latency
seconds, a throwaway redis-server as the broker, and a Celery worker (with
beat) of --kills threads, as make serve runs it. Submits as many imports;
once every one is `submitting` (its call in flight), kills the worker with
SIGKILL, removes the latency, starts a worker again (as supervisord and
systemd do), and times how long each import takes to be accepted by AWS
again, then counts the images the emulator created per client token. The
lease and sweep settings are the defaults. Figures only.
"""

import argparse
import os
import signal
import subprocess
import tempfile
import time
import uuid

from serving import ROOT, RedisServer, production_environ, run_manage
from stack import CeleryWorker


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--latency", type=float, default=20)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
    with RedisServer() as redis:
        os.environ["CELERY_BROKER_URL"] = redis.url + "/0"
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from fakeaws.testing import running_emulator
        from imports import services
        from imports.models import ImageImport, Membership, Status, Team

        with running_emulator(step_seconds=0, latency=args.latency) as emulator:
            os.environ.update(emulator.environ())
            environ = production_environ(
                DATA_DIR=os.environ["DATA_DIR"],
                CELERY_BROKER_URL=redis.url + "/0",
                **emulator.environ(),
            )
            run_manage(environ, "migrate", "--noinput", "-v", "0")
            worker = CeleryWorker(environ, os.devnull, concurrency=args.kills)
            # Beat on its own: the kill is for the worker alone.
            beat = subprocess.Popen(
                [str(ROOT / ".venv/bin/celery"), "-A", "config", "beat", "--loglevel", "WARNING"],
                cwd=ROOT,
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                team, _ = Team.objects.get_or_create(name="bench")
                user = get_user_model().objects.create_user(f"bench-{uuid.uuid4().hex[:8]}")
                Membership.objects.create(team=team, user=user)
                imports = []
                for number in range(args.kills):
                    payload = {
                        "clientToken": str(uuid.uuid4()),
                        "name": f"killed {number}",
                        "semanticVersion": "1.0.0",
                        "platform": "Linux",
                        "vmImportTaskId": "import-ami-0123456789abcdef0",
                    }
                    image_import, _ = services.submit_import(team=team, user=user, payload=payload)
                    imports.append(image_import.pk)
                rows = ImageImport.objects.filter(pk__in=imports)
                deadline = time.monotonic() + 120
                while rows.filter(status=Status.SUBMITTING).count() < len(imports):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the imports were not all claimed")
                    time.sleep(0.2)
                time.sleep(1)  # every call is now waiting on the emulator
                killed_at = time.monotonic()
                os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
                emulator.latency(0)
                worker = CeleryWorker(environ, os.devnull, concurrency=args.kills)
                print(f"calls in hand when the worker was killed: {len(imports)}")

                recovered = {}
                deadline = time.monotonic() + 600
                while len(recovered) < len(imports) and time.monotonic() < deadline:
                    for pk, status in rows.values_list("pk", "status"):
                        if pk not in recovered and status not in (
                            Status.QUEUED,
                            Status.SUBMITTING,
                        ):
                            recovered[pk] = time.monotonic() - killed_at
                    time.sleep(0.5)
                calls = emulator.calls()
            finally:
                worker.stop()
                beat.terminate()
                beat.wait(timeout=60)

    times = sorted(recovered.values())
    tokens = rows.values_list("client_token", flat=True)
    created = calls.get("imagesCreated")
    per_token = calls.get("clientTokens", {})
    lease, sweep = settings.IMPORT_LEASE_SECONDS, settings.IMPORT_SWEEP_INTERVAL
    print(f"lease and sweep interval:       {lease} s and {sweep} s (the defaults)")
    print(f"imports accepted by AWS again:  {len(recovered)} of {len(imports)}")
    if times:
        print(f"recovery after the kill:        {times[0]:.0f} s to {times[-1]:.0f} s")
    over = sum(1 for seconds in times if seconds > 120)
    print(f"recovered in more than 2 min:   {over + len(imports) - len(recovered)}")
    print(f"images created by the emulator: {created} for {len(imports)} imports")
    print(f"calls per client token:         {sorted(per_token.get(t, 0) for t in tokens)}")


if __name__ == "__main__":
    main()
