"""Benchmark: a disk file through the portal's presigned multipart path vs boto3's upload_file.

    .venv/bin/python bench/upload.py [--mib 256] [--runs 3]

Starts moto's S3 and the portal (runserver) as processes of their own, with a
temporary SQLite database, signs in, and sends the same random file to the
same bucket, `--runs` times each way, alternating which goes first:

- as the page does (POST /imports/new, create, the parts' URLs signed in
  batches ahead of the PUTs, each part PUT straight to S3, complete), with
  upload.js's own figures read from static/js/upload.js: PARALLEL_PARTS parts
  in flight (Uppy's `limit`), SIGN_BATCH parts a batch, the next batch asked
  for when fewer than SIGN_AHEAD are ready;
- with boto3's `upload_file`, at the same part size (the portal's) and the
  same concurrency.

Prints each run's throughputs and ratio, then their medians and spread (the
goal is a ratio of at least 0.8), and the portal process's resident memory
before the first upload and at its peak (VmHWM) after the last: the bytes
never cross Django, so the peak stays where it was whatever the file's size.
Figures only: nothing passes or fails on time.
"""

import argparse
import os
import re
import socket
import statistics
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


def page_figures():
    """upload.js's PARALLEL_PARTS, SIGN_BATCH and SIGN_AHEAD: the bench does what the page does."""
    script = (ROOT / "static/js/upload.js").read_text()
    figures = {}
    for name in ("PARALLEL_PARTS", "SIGN_BATCH", "SIGN_AHEAD"):
        found = re.search(rf"const {name} = (\d+);", script)
        if not found:
            raise SystemExit(f"static/js/upload.js has no `const {name} = <number>;`")
        figures[name] = int(found.group(1))
    return figures


class SignedParts:
    """upload.js's SignedParts: the parts' URLs from batch requests, the next asked for ahead.

    (Without the page's re-signing of URLs close to their expiry: a run takes
    seconds, and the URLs last an hour.)
    """

    def __init__(self, session, base, key, part_count, figures):
        self.session, self.base, self.key = session, base, key
        self.part_count = part_count
        self.batch, self.ahead = figures["SIGN_BATCH"], figures["SIGN_AHEAD"]
        self.lock = threading.Lock()
        self.ready = {}  # part number -> URL
        self.pending = {}  # part number -> the batch request signing it
        self.highest = 0
        # The browser's fetch() runs beside the PUTs, outside Uppy's limit.
        self.requests = ThreadPoolExecutor(2)

    def url(self, number):
        for _ in range(3):
            with self.lock:
                if number in self.ready:
                    if self.highest < self.part_count and self.highest - number < self.ahead:
                        self.sign(self.highest + 1)
                    return self.ready.pop(number)
                if number not in self.pending:
                    self.sign(number)
                batch = self.pending[number]
            batch.result()
        raise RuntimeError(f"no URL for part {number}")

    def sign(self, first):
        """One batch request for the parts from `first` on that have no URL yet (under the lock)."""
        last = min(first + self.batch - 1, self.part_count)
        self.highest = max(self.highest, last)
        numbers = [
            number
            for number in range(first, last + 1)
            if number not in self.ready and number not in self.pending
        ]
        if numbers:
            batch = self.requests.submit(self.fetch, numbers)
            for number in numbers:
                self.pending[number] = batch

    def fetch(self, numbers):
        answer = self.session.get(
            f"{self.base}/batch",
            params={"key": self.key, "partNumbers": ",".join(map(str, numbers))},
        )
        answer.raise_for_status()
        with self.lock:
            for number, url in answer.json()["presignedUrls"].items():
                self.ready[int(number)] = url
            for number in numbers:
                self.pending.pop(number, None)


def portal_upload(session, portal, path, figures):
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
    signed = SignedParts(session, base, key, created["partCount"], figures)
    # One kept-alive connection to S3 per thread, as a browser keeps them.
    local = threading.local()

    def send(number):
        url = signed.url(number)
        with path.open("rb") as disk:
            disk.seek((number - 1) * part_size)
            data = disk.read(part_size)
        if not hasattr(local, "s3"):
            local.s3 = requests.Session()
        put = local.s3.put(url, data=data)
        put.raise_for_status()
        return {"PartNumber": number, "ETag": put.headers["ETag"]}

    with ThreadPoolExecutor(figures["PARALLEL_PARTS"]) as pool:
        parts = list(pool.map(send, range(1, created["partCount"] + 1)))
    signed.requests.shutdown()
    done = session.post(
        f"{base}/complete", params={"key": key}, json={"parts": parts}, headers=headers
    )
    done.raise_for_status()
    return part_size, key


def boto3_upload(s3, path, part_size, parallel):
    config = TransferConfig(
        multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=parallel
    )
    s3.upload_file(str(path), BUCKET, "boto3/bench.raw", Config=config)
    return "boto3/bench.raw"


def timed(upload):
    started = time.perf_counter()
    key = upload()
    return time.perf_counter() - started, key


def spread(values):
    return f"median {statistics.median(values):6.2f}, {min(values):.2f}-{max(values):.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="the file's size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="uploads each way")
    args = parser.parse_args()
    figures = page_figures()
    parallel = figures["PARALLEL_PARTS"]
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

        part_size = None
        portal_rates, boto3_rates, ratios = [], [], []
        print(f"file: {args.mib} MiB; {parallel} parts in flight, signed {figures['SIGN_BATCH']}")
        for run in range(1, args.runs + 1):

            def through_portal():
                nonlocal part_size
                part_size, key = portal_upload(session, portal, path, figures)
                return key

            def through_boto3():
                return boto3_upload(s3, path, part_size, parallel)

            # boto3 needs the portal's part size: the first run starts with the portal,
            # then the order alternates, so neither always has moto warmed up for it.
            order = ["portal", "boto3"] if run % 2 else ["boto3", "portal"]
            seconds = {}
            for name in order:
                seconds[name], key = timed(through_portal if name == "portal" else through_boto3)
                s3.delete_object(Bucket=BUCKET, Key=key)  # moto holds objects in memory
            portal_rate, boto3_rate = args.mib / seconds["portal"], args.mib / seconds["boto3"]
            portal_rates.append(portal_rate)
            boto3_rates.append(boto3_rate)
            ratios.append(portal_rate / boto3_rate)
            print(
                f"run {run} (parts of {part_size // MIB} MiB, {' first, '.join(order)} second): "
                f"portal {portal_rate:6.1f} MiB/s, boto3 {boto3_rate:6.1f} MiB/s, "
                f"ratio {ratios[-1]:.2f}"
            )
        _, rss_peak = memory(web.pid)
        print(f"portal (presigned multipart) MiB/s: {spread(portal_rates)}")
        print(f"boto3 upload_file MiB/s:            {spread(boto3_rates)}")
        print(f"ratio portal/boto3:                 {spread(ratios)} (goal: at least 0.8)")
        print(
            f"portal process RSS: {rss_before:.0f} MiB before, peak {rss_peak:.0f} MiB during "
            f"{args.runs} uploads of {args.mib} MiB"
        )
    finally:
        web.terminate()
        moto.terminate()
        web.wait(10)
        moto.wait(10)


if __name__ == "__main__":
    main()
