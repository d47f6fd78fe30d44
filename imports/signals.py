"""Signals other apps may listen to; `imports` itself never imports them back.

`import_ended` is sent inside the transaction of the transition that ends an
import, so a receiver's writes (a notification's delivery rows, say) commit
or roll back with the transition itself. Receivers must not do slow I/O
here: queue it with `transaction.on_commit`.

Arguments: `image_import` (the row, already in its new status) and `event`,
one of EVENTS.
"""

from django.dispatch import Signal

AVAILABLE = "available"
FAILED = "failed"
CANCELLED = "cancelled"
# Sent when a disk-file upload to S3 completes, once that transition exists
# (disk-file imports, issue 9); no transition sends it yet.
UPLOAD_FINISHED = "upload_finished"
EVENTS = (AVAILABLE, FAILED, CANCELLED, UPLOAD_FINISHED)

import_ended = Signal()
