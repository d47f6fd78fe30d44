"""Django's PostgreSQL backend, its batches kept under the values one statement can bind.

With values bound on the server (DATABASE_PREPARED_STATEMENTS, the default),
a statement takes at most 65,535 of them: the wire protocol counts them in
16 bits. Django sizes the batches of bulk_create, bulk_update and a
cascade's deletions by DatabaseOperations.bulk_batch_size, which on
PostgreSQL is "all at once"; here it is as many rows as fit. (A filter on a
long list of values is the caller's to slice: tasks.stamp_refreshed.)
"""

from django.db.backends.postgresql import base, operations

MAX_BOUND_VALUES = 65_535


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        if not fields or not self.connection.features.uses_server_side_binding:
            return super().bulk_batch_size(fields, objs)
        return max(MAX_BOUND_VALUES // len(fields), 1)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
