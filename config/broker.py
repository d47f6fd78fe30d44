"""`make run`'s filesystem broker, with messages that appear whole or not at all.

kombu's filesystem transport creates a message's file in the queue folder
and only then writes it. A worker listing the folder in between takes an
empty file, and its consumer dies on the JSON error ("Unrecoverable error:
JSONDecodeError", kombu issue #1551), which stops all of `make run`; beat's
messages every few seconds made it happen within minutes under load. Here a
message is written under a name no consumer reads, then renamed into place:
a rename within a folder is atomic, so a consumer finds the whole message or
nothing. Messages and folders are kombu's own otherwise.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A consumer takes only files named <...>.<queue>.msg.
BEING_WRITTEN = ".writing"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`, under kombu's file name, in one rename."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            with open(path + BEING_WRITTEN, "wb") as message:
                message.write(str_to_bytes(dumps(payload)))
            os.replace(path + BEING_WRITTEN, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
