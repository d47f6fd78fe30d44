"""The emulator inside a test: a real server on a free port, and a control client.

    with running_emulator(step_seconds=0) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", emulator.url)
        emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")
        ...
        assert emulator.calls()["imagesCreated"] == 1

The control client talks to the server over real HTTP (urllib), exactly as
an outside test process would.
"""

import json
import threading
import urllib.request
from contextlib import contextmanager

from .server import EmulatorOptions, make_server

# No proxy, whatever the environment says: the emulator is always local.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_IMAGEBUILDER",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
)


@contextmanager
def running_emulator(step_seconds=0, **options):
    """An emulator serving in a background thread; yields an EmulatorControl.

    `options` are EmulatorOptions fields: account_id, fail_next, fail_with,
    fail_operation, drop_next, fail_rate, latency, seed.
    """
    server = make_server("127.0.0.1", 0, EmulatorOptions(step_seconds=step_seconds, **options))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield EmulatorControl(server.url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class EmulatorControl:
    """A small client of the control API under /_emulator/."""

    def __init__(self, url, timeout=10):
        self.url = url
        self.timeout = timeout

    def environ(self):
        """The variables that point boto3 (and the AWS CLI) at this emulator."""
        return dict.fromkeys(ENDPOINT_VARIABLES, self.url)

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
