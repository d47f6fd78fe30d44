"""The AWS clients: shared among a process's threads, and what they say when AWS does not answer.

Against the emulator over real HTTP, or a port nothing listens on.
"""

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imports import aws

from .factories import valid_payload


def test_the_worker_s_threads_share_a_client_without_dropping_connections(
    emulator, caplog, settings
):
    # The worker runs Celery's threads pool: its calls in hand at once share
    # one client, whose connection pool must hold them all (botocore's
    # default of 10 drops the rest with urllib3's "Connection pool is full").
    emulator.latency(0.3, operation="ImportVmImage")
    threads = 16 + settings.IMPORT_REFRESH_CONCURRENCY

    def send(number):
        request = valid_payload(clientToken=str(uuid.uuid4()), name=f"thread-{number}")
        return aws.import_vm_image(request, target=aws.Target()).image_arn

    with (
        caplog.at_level(logging.WARNING, logger="urllib3"),
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        arns = list(pool.map(send, range(threads)))

    assert len(set(arns)) == threads
    assert "Connection pool is full" not in caplog.text


# -- no answer from AWS, in plain words ---------------------------------------------


def test_a_refused_connection_names_the_service_not_the_url(aws_credentials, monkeypatch):
    # Nothing listens there: botocore's message is the URL with its query string.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")

    with pytest.raises(aws.AwsError) as raised:
        aws.list_bucket_files("vm-import-portal-uploads", "", target=aws.Target())

    error = raised.value
    assert (error.code, error.message) == (
        "ConnectionError",
        "Could not reach AWS S3: the connection failed.",
    )
    assert error.retryable and not error.answered
    assert not error.outcome_unknown  # the request never left: AWS never saw it


def test_an_answer_lost_after_the_request_was_sent_may_have_been_acted_on(emulator):
    emulator.drop_next(1, operation="ImportVmImage", after=True)

    with pytest.raises(aws.AwsError) as raised:
        aws.import_vm_image(valid_payload(), target=aws.Target())

    error = raised.value
    assert error.message == (
        "AWS Image Builder did not answer: the connection closed before its answer came."
    )
    assert error.outcome_unknown and not error.answered
    assert emulator.calls()["imagesCreated"] == 1  # it was, here


def test_an_answer_that_does_not_come_in_time_may_have_been_acted_on(emulator, settings):
    settings.AWS_READ_TIMEOUT = 1
    emulator.latency(3, operation="GetImage")

    with pytest.raises(aws.AwsError) as raised:
        aws.get_image("arn:aws:imagebuilder:us-east-1:123456789012:image/x/1.0.0/1", target=None)

    error = raised.value
    assert (error.code, error.message) == (
        "ConnectionError",
        "AWS Image Builder did not answer in time.",
    )
    assert error.outcome_unknown and error.retryable


def test_an_error_aws_answered_says_aws_answered(emulator):
    emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")

    with pytest.raises(aws.AwsError) as raised:
        aws.import_vm_image(valid_payload(), target=aws.Target())

    assert raised.value.answered and not raised.value.outcome_unknown


class GatewayPage(BaseHTTPRequestHandler):
    """A load balancer's own page in AWS's place: the status the class is built with."""

    status = 502

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body><h1>Bad Gateway</h1></body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateways_page_in_aws_place_may_have_been_acted_on(aws_credentials, monkeypatch, status):
    # The request went through the gateway, which may have passed it on: AWS
    # may hold the image, so the import must not end on it (tasks retries).
    handler = type("Page", (GatewayPage,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", f"http://127.0.0.1:{server.server_port}")
    aws.clear_clients()
    try:
        with pytest.raises(aws.AwsError) as raised:
            aws.import_vm_image(valid_payload(), target=aws.Target("us-east-1"))
    finally:
        server.shutdown()
    assert raised.value.outcome_unknown and not raised.value.answered
    assert raised.value.retryable


def test_every_team_s_role_shares_the_process_s_one_copy_of_the_service_models(emulator):
    # Each botocore session left to itself loads its own copy of every model
    # its clients use (EC2's: 100-290 ms and 10-35 MB), so a worker serving
    # ten teams' roles kept ten copies of EC2's model.
    aws.clear_clients()
    own = aws.client("ec2", aws.Target("us-east-1"))
    role_a = "arn:aws:iam::111111111111:role/ImageImporter"
    team_a = aws.client("ec2", aws.Target("us-east-1", role_a, "team-a"))
    role_b = "arn:aws:iam::222222222222:role/ImageImporter"
    team_b = aws.client("imagebuilder", aws.Target("eu-west-1", role_b, "team-b"))

    assert own._loader is team_a._loader is team_b._loader is aws.service_models()

    # The role's client still calls as the role: STS is asked first, with the team's ID.
    team_a.describe_import_image_tasks()
    [assumed] = emulator.calls()["assumedRoles"]
    assert (assumed["RoleArn"], assumed["ExternalId"]) == (role_a, "team-a")
