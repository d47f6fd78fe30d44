"""A 200 that is not AWS's answer: a proxy's or gateway's HTML page, or an empty body.

botocore's parsers let such a page through as an answer with nothing in
it. Against the emulator behind a proxy of the test's own, which passes each
request on (so AWS acts on it) and answers some of them itself: the worker
must count such an answer as lost and ask again with the same client token,
never fail the import, never record it accepted without its ARN; the
refresher must not take it for AWS's word on the import.

Also: an answer lost on the way back is counted once (in one query), not again
for the attempt at IMPORT_MAX_ATTEMPTS that then waits on AWS's word.
"""

import http.client
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports import aws, tasks
from imports.models import ImageImport, Status

from .factories import CONVERTING_TASK, IMPORT_BUCKET, disk_submission, valid_payload

# What answers in AWS's place: a page that happens to be well-formed XML
# (EC2's parser reads it as an empty answer), one that is not, and nothing.
PAGES = {
    "a well-formed html page": b"<html><body><h1>Welcome</h1><p>Gateway</p></body></html>",
    "a sign-in page": b"<!DOCTYPE html><html><body><p>Please sign in<br></body></html>",
    "an empty body": b"",
}


class SwappingProxy(BaseHTTPRequestHandler):
    """Passes every request on to the emulator; some answers it replaces with its page."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=10)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        answer = upstream.getresponse()
        content = answer.read()
        upstream.close()
        if self.server.swaps(self.path.encode() + body):
            status, headers, content = 200, [("Content-Type", "text/html")], self.server.page
        else:
            status, headers = answer.status, answer.getheaders()
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_PUT = do_POST

    def log_message(self, *args):
        pass


class ProxyServer(ThreadingHTTPServer):
    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), SwappingProxy)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.page = PAGES["a well-formed html page"]
        self.pending = {}  # operation -> answers still to replace
        self.lock = threading.Lock()

    def replace_next(self, count, operation, page):
        with self.lock:
            self.pending[operation] = count
            self.page = page

    def swaps(self, request):
        """Whether this request's answer is replaced (its operation is in its path or body)."""
        with self.lock:
            for operation, count in self.pending.items():
                if count and operation.encode() in request:
                    self.pending[operation] = count - 1
                    return True
        return False


