"""`make run`'s WSGI entry: config.wsgi, or its traceback when the portal fails to load.

gunicorn's --reload answers a SyntaxError met while loading the application
with its traceback, but any other error there (a NameError in models.py, a
bad setting) fails the worker's boot, and gunicorn then stops, and honcho
with it the whole of `make run`. Here every such error is answered as a
page instead, as runserver did, until a save reloads the worker
(config/gunicorn_run.py watches the project's modules even when they
failed to import).
"""

import sys
import traceback

try:
    from config.wsgi import application
except Exception:
    FAILURE = traceback.format_exc()
    print(FAILURE, file=sys.stderr, flush=True)

    def application(environ, start_response):
        body = f"The portal failed to load; save a fix to reload.\n\n{FAILURE}".encode()
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]
