"""moto's server, with DynamoDB requests applied one at a time.

moto serves every request on its own thread, and its DynamoDB backend takes no lock: a
`TransactWriteItems` that is cancelled restores a copy of the table taken when it began, undoing
the writes other requests made meanwhile, and an `Update` of a new item is visible (and can be
copied) with its key alone before its attributes are set. Under a fleet of workers that conflict
by design, both happen: acknowledged writes vanish and items without attributes persist
(scripts/moto_race.py shows it). DynamoDB itself applies each request atomically and
transactions serializably, so serializing DynamoDB's requests here makes moto keep the promise
the code under test relies on. Other services stay concurrent: SQS long polls must not queue
behind each other.

Usage: python moto_server.py -H 127.0.0.1 -p PORT  (the arguments of `moto_server`)
"""

import argparse
import os
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB_TARGET = "DynamoDB_"


class SerialDynamoDB:
    """A WSGI middleware: one DynamoDB request at a time, its whole response inside the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    # As moto_server does: moto builds some URLs from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
