"""Benchmark: a disk file through the portal's presigned multipart path vs boto3's upload_file.

    .venv/bin/python bench/upload.py [--mib 256] [--runs 3] [--client python|chromium]
                                     [--sign-each-part]

Starts moto's S3 and the portal (runserver) as processes of their own, with a
temporary SQLite database, signs in, and sends the same random file to the
same bucket, `--runs` times each way, alternating which goes first:

- as the page does. `--client python` (the default) does what upload.js and
  Uppy do, in threads: POST /imports/new, create, the parts' URLs signed in
  batches ahead of the PUTs, each part preflighted (OPTIONS, as the browser
  must: every part's URL is a new one) and PUT straight to S3, complete, with
  upload.js's own figures read from static/js/upload.js: PARALLEL_PARTS parts
  in flight (Uppy's `limit`), SIGN_BATCH parts a batch, the next batch asked
  for when fewer than SIGN_AHEAD are ready. `--client chromium` drives the
  page itself in Debian's Chromium (Playwright): New import, the file
  chosen, Start import, timed until the page leaves for the import's page.
  `--sign-each-part` (python client) asks for each part's URL just before its
  PUT, as the page did before it signed in batches: the cost of that.
- with boto3's `upload_file`, at the same part size (the portal's), the
  same concurrency, and, like the browser, no optional checksums.

Prints each run's throughputs and ratio, then their medians and spread (the
goal is a ratio of at least 0.8); the CPU seconds a GiB each way took of
every process (moto, the portal, the client, Chromium), which the other
users of a shared machine disturb far less than the time; the load average;
and the portal process's resident memory before the first upload and at its
peak (VmHWM) after the last: the bytes never cross Django, so the peak stays
where it was whatever the file's size. Figures only: nothing passes or fails
on time.
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
from botocore.config import Config  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from serving import free_port  # noqa: E402

from imports import aws  # noqa: E402
from imports.models import Membership, Team  # noqa: E402

BUCKET = "bench-imports"
PASSWORD = "bench-password-1"
MIB = 1024 * 1024


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


def tree_cpu_seconds():
    """CPU seconds (user and system) used so far by this process and every process under it.

    moto, the portal, the bench's own threads and Chromium: what each upload
    costs the machine, a figure that the other users of a shared machine
    disturb far less than the time it takes.
    """
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    mine, grown = {os.getpid()}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= children
        grown = bool(children)
    return sum(used[pid] for pid in mine) / os.sysconf("SC_CLK_TCK")


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

    def close(self):
        self.requests.shutdown()


class EachPartSigned:
    """Before the batches: Uppy's own signPart, one request to the portal just before each PUT."""

    def __init__(self, session, base, key):
        self.session, self.base, self.key = session, base, key

    def url(self, number):
        answer = self.session.get(f"{self.base}/{number}", params={"key": self.key})
        answer.raise_for_status()
        return answer.json()["url"]

    def close(self):
        pass


def new_upload_import(session, portal, path):
    """POST /imports/new as upload.js sends it: the import's upload answer."""
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
            "fileSize": str(path.stat().st_size),
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Accept": "application/json"},
    )
    answer.raise_for_status()
    return answer.json()["upload"]


def python_upload(session, portal, path, figures, sign_each_part=False):
    """What upload.js and Uppy do, without the browser: the portal signs, S3 takes the bytes."""
    headers = {"X-CSRFToken": session.cookies["csrftoken"]}
    upload = new_upload_import(session, portal, path)
    created = session.post(
        portal + upload["createUrl"], json={"type": "application/octet-stream"}, headers=headers
    ).json()
    upload_id, key, part_size = created["uploadId"], created["key"], created["partSize"]
    base = f"{portal}{upload['endpoint']}s3/multipart/{upload_id}"
    if sign_each_part:
        signed = EachPartSigned(session, base, key)
    else:
        signed = SignedParts(session, base, key, created["partCount"], figures)
    # One kept-alive connection to S3 per thread, as a browser keeps them.
    local = threading.local()
    origin = {"Origin": portal}

    def send(number):
        url = signed.url(number)
        with path.open("rb") as disk:
            disk.seek((number - 1) * part_size)
            data = disk.read(part_size)
        if not hasattr(local, "s3"):
            local.s3 = requests.Session()
        # A PUT to another origin is preflighted, and each part's URL is a new
        # one, so the browser's preflight cache never answers for it.
        preflight = local.s3.options(
            url, headers={**origin, "Access-Control-Request-Method": "PUT"}
        )
        preflight.raise_for_status()
        put = local.s3.put(url, data=data, headers=origin)
        put.raise_for_status()
        return {"PartNumber": number, "ETag": put.headers["ETag"]}

    with ThreadPoolExecutor(figures["PARALLEL_PARTS"]) as pool:
        parts = list(pool.map(send, range(1, created["partCount"] + 1)))
    signed.close()
    done = session.post(
        f"{base}/complete", params={"key": key}, json={"parts": parts}, headers=headers
    )
    done.raise_for_status()


class ChromiumPage:
    """The New import page in Debian's Chromium, signed in, ready to upload a file."""

    def __init__(self, portal):
        from playwright.sync_api import expect, sync_playwright

        from tests.browser import CHROMIUM, CHROMIUM_ARGS

        self.portal = portal
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        self.page = self.browser.new_page(base_url=portal)
        self.page.goto("/accounts/login/")
        self.page.get_by_label("Username").fill("bench")
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name=re.compile("^Imports"))).to_be_visible()

    def fill(self, path):
        """New import, filled in for the file, not yet started."""
        page = self.page
        page.goto("/imports/new")
        page.get_by_label("Name").fill("Bench upload")
        page.get_by_label("Semantic version").fill("1.0.0")
        page.get_by_label("Platform").select_option("Linux")
        page.get_by_label("A disk file from this computer").check()
        page.get_by_label("Disk image file").set_input_files(str(path))
        page.get_by_label("Disk format").select_option("raw")

    def upload(self):
        """Start import, until the page leaves for the import's page (Uppy's upload-success)."""
        self.page.get_by_role("button", name="Start import").click()
        self.page.wait_for_url(re.compile(r"/imports/\d+$"), wait_until="commit", timeout=600_000)

    def close(self):
        self.browser.close()
        self.playwright.stop()


