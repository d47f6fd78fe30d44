"""`python -m fakeaws --port N [flags]`: serve the emulator until interrupted."""

import argparse
import threading

from . import s3
from .control import OPERATIONS
from .server import EmulatorOptions, make_server

DEFAULT_PORT = 8001
DESCRIPTION = (
    "Serve the local AWS emulator: EC2 Image Builder (ImportVmImage, GetImage), EC2 VM "
    "import (ImportImage, DescribeImportImageTasks, CancelImportTask) and STS "
    "(AssumeRole), all on one port, so AWS_ENDPOINT_URL_IMAGEBUILDER, "
    "AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_STS can all point at it. Requests are "
    "judged by botocore's service models. State lives in memory only: a restart starts "
    "again from the seeded VM import tasks. Faults can be armed here or through the JSON "
    "control API under /_emulator/. S3 and IAM are moto's (moto_server): with "
    "--s3-endpoint, ImportImage reads each disk's header from there."
)


def build_parser(prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=2.0,
        help="How long each import and image step lasts; 0 puts everything at its "
        "end at once (default 2).",
    )
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument(
        "--fail-next",
        type=int,
        default=0,
        metavar="N",
        help="Answer the next N calls with the --fail-with error.",
    )
    parser.add_argument(
        "--fail-with",
        default="ServiceUnavailableException",
        metavar="CODE",
        help="Error code for --fail-next and --fail-rate: ServiceUnavailableException, "
        "ServiceException, CallRateLimitExceededException, ThrottlingException, ... "
        "(EC2 and STS calls get their own service's equivalent).",
    )
    parser.add_argument(
        "--fail-operation",
        choices=OPERATIONS,
        help="Limit --fail-next, --drop-next and --fail-rate to one operation.",
    )
    parser.add_argument(
        "--drop-next",
        type=int,
        default=0,
        metavar="N",
        help="Close the connection without an answer on the next N calls.",
    )
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="Answer this fraction of calls (0 to 1) with the --fail-with error.",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="Delay every answer."
    )
    parser.add_argument("--seed", type=int, help="Seed for --fail-rate, for repeatable runs.")
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="moto's server (moto_server -p 8002): ImportImage reads each disk's header "
        "from S3 there, and at start-up the emulator creates the upload bucket "
        f"{s3.UPLOAD_BUCKET} (CORS, lifecycle) and the IAM role {s3.IMPORT_ROLE} in it. "
        "Without it, disks are taken as declared.",
    )
    parser.add_argument(
        "--portal-origin",
        action="append",
        metavar="ORIGIN",
        help="An origin the upload bucket's CORS rule allows (repeatable; default "
        f"{' and '.join(s3.PORTAL_ORIGINS)}).",
    )
    parser.add_argument(
        "--seed-converting-seconds",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="How long the seeded converting VM import task takes to complete once it is "
        "first listed (default 180; it waits until then).",
    )
    parser.add_argument("--quiet", action="store_true", help="Do not log each request.")
    return parser


def main(argv=None, prog=None):
    parser = build_parser(prog)
    arguments = parser.parse_args(argv)
    if not 0 <= arguments.fail_rate <= 1:
        parser.error("--fail-rate must be between 0 and 1.")
    options = EmulatorOptions(
        step_seconds=arguments.step_seconds,
        account_id=arguments.account_id,
        fail_next=arguments.fail_next,
        fail_with=arguments.fail_with,
        fail_operation=arguments.fail_operation,
        drop_next=arguments.drop_next,
        fail_rate=arguments.fail_rate,
        latency=arguments.latency,
        seed=arguments.seed,
        s3_endpoint=arguments.s3_endpoint,
        seed_converting_seconds=arguments.seed_converting_seconds,
    )
    try:
        server = make_server(arguments.host, arguments.port, options, verbose=not arguments.quiet)
    except OSError as error:
        parser.exit(1, f"Cannot listen on {arguments.host}:{arguments.port}: {error}\n")
    print(
        f"Fake AWS listening on {server.url} (state in memory; lost on restart).\n"
        f"  export AWS_ENDPOINT_URL_IMAGEBUILDER={server.url}\n"
        f"  export AWS_ENDPOINT_URL_EC2={server.url}\n"
        f"  export AWS_ENDPOINT_URL_STS={server.url}\n"
        f"Control API: {server.url}/_emulator/ (calls, state, reset, advance, faults).",
        flush=True,
    )
    if arguments.s3_endpoint:
        # moto may start after the emulator: set it up in the background.
        origins = tuple(arguments.portal_origin or s3.PORTAL_ORIGINS)
        threading.Thread(
            target=set_up_s3, args=(arguments.s3_endpoint, origins), daemon=True
        ).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def set_up_s3(endpoint, origins):
    if s3.set_up_when_ready(endpoint, origins=origins):
        print(
            f"S3 and IAM at {endpoint}: bucket {s3.UPLOAD_BUCKET} (CORS for "
            f"{', '.join(origins)}, lifecycle) and role {s3.IMPORT_ROLE} are set up.\n"
            f"  export AWS_ENDPOINT_URL_S3={endpoint}\n"
            f"  export AWS_ENDPOINT_URL_IAM={endpoint}",
            flush=True,
        )
