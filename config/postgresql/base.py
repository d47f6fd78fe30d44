"""Django's PostgreSQL backend, with two changes for a busy portal.

Batches under the values one statement can bind. With values bound on the
server (DATABASE_PREPARED_STATEMENTS, the default), a statement takes at
most 65,535 of them: the wire protocol counts them in 16 bits. Django sizes
the batches of bulk_create, bulk_update and a cascade's deletions by
DatabaseOperations.bulk_batch_size, which on PostgreSQL is "all at once";
here it is as many rows as fit. (A filter on a long list of values is the
caller's to slice: tasks.stamp_refreshed.)

A health check at most once a second per connection. CONN_HEALTH_CHECKS
sends a `SELECT 1` before the first query of every request and every task:
a round trip each, two per import. A connection opened or checked
under a second ago, on whose socket nothing has arrived since, is taken as
sound without it. A server that ends a session (a restart,
pg_terminate_backend, idle_session_timeout) sends its reason and closes the
socket: the check sees that without a round trip, and sends the `SELECT 1`,
which fails, so Django connects again. A host that dies without a word
cannot reboot and answer on its address within the second; after it, the
`SELECT 1` is sent again, as before.
"""

import select
import time

from django.db.backends.postgresql import base, operations

MAX_BOUND_VALUES = 65_535
HEALTH_CHECK_INTERVAL = 1.0  # seconds


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        if not fields or not self.connection.features.uses_server_side_binding:
            return super().bulk_batch_size(fields, objs)
        return max(MAX_BOUND_VALUES // len(fields), 1)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    checked_at = float("-inf")  # when the server last answered a check or a connect

    def connect(self):
        super().connect()
        self.checked_at = time.monotonic()

    def close_if_health_check_failed(self):
        due = self.connection is not None and self.health_check_enabled
        due = due and not self.health_check_done and not self.pool
        if due and self.checked_lately() and not self.server_has_spoken():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
        if due and self.connection is not None:  # it answered the SELECT 1
            self.checked_at = time.monotonic()

    def checked_lately(self):
        return time.monotonic() - self.checked_at < HEALTH_CHECK_INTERVAL

    def server_has_spoken(self):
        """Whether anything waits unread on an idle connection's socket: the server's goodbye."""
        poller = select.poll()
        poller.register(self.connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