def boto3_upload(s3, path, part_size, parallel):
    config = TransferConfig(
        multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=parallel
    )
    s3.upload_file(str(path), BUCKET, "boto3/bench.raw", Config=config)


def measured(upload):
    """(seconds, CPU seconds) an upload takes."""
    started, cpu_before = time.perf_counter(), tree_cpu_seconds()
    upload()
    return time.perf_counter() - started, tree_cpu_seconds() - cpu_before


def spread(values):
    return f"median {statistics.median(values):6.2f}, {min(values):.2f}-{max(values):.2f}"


def load():
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="the file's size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="uploads each way")
    parser.add_argument("--client", choices=["python", "chromium"], default="python")
    parser.add_argument(
        "--sign-each-part",
        action="store_true",
        help="python client: one request to the portal per part, as before the batches",
    )
    args = parser.parse_args()
    figures = page_figures()
    parallel = figures["PARALLEL_PARTS"]
    set_up_team()
    web_memory = {}

    s3_port, web_port = free_port(), free_port()
    s3_url, portal = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{web_port}"
    # moto joins the parts in Python: on a busy machine, a 1 GiB object can
    # take longer than the portal's usual 30 s read timeout to complete.
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": s3_url, "DEBUG": "1", "AWS_READ_TIMEOUT": "300"}
    python = sys.executable
    moto = start([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port, env)
    web = start(
        [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"], web_port, env
    )
    chromium = None
    try:
        # No optional checksums, as the browser's PUTs have none, so both
        # uploads ask the same work of moto when it joins the parts: without
        # a checksum algorithm it builds a full-object checksum from a second
        # copy of the object; with boto3's default CRC32s, one of the parts'.
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            config=Config(request_checksum_calculation="when_required"),
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [cors_rule(portal)]})
        path = Path(os.environ["DATA_DIR"]) / "bench.raw"
        with path.open("wb") as disk:
            for _ in range(args.mib):
                disk.write(os.urandom(MIB))
        part_size = aws.part_size(path.stat().st_size)
        session = sign_in(portal)
        session.get(f"{portal}/imports/new").raise_for_status()  # the page, warmed up
        if args.client == "chromium":
            chromium = ChromiumPage(portal)
        web_memory["before"], _ = memory(web.pid)

        def through_portal():
            if chromium:
                chromium.fill(path)
                return measured(chromium.upload)
            return measured(
                lambda: python_upload(session, portal, path, figures, args.sign_each_part)
            )

        def through_boto3():
            return measured(lambda: boto3_upload(s3, path, part_size, parallel))

        signing = (
            "one request a part" if args.sign_each_part else f"{figures['SIGN_BATCH']} a batch"
        )
        print(
            f"file: {args.mib} MiB in parts of {part_size // MIB} MiB, {parallel} in flight; "
            f"client: {args.client}, URLs signed {signing}; load average {load()}"
        )
        rates = {"portal": [], "boto3": []}
        cpu = {"portal": [], "boto3": []}
        ratios = []
        for run in range(1, args.runs + 1):
            # The order alternates, so neither always finds moto warmed up by the other.
            order = ["portal", "boto3"] if run % 2 else ["boto3", "portal"]
            for name in order:
                seconds, cpu_seconds = through_portal() if name == "portal" else through_boto3()
                rates[name].append(args.mib / seconds)
                cpu[name].append(cpu_seconds * 1024 / args.mib)
                for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
                    s3.delete_object(Bucket=BUCKET, Key=listed["Key"])  # moto keeps them in memory
            ratios.append(rates["portal"][-1] / rates["boto3"][-1])
            print(
                f"run {run} ({order[0]} first): portal {rates['portal'][-1]:6.1f} MiB/s, "
                f"boto3 {rates['boto3'][-1]:6.1f} MiB/s, ratio {ratios[-1]:.2f}; "
                f"CPU s/GiB portal {cpu['portal'][-1]:.1f}, boto3 {cpu['boto3'][-1]:.1f}"
            )
        _, web_memory["peak"] = memory(web.pid)
        print(f"portal (presigned multipart) MiB/s: {spread(rates['portal'])}")
        print(f"boto3 upload_file MiB/s:            {spread(rates['boto3'])}")
        print(f"ratio portal/boto3:                 {spread(ratios)} (goal: at least 0.8)")
        print(
            f"CPU seconds per GiB, every process: portal {spread(cpu['portal'])}; "
            f"boto3 {spread(cpu['boto3'])}"
        )
        print(f"load average after: {load()}")
        print(
            f"portal process RSS: {web_memory['before']:.0f} MiB before, "
            f"peak {web_memory['peak']:.0f} MiB during {args.runs} uploads of {args.mib} MiB"
        )
    finally:
        if chromium:
            chromium.close()
        web.terminate()
        moto.terminate()
        web.wait(10)
        moto.wait(10)


def cors_rule(portal):
    """The rule Check setup asks for: PUT from the portal's origin, ETag exposed."""
    return {
        "AllowedOrigins": [portal],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
    }


if __name__ == "__main__":
    main()
