"""Dependencies that are down, for outage tests and bench/outages.py.

`closed_port()` is a port nothing listens on (a refused connection), and
`free_port()` the same port, for a server of the test's own to take;
`hanging_server()` accepts connections and never answers a byte, like a
database or Redis that has stopped responding.
"""

import contextlib
import socket
import threading


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The same port is free for a server the test starts to listen on.
free_port = closed_port


@contextlib.contextmanager
def hanging_server():
    """Yields the port of a listener that accepts and then stays silent."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
