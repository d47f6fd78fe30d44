"""Signals other apps may listen to; `imports` itself never imports them back.

Each is sent inside the transaction of the transition it announces, so a
receiver's writes (a notification's delivery rows, say) commit or roll back
with the transition itself. Receivers must not do slow I/O here: queue it
with `transaction.on_commit`.

`import_ended`: the import reached a terminal status (ImageImport._move).
Arguments: `image_import` (the row, already in its new status) and `event`,
one of AVAILABLE, FAILED, CANCELLED.

`upload_finished`: a disk file's upload to S3 completed (ImageImport._move,
uploading -> queued). Argument: `image_import`.
"""

from django.dispatch import Signal

AVAILABLE = "available"
FAILED = "failed"
CANCELLED = "cancelled"
UPLOAD_FINISHED = "upload_finished"  # the event of `upload_finished`

import_ended = Signal()
upload_finished = Signal()
