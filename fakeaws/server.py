"""The HTTP server: every service and the control API on one port.

Image Builder is routed by method and path (REST-JSON); EC2 and STS share
`POST /` and are told apart by the `Action` form field (query protocol).
Paths under /_emulator/ are the control API (see control.py).
"""

import socket
import sys
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control, ec2, imagebuilder, s3, sts
from .faults import DROP, Faults
from .state import DEFAULT_ACCOUNT_ID, World
from .wire import Request

QUERY_SERVICES = (ec2, sts)


@dataclass
class EmulatorOptions:
    step_seconds: float = 2.0
    account_id: str = DEFAULT_ACCOUNT_ID
    # Faults armed at start-up, and again by a reset.
    fail_next: int = 0
    fail_with: str = "ServiceUnavailableException"
    fail_operation: str | None = None
    drop_next: int = 0
    fail_rate: float = 0.0
    latency: float = 0.0
    seed: int | None = None
    # moto's server, where ImportImage reads its disks; None: disks are not read.
    s3_endpoint: str | None = None
    # How long the seeded converting task takes once first listed; None: as any task.
    seed_converting_seconds: float | None = None


@dataclass(frozen=True)
class Call:
    service: object  # one of the service modules
    operation: str
    client_token: str | None = None


class Emulator:
    """The world, the faults, and the routing of one request to its operation."""

    def __init__(self, options=None):
        self.options = options or EmulatorOptions()
        self.world = World(
            step_seconds=self.options.step_seconds,
            account_id=self.options.account_id,
            seed_converting_seconds=self.options.seed_converting_seconds,
        )
        if self.options.s3_endpoint:
            self.world.s3 = s3.client("s3", self.options.s3_endpoint)
        self.faults = Faults(self.options.seed)
        self.arm_startup_faults()

    def arm_startup_faults(self):
        options = self.options
        if options.fail_next:
            self.faults.fail_next(options.fail_next, options.fail_with, options.fail_operation)
        if options.drop_next:
            self.faults.fail_next(options.drop_next, DROP, options.fail_operation)
        if options.fail_rate:
            self.faults.fail_rate(options.fail_rate, options.fail_with, options.fail_operation)
        if options.latency:
            self.faults.add_latency(options.latency)

    def reset(self):
        self.world.reset()
        self.faults.clear()
        self.arm_startup_faults()

    def handle(self, request):
        """The Response for a service request, or DROP to hang up without one."""
        call = identify(request)
        if call is None:
            return unknown_operation(request)
        self.world.record_call(call.operation, call.client_token)
        fault, delay = self.faults.draw(call.operation)
        if delay:
            time.sleep(delay)
        if fault and not fault.after:
            return fault_response(call, fault)
        response = call.service.handle(self.world, call.operation, request)
        if fault:
            return fault_response(call, fault)
        return response


def identify(request):
    if request.path == "/" and request.method in ("POST", "GET"):
        action = request.form.get("Action")
        for service in QUERY_SERVICES:
            if action in service.OPERATIONS:
                return Call(service, action, request.form.get("ClientToken"))
        return None
    operation = imagebuilder.operation_for(request)
    if operation is None:
        return None
    token = imagebuilder.client_token_of(request) if operation == "ImportVmImage" else None
    return Call(imagebuilder, operation, token)


def fault_response(call, fault):
    if fault.kind == DROP:
        return DROP
    return call.service.error_response(fault.kind, fault.describe())


def unknown_operation(request):
    # A guess: the codes and wording (EC2 documents InvalidAction; the
    # REST-JSON answer to a path no operation has is AWS's common
    # UnknownOperationException).
    if request.path == "/":
        service = sts if request.signing_service == "sts" else ec2
        action = request.form.get("Action")
        return service.error_response(
            "InvalidAction", f"The action {action!r} is not valid for this emulator."
        )
    response = imagebuilder.error_response(
        "UnknownOperationException", f"No operation at {request.method} {request.path}."
    )
    response.status = 404
    return response


class EmulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in separate writes; with Nagle's algorithm on,
    # each answer on a kept-alive connection waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "fakeaws"
    timeout = 120  # an idle keep-alive connection gives its thread back

    def do_GET(self):
        self.answer()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        response = self.response_for(request)
        if response is DROP:
            # Closing without a status line is what botocore sees when a load
            # balancer or the network gives up mid-call.
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def response_for(self, request):
        emulator = self.server.emulator
        try:
            if request.path.startswith(control.PREFIX):
                return control.handle(emulator, request)
            return emulator.handle(request)
        except Exception:
            # A bug in the emulator, not a fault asked for: say so loudly, on
            # stderr whatever the logging configuration.
            sys.stderr.write(f"fakeaws failed on {request.method} {request.path}\n")
            traceback.print_exc()
            return imagebuilder.error_response(
                "ServiceException", "The emulator failed; see its log."
            )

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog of 5 resets connections that a burst of
    # clients opens at once (a worker's threads); AWS's endpoints take them.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address, emulator, *, verbose=False):
        super().__init__(address, EmulatorHandler)
        self.emulator = emulator
        self.verbose = verbose

    def handle_error(self, request, client_address):
        # A client that hung up before its answer (a timeout, a killed
        # worker) is ordinary for a server: one line when verbose, no traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            if self.verbose:
                print(f"{client_address[0]} hung up before its answer", file=sys.stderr)
            return
        super().handle_error(request, client_address)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(host="127.0.0.1", port=0, options=None, *, verbose=False):
    """A bound, not yet serving, emulator server; port 0 picks a free port."""
    return EmulatorServer((host, port), Emulator(options), verbose=verbose)
