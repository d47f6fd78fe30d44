"""gunicorn's sync worker, of which one idle worker wakes for each new connection.

gunicorn's own sync workers wait in select() on the listening socket they
all share, so a connection wakes every idle worker: one accepts it, the
others find nothing and go back to waiting. On a 2-core VM, /healthz cost
490 us of CPU per request with one worker and 870 us with five idle ones,
one client at a time (bench/status_poll.py's server).

Here each worker waits in its own epoll, which holds the listening sockets
with EPOLLEXCLUSIVE (Linux 4.5 and later): the kernel wakes one worker that
is waiting, and moves on to another only if that one is busy. Everything
else (accepting, the requests, the heartbeat, signals) is gunicorn's.
deploy/gunicorn.conf.py selects it where the platform has EPOLLEXCLUSIVE.

Both workers here answer a request gunicorn refuses before Django sees it
(a request line or headers too large, a malformed request line) in the
API's error shape, {"error": ..., "status": ...}, rather than gunicorn's
own HTML page (JsonRefusals); PlainSyncWorker is gunicorn's sync worker
with only that, for where Linux lacks EPOLLEXCLUSIVE, and ThreadWorker its
gthread worker with only that, for `make run` (config/gunicorn_run.py).
"""

import errno
import json
import os
import select
from http import HTTPStatus

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker
from gunicorn.workers.sync import StopWaiting
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker

AVAILABLE = hasattr(select, "EPOLLEXCLUSIVE")

NOT_HTTP = (
    "The request line is not valid HTTP: it must be a method, a path and "
    "the HTTP version (GET /api/imports HTTP/1.1)."
)
BAD_HEADER = "A header field of the request is not valid HTTP."
BAD_CHUNK = "The request's chunked body is not valid HTTP."


def refusal(exc, cfg):
    """(status, message) for a request gunicorn refuses as the client's fault, else None.

    None leaves the answer to gunicorn: an application error (500), and the
    refusals that concern a proxy or TLS in front of it, not an API client.
    """
    # InvalidResponseHeader is an InvalidHeader, but the application's: a 500.
    if isinstance(exc, errors.InvalidResponseHeader | errors.InvalidResponseHeaderName):
        return None
    if isinstance(exc, errors.LimitRequestLine):
        limit = getattr(exc, "max_size", None) or cfg.limit_request_line
        return 414, f"The request line is longer than the server accepts ({limit} bytes)."
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431, headers_too_large(str(exc), cfg)
    if isinstance(
        exc, errors.InvalidRequestLine | errors.InvalidRequestMethod | errors.InvalidHTTPVersion
    ):
        return 400, NOT_HTTP
    if isinstance(exc, errors.InvalidHeader | errors.InvalidHeaderName | errors.ObsoleteFolding):
        return 400, BAD_HEADER
    if isinstance(
        exc, errors.InvalidChunkSize | errors.ChunkMissingTerminator | errors.InvalidChunkExtension
    ):
        return 400, BAD_CHUNK
    if isinstance(exc, errors.UnsupportedTransferCoding):
        return 501, "The request's Transfer-Encoding is not one the server supports (chunked)."
    if isinstance(exc, errors.ExpectationFailed):
        return 417, "The server cannot meet the request's Expect header (only 100-continue)."
    return None


def headers_too_large(reason, cfg):
    # gunicorn's reasons, as its parser words them (gunicorn/http/message.py).
    if reason == "limit request headers fields":
        return (
            "The request has more header fields than the server accepts "
            f"({cfg.limit_request_fields})."
        )
    if reason == "limit request headers fields size":
        return (
            "A header field of the request is longer than the server accepts "
            f"({cfg.limit_request_field_size} bytes)."
        )
    return "The request's header fields are larger in all than the server accepts."


def json_answer(status, message):
    """The whole HTTP answer, bytes: the API's error shape, then the connection closed."""
    body = json.dumps({"error": message, "status": status}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonRefusals:
    """gunicorn's handle_error, but a client's malformed request is refused in JSON.

    API clients are promised JSON errors, and the path of a request line
    too long to read is unknown, so every path gets them; a browser shows
    JSON readably. Everything else (the 500s, proxy and TLS refusals) is
    gunicorn's own answer.
    """

    def handle_error(self, req, client, addr, exc):
        answer = refusal(exc, self.cfg)
        if answer is None:
            return super().handle_error(req, client, addr, exc)
        status, message = answer
        # gunicorn's own warning, so the logs read as before.
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, json_answer(status, message))
        except Exception:  # the client is gone: nothing to tell it
            self.log.debug("Failed to send error message.")


class PlainSyncWorker(JsonRefusals, GunicornSyncWorker):
    """gunicorn's sync worker, its refusals in JSON: where Linux lacks EPOLLEXCLUSIVE."""


class ThreadWorker(JsonRefusals, GunicornThreadWorker):
    """gunicorn's gthread worker, its refusals in JSON: make run's (config/gunicorn_run.py)."""


class SyncWorker(JsonRefusals, GunicornSyncWorker):
    def run(self):
        self.waiting = select.epoll()
        self.by_fd = {listener.fileno(): listener for listener in self.sockets}
        for fd in self.by_fd:
            self.waiting.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        # The pipe gunicorn's signal handlers write to, to end a wait early.
        self.waiting.register(self.PIPE[0], select.EPOLLIN)
        super().run()

    def wait(self, timeout):
        """What gunicorn's wait() returns: the listeners ready, with the pipe drained."""
        self.notify()
        try:
            events = self.waiting.poll(timeout)
        except OSError as error:
            if error.errno == errno.EBADF:  # closed under us: gunicorn's own answer
                if self.nr < 0:
                    return self.sockets
                raise StopWaiting from error
            raise
        ready = []
        for fd, _ in events:
            if fd == self.PIPE[0]:
                os.read(fd, 1)
                ready.append(fd)
            else:
                ready.append(self.by_fd[fd])
        return ready
