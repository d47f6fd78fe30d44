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
"""

import errno
import os
import select

from gunicorn.workers.sync import StopWaiting
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker

AVAILABLE = hasattr(select, "EPOLLEXCLUSIVE")


class SyncWorker(GunicornSyncWorker):
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
