"""The embedded broker: kombu's filesystem transport with messages that appear whole.

kombu's own ``_put`` creates the message file and then writes into it, while a consumer on
another process lists the folder, moves the file away and reads it without taking the
writer's lock: a consumer that comes in between reads an empty message, fails to decode it
and the message is lost (a round then waits for a hospital task that never ran). Here a
message is written under a name no consumer matches and renamed into place, which is atomic
on one filesystem, so a consumer sees a complete message or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # never matches "<queue>.msg"
        body = str_to_bytes(dumps(payload))
        try:
            with open(partial, "wb") as f:
                f.write(body)
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict:
        # A folder has no host: without this, every connection logs "No hostname was supplied.
        # Reverting to default 'localhost'".
        return {"port": self.default_port}