def proxied(upstream, monkeypatch, *services):
    """`services` reached through a swapping proxy in front of `upstream`, while it runs."""
    server = ProxyServer(upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for service in services:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", f"http://127.0.0.1:{server.server_port}")
    aws.clear_clients()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(emulator, monkeypatch):
    """Image Builder and EC2 reached through the swapping proxy in front of the emulator."""
    yield from proxied(emulator.url, monkeypatch, "IMAGEBUILDER", "EC2")


def attempts(image_import, times):
    """Run the submit task `times` times (each a retry's message), then read the import."""
    for _ in range(times):
        tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    return image_import


def not_aws(service):
    return (
        f"AWS {service} (or a proxy or gateway in between) answered with something that is "
        "not an AWS answer, such as a web page or nothing at all."
    )


# -- the worker's calls: ImportVmImage (rest-json) and ImportImage (EC2's XML) ------------


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_page_in_place_of_import_vm_image_s_answer_is_asked_again_with_the_same_token(
    image_import, proxy, emulator, retries_queued, settings, page
):
    # Before, the worker's task ended on a KeyError ('imageArn') and the
    # import sat in `submitting` until its lease ran out, saying nothing.
    settings.IMPORT_MAX_ATTEMPTS = 2
    proxy.replace_next(3, "ImportVmImage", page)

    image_import = attempts(image_import, 3)

    assert (image_import.status, image_import.error_code) == (Status.QUEUED, "InvalidResponse")
    assert image_import.image_arn == ""
    assert image_import.error_message == f"{not_aws('Image Builder')} {tasks.ASKING_AGAIN}"
    assert len(retries_queued) == 3  # past IMPORT_MAX_ATTEMPTS: AWS may hold the image

    image_import = attempts(image_import, 1)  # the proxy passes AWS's answer on at last

    assert image_import.status == Status.IMPORTING
    assert image_import.image_arn.startswith("arn:aws:imagebuilder:")
    assert emulator.calls()["imagesCreated"] == 1
    assert emulator.calls()["clientTokens"] == {image_import.payload["clientToken"]: 4}


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_page_in_place_of_import_image_s_answer_is_asked_again_with_its_client_token(
    team, user, proxy, emulator, retries_queued, settings, page
):
    # Before, a page that parses as XML ended the task on a KeyError
    # ('ImportTaskId'); the others were already retried.
    settings.IMPORT_MAX_ATTEMPTS = 2
    image_import, _ = ImageImport.submit(
        team=team, user=user, **disk_submission(ClientToken="ec2-token-paged")
    )
    proxy.replace_next(3, "Action=ImportImage", page)

    image_import = attempts(image_import, 3)

    assert (image_import.status, image_import.vm_import_task_id) == (Status.QUEUED, "")
    assert image_import.error_message == f"{not_aws('EC2')} {tasks.ASKING_AGAIN}"

    image_import = attempts(image_import, 1)

    assert image_import.status == Status.IMPORTING
    assert emulator.calls()["importTasksCreated"] == 1
    assert emulator.calls()["imagesCreated"] == 1


def test_the_import_s_page_says_the_portal_keeps_asking(
    image_import, proxy, retries_queued, user_client
):
    proxy.replace_next(1, "ImportVmImage", PAGES["an empty body"])
    attempts(image_import, 1)

    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()

    assert "is not an AWS answer, such as a web page or nothing at all." in page
    assert "keeps asking with the same client token" in page


# -- the refresher's reads: GetImage and DescribeImportImageTasks -------------------------


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_page_in_place_of_get_image_s_answer_is_no_answer(proxy, page):
    # Before: an ImageState with no status, as if Image Builder had said so.
    proxy.replace_next(1, "/GetImage", page)
    arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/x/1.0.0/1"

    with pytest.raises(aws.AwsError) as raised:
        aws.get_image(arn, target=aws.Target())

    error = raised.value
    assert (error.code, error.message) == ("InvalidResponse", not_aws("Image Builder"))
    assert error.retryable and error.outcome_unknown and not error.answered


@pytest.fixture
def moto_proxy(s3_set_up, monkeypatch):
    """S3 and IAM (moto, with the bucket and role `make run` seeds) through the proxy."""
    yield from proxied(s3_set_up.s3_endpoint, monkeypatch, "S3", "IAM")


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_page_in_place_of_s3_s_or_iam_s_answer_is_no_answer(moto_proxy, page):
    # Before, what botocore read as an empty answer ended its request on a
    # KeyError: a 500 for the browser starting an upload, and for the team
    # admin checking the set-up. (botocore itself takes some S3 pages for a
    # 500.) An AwsError is said in the portal's words.
    target = aws.Target("us-east-1")
    moto_proxy.replace_next(1, "?uploads", page)
    with pytest.raises(aws.AwsError):
        aws.create_multipart_upload(IMPORT_BUCKET, "in/web.raw", target=target)

    moto_proxy.replace_next(1, "GetRole", page)
    with pytest.raises(aws.AwsError):
        aws.role_trust_policy("vmimport", target=target)


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_page_in_place_of_describe_import_image_tasks_answer_is_no_answer(proxy, page):
    # Before, a well-formed page read as "no such tasks".
    proxy.replace_next(1, "DescribeImportImageTasks", page)

    with pytest.raises(aws.AwsError) as raised:
        aws.describe_import_image_tasks([CONVERTING_TASK], target=aws.Target())

    assert (raised.value.code, raised.value.message) == ("InvalidResponse", not_aws("EC2"))


def test_a_refresh_answered_by_pages_changes_nothing_and_says_why_in_the_log(
    team, user, proxy, caplog
):
    image_import, _ = ImageImport.submit(
        team=team, user=user, payload=valid_payload(vmImportTaskId=CONVERTING_TASK)
    )
    image_import = attempts(image_import, 1)
    assert image_import.status == Status.IMPORTING
    proxy.replace_next(1, "/GetImage", PAGES["a well-formed html page"])
    proxy.replace_next(1, "DescribeImportImageTasks", PAGES["a well-formed html page"])

    with caplog.at_level(logging.WARNING, logger="imports.tasks"):
        tasks.refresh_imports()

    image_import.refresh_from_db()
    assert (image_import.status, image_import.image_state) == (Status.IMPORTING, "")
    assert f"GetImage failed for import {image_import.pk}: InvalidResponse" in caplog.text
    assert "DescribeImportImageTasks failed in us-east-1: InvalidResponse" in caplog.text


def test_a_page_does_not_count_as_the_image_found_again(team, user, proxy, image_import):
    # An image Image Builder says it does not have is counted cycle after
    # cycle; a page in its answer's place said "found" and restarted the count.
    image_import.claim()
    arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/gone/1.0.0/1"
    image_import.mark_importing(image_arn=arn, request_id="r", client_token="t")
    missing = tasks.MissingInAws({})
    target = aws.Target()
    assert missing.ending_for(image_import, tasks.fetch_image(image_import, target)) is None
    assert missing.seen[image_import.pk][1] == 1

    proxy.replace_next(1, "/GetImage", PAGES["a well-formed html page"])
    missing.ending_for(image_import, tasks.fetch_image(image_import, target))

    assert missing.seen[image_import.pk][1] == 1  # neither found again nor missing once more


# -- each lost answer is counted once ------------------------------------------------

REFUSED = "http://127.0.0.1:9"  # nothing listens: the connection never reaches AWS


def unreachable_image_builder(monkeypatch, url=REFUSED):
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", url)
    aws.clear_clients()


def test_an_attempt_at_the_limit_that_waits_on_a_lost_answer_is_not_counted_as_one(
    image_import, emulator, retries_queued, settings, monkeypatch
):
    # Attempt 1's answer is lost; attempt 2, at the limit, cannot reach AWS
    # and waits for AWS's word. Only attempt 1 may have reached AWS.
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    attempts(image_import, 1)
    assert tasks.lost_answers(image_import) == 1
    unreachable_image_builder(monkeypatch)

    image_import = attempts(image_import, 1)

    assert image_import.status == Status.QUEUED
    assert tasks.lost_answers(image_import) == 1
    # The person still reads why the portal goes on asking.
    assert image_import.error_message == (
        "Could not reach AWS Image Builder: the connection failed. " + tasks.ASKED_BEFORE
    )

    # So attempt 2 counts toward the limit, as a connection that never
    # reached AWS does: AWS's own error answer to attempt 3 ends the import.
    unreachable_image_builder(monkeypatch, emulator.url)
    emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")
    image_import = attempts(image_import, 1)
    assert image_import.status == Status.FAILED
    assert "gave up after 3 attempts" in image_import.error_message
    assert emulator.calls()["imagesCreated"] == 1  # attempt 1's, which the person is told of


def test_an_attempt_at_the_limit_reads_the_lost_answers_once(
    image_import, emulator, retries_queued, settings, monkeypatch
):
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    attempts(image_import, 1)
    unreachable_image_builder(monkeypatch)

    with CaptureQueriesContext(connection) as said:
        attempts(image_import, 1)

    counts = [query["sql"] for query in said.captured_queries if "COUNT(" in query["sql"]]
    assert len(counts) == 1, counts
