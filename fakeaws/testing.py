"""The emulator inside a test: a real server on a free port, and a control client.

    with running_emulator(step_seconds=0) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", emulator.url)
        emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")
        ...
        assert emulator.calls()["imagesCreated"] == 1

The control client talks to the server over real HTTP (urllib), exactly as
an outside test process would.

S3 and IAM are moto's, in server mode on its own port:

    with running_moto() as moto_url, running_emulator(s3_endpoint=moto_url) as emulator:
        set_up(moto_url)  # fakeaws.s3: the upload bucket and the vmimport role
"""

import json
import threading
import urllib.request
from contextlib import contextmanager

from .server import EmulatorOptions, make_server

# No proxy, whatever the environment says: the emulator is always local.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_IAM")
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_IMAGEBUILDER",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
)


@contextmanager
def running_emulator(step_seconds=0, **options):
    """An emulator serving in a background thread; yields an EmulatorControl.

    `options` are EmulatorOptions fields: account_id, fail_next, fail_with,
    fail_operation, drop_next, fail_rate, latency, seed, s3_endpoint,
    seed_converting_seconds.
    """
    server = make_server("127.0.0.1", 0, EmulatorOptions(step_seconds=step_seconds, **options))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield EmulatorControl(server.url, s3_endpoint=options.get("s3_endpoint"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def running_moto():
    """moto's server (S3, IAM and the rest) in a background thread; yields its URL.

    moto keeps its state per process, not per server: reset_moto() empties it.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(url):
    """Forget every bucket, object and role moto holds."""
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with OPENER.open(request, timeout=10) as response:
        response.read()


class EmulatorControl:
    """A small client of the control API under /_emulator/."""

    def __init__(self, url, timeout=10, s3_endpoint=None):
        self.url = url
        self.timeout = timeout
        self.s3_endpoint = s3_endpoint  # moto's server, when the emulator reads S3

    def environ(self):
        """The variables that point boto3 (and the AWS CLI) at this emulator (and moto)."""
        variables = dict.fromkeys(ENDPOINT_VARIABLES, self.url)
        if self.s3_endpoint:
            variables.update(dict.fromkeys(S3_ENDPOINT_VARIABLES, self.s3_endpoint))
        return variables

    def calls(self):
        """{"operations": {op: n}, "clientTokens": {token: n}, "imagesCreated": n, ...}"""
        return self.get("calls")

    def state(self):
        return self.get("state")

    def reset(self):
        return self.post("reset")

    def advance(self, seconds):
        return self.post("advance", seconds=seconds)

    def fail_next(self, count, error, operation=None, *, message=None, after=False):
        return self.post(
            "fail-next",
            count=count,
            error=error,
            operation=operation,
            message=message,
            after=after,
        )

    def drop_next(self, count=1, operation=None, *, after=False):
        return self.post("drop-next", count=count, operation=operation, after=after)

    def fail_rate(self, rate, error="ServiceUnavailableException", operation=None):
        return self.post("fail-rate", rate=rate, error=error, operation=operation)

    def latency(self, seconds, operation=None):
        return self.post("latency", seconds=seconds, operation=operation)

    def clear_faults(self):
        return self.post("clear-faults")

    def end_image(self, image_arn, status="FAILED", reason=None):
        return self.post("end-image", imageArn=image_arn, status=status, reason=reason)

    def get(self, endpoint):
        return self.send(urllib.request.Request(f"{self.url}/_emulator/{endpoint}"))

    def post(self, endpoint, **body):
        request = urllib.request.Request(
            f"{self.url}/_emulator/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self.send(request)

    def send(self, request):
        # A 400 from the control API raises urllib's HTTPError with its message.
        with OPENER.open(request, timeout=self.timeout) as response:
            return json.loads(response.read())
