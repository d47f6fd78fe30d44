"""Benchmark: a disk file through the portal's presigned multipart path vs boto3's upload_file.

    .venv/bin/python bench/upload.py [--mib 128] [--parallel 4]

Starts moto's S3 and the portal (runserver) as processes of their own, with a
temporary SQLite database, signs in, and sends the same random file to the
same bucket twice: as the page does (POST /imports/new, create, one signed
URL per part from the portal, each part PUT straight to S3, `--parallel` at
a time, complete), and with boto3's `upload_file` (same part size and
concurrency). Prints both throughputs and their ratio (the goal is at least
0.8), and the portal process's resident memory before the upload and at its
peak (VmHWM) after: the bytes never cross Django, so the peak stays where it
was whatever the file's size. Figures only: nothing passes or fails on time.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)

import boto3  # noqa: E402
import django  # noqa: E402
import requests  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from imports.models import Membership, Team  # noqa: E402

BUCKET = "bench-imports"
PASSWORD = "bench-password-1"
MIB = 1024 * 1024


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port}")


def start(command, port, env):
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port)
    return process


def memory(pid):
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def set_up_team():
    call_command("migrate", verbosity=0)
    team = Team.objects.create(
        name="bench", import_bucket=BUCKET, import_prefix="vm-imports/", vm_import_role="vmimport"
    )
    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    Membership.objects.create(team=team, user=user, role=Membership.Role.SUBMITTER)


def sign_in(portal):
    session = requests.Session()
    session.get(f"{portal}/accounts/login/").raise_for_status()
    answer = session.post(
        f"{portal}/accounts/login/",
        data={
            "username": "bench",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
    )
    answer.raise_for_status()
    return session


def portal_upload(session, portal, path, parallel):
    """What upload.js and Uppy do, without the browser: the portal signs, S3 takes the bytes."""
    size = path.stat().st_size
    headers = {"X-CSRFToken": session.cookies["csrftoken"]}
    answer = session.post(
        f"{portal}/imports/new",
        data={
            "clientToken": str(uuid.uuid4()),
            "name": "Bench upload",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "source": "upload",
            "format": "raw",
            "fileName": path.name,
            "fileSize": str(size),
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
        headers={**headers, "Accept": "application/json"},
    )
    answer.raise_for_status()
    upload = answer.json()["upload"]
    created = session.post(
        portal + upload["createUrl"], json={"type": "application/octet-stream"}, headers=headers
    ).json()
    upload_id, key, part_size = created["uploadId"], created["key"], created["partSize"]
    base = f"{portal}{upload['endpoint']}s3/multipart/{upload_id}"
    # One kept-alive connection to S3 per thread, as a browser keeps them.
    local = threading.local()

    def send(number):
        signed = session.get(f"{base}/{number}", params={"key": key}).json()
        with path.open("rb") as disk:
            disk.seek((number - 1) * part_size)
            data = disk.read(part_size)
        if not hasattr(local, "s3"):
            local.s3 = requests.Session()
        put = local.s3.put(signed["url"], data=data)
        put.raise_for_status()
        return {"PartNumber": number, "ETag": put.headers["ETag"]}

    with ThreadPoolExecutor(parallel) as pool:
        parts = list(pool.map(send, range(1, created["partCount"] + 1)))
    done = session.post(
        f"{base}/complete", params={"key": key}, json={"parts": parts}, headers=headers
    )
    done.raise_for_status()
    return part_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=128, help="the file's size in MiB")
    parser.add_argument("--parallel", type=int, default=4, help="parts in flight (Uppy: 4)")
    args = parser.parse_args()
    set_up_team()

    s3_port, web_port = free_port(), free_port()
    s3_url, portal = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{web_port}"
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": s3_url, "DEBUG": "1"}
    python = sys.executable
    moto = start([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port, env)
    web = start(
        [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"], web_port, env
    )
    try:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        path = Path(os.environ["DATA_DIR"]) / "bench.raw"
        with path.open("wb") as disk:
            for _ in range(args.mib):
                disk.write(os.urandom(MIB))
        session = sign_in(portal)
        session.get(f"{portal}/imports/new").raise_for_status()  # the page, warmed up
        rss_before, _ = memory(web.pid)

        started = time.perf_counter()
        part_size = portal_upload(session, portal, path, args.parallel)
        portal_seconds = time.perf_counter() - started
        _, rss_peak = memory(web.pid)

        config = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=args.parallel,
        )
        started = time.perf_counter()
        s3.upload_file(str(path), BUCKET, "boto3/bench.raw", Config=config)
        boto3_seconds = time.perf_counter() - started

        portal_rate, boto3_rate = args.mib / portal_seconds, args.mib / boto3_seconds
        print(f"file: {args.mib} MiB, parts of {part_size // MIB} MiB, {args.parallel} in flight")
        print(f"portal (presigned multipart): {portal_seconds:6.2f} s  {portal_rate:7.1f} MiB/s")
        print(f"boto3 upload_file:            {boto3_seconds:6.2f} s  {boto3_rate:7.1f} MiB/s")
        print(f"ratio portal/boto3: {portal_rate / boto3_rate:.2f} (goal: at least 0.8)")
        print(
            f"portal process RSS: {rss_before:.0f} MiB before, peak {rss_peak:.0f} MiB during "
            f"(the file is {args.mib} MiB)"
        )
    finally:
        web.terminate()
        moto.terminate()
        web.wait(10)
        moto.wait(10)


if __name__ == "__main__":
    main()
