"""`make run`'s process manager: honcho, with time for the worker to stop cleanly.

    python -m config.procfile start --procfile Procfile web worker

On Ctrl-C honcho sends SIGTERM to every process and SIGKILL to those still
running KILL_WAIT seconds later: 5 s in honcho, less than Celery's warm
shutdown may need to finish the AWS call in hand (AWS_READ_TIMEOUT). Here it
waits RUN_STOP_SECONDS (default 35) instead; honcho has no option for it.
"""

import os
import sys

from honcho import manager
from honcho.command import main

manager.KILL_WAIT = int(os.environ.get("RUN_STOP_SECONDS", "35"))

if __name__ == "__main__":
    sys.exit(main())
