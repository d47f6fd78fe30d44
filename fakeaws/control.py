"""The control API under /_emulator/: JSON in, JSON out, for tests and people.

Control calls are never counted and never faulted.

  GET  /_emulator/              this list, as JSON: each endpoint with what it does
  GET  /_emulator/health        {"ok": true}
  GET  /_emulator/calls         calls per operation and clientToken, images created,
                                AssumeRole requests (ExternalId included)
  GET  /_emulator/state         every task and image with its current status, faults
  POST /_emulator/reset         back to the start: re-seeded, start-up faults re-armed
  POST /_emulator/advance       {"seconds": 10}: jump the clock forward
  POST /_emulator/fail-next     {"count": 1, "error": "ServiceUnavailableException",
                                 "operation": null, "message": null, "after": false}
  POST /_emulator/drop-next     {"count": 1, "operation": null, "after": false}
  POST /_emulator/fail-rate     {"rate": 0.2, "error": "...", "operation": null}
  POST /_emulator/latency       {"seconds": 0.5, "operation": null}
  POST /_emulator/clear-faults
  POST /_emulator/end-image     {"imageArn": "...", "status": "FAILED", "reason": "..."}

`after: true` lets the call take effect and then loses its answer.
An image ARN not created yet may be given to end-image: the image ends so
as soon as it is created (ARNs are predictable: name, version, build 1).
"""

import json

from . import ec2, imagebuilder, sts
from .faults import DROP
from .state import IMAGE_END_STATUSES
from .wire import json_response

PREFIX = "/_emulator/"
OPERATIONS = (*imagebuilder.OPERATIONS, *ec2.OPERATIONS, *sts.OPERATIONS)


class ControlError(Exception):
    pass


def handle(emulator, request):
    route = (request.method, request.path.removeprefix(PREFIX).rstrip("/"))
    action = ROUTES.get(route)
    if action is None:
        return json_response(404, {"error": f"No control endpoint {route[0]} {request.path}."})
    try:
        body = json.loads(request.body) if request.body.strip() else {}
        if not isinstance(body, dict):
            raise ControlError("The body must be a JSON object.")
        return json_response(200, action(emulator, body))
    except (ControlError, ValueError, TypeError) as error:
        return json_response(400, {"error": str(error)})


def index(emulator, body):
    """This list: each control endpoint, its method and what it does."""
    # The address the emulator prints at start-up: a person opening it
    # learns what it offers rather than "No control endpoint".
    return {
        "endpoints": [
            {"method": method, "path": f"{PREFIX}{route}", "does": action.__doc__}
            for (method, route), action in ROUTES.items()
        ]
    }


def health(emulator, body):
    """Whether the emulator answers: {"ok": true}."""
    return {"ok": True}


def calls(emulator, body):
    """Calls per operation and clientToken, images created, AssumeRole requests."""
    return emulator.world.calls()


def state(emulator, body):
    """Every task and image with its current status, and the faults armed."""
    world = emulator.world
    with world.lock:
        tasks = [
            {"importTaskId": task.task_id, **vars(world.task_state(task)), "imageId": task.image_id}
            for task in world.tasks.values()
        ]
        images = [
            {
                "imageArn": image.arn,
                "vmImportTaskId": image.task_id,
                **vars(world.image_state(image)),
            }
            for image in world.images.values()
        ]
        return {
            "now": world.clock.now(),
            "stepSeconds": world.step_seconds,
            "tasks": tasks,
            "images": images,
            "faults": emulator.faults.describe(),
        }


def reset(emulator, body):
    """Back to the start: re-seeded, start-up faults re-armed."""
    emulator.reset()
    return {"ok": True}


def advance(emulator, body):
    """Jump the clock forward: {"seconds": 10}."""
    seconds = number(body, "seconds")
    with emulator.world.lock:
        emulator.world.clock.advance(seconds)
    return {"ok": True, "now": emulator.world.clock.now()}


def fail_next(emulator, body):
    """Fail the next calls: {"count", "error", "operation", "message", "after"}."""
    emulator.faults.fail_next(
        count(body),
        error_code(body),
        operation_of(body),
        message=body.get("message"),
        after=bool(body.get("after", False)),
    )
    return {"ok": True}


def drop_next(emulator, body):
    """Lose the answers of the next calls: {"count", "operation", "after"}."""
    emulator.faults.fail_next(
        count(body), DROP, operation_of(body), after=bool(body.get("after", False))
    )
    return {"ok": True}


def fail_rate(emulator, body):
    """Fail a share of calls: {"rate": 0.2, "error", "operation"}."""
    rate = number(body, "rate")
    if not 0 <= rate <= 1:
        raise ControlError("rate must be between 0 and 1.")
    emulator.faults.fail_rate(rate, error_code(body), operation_of(body))
    return {"ok": True}


def latency(emulator, body):
    """Delay every call: {"seconds": 0.5, "operation"}."""
    emulator.faults.add_latency(number(body, "seconds"), operation_of(body))
    return {"ok": True}


def clear_faults(emulator, body):
    """Disarm every fault."""
    emulator.faults.clear()
    return {"ok": True}


def end_image(emulator, body):
    """End an image: {"imageArn", "status": "FAILED", "reason"}."""
    arn = body.get("imageArn")
    status = body.get("status", "FAILED")
    if not isinstance(arn, str) or not arn:
        raise ControlError("imageArn is required.")
    if status not in IMAGE_END_STATUSES:
        raise ControlError(f"status must be one of {', '.join(IMAGE_END_STATUSES)}.")
    reason = body.get("reason") or f"Image ended {status} by the emulator's control API."
    exists = emulator.world.end_image(arn, status, reason)
    return {"ok": True, "imageArn": arn, "exists": exists}


def number(body, name):
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"{name} must be a number, 0 or more.")
    return value


def count(body):
    value = body.get("count", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ControlError("count must be a whole number, 1 or more.")
    return value


def error_code(body):
    code = body.get("error", "ServiceUnavailableException")
    if not isinstance(code, str) or not code:
        raise ControlError("error must be an error code, like ServiceUnavailableException.")
    return code


def operation_of(body):
    operation = body.get("operation")
    if operation is not None and operation not in OPERATIONS:
        raise ControlError(f"operation must be one of {', '.join(OPERATIONS)}.")
    return operation


ROUTES = {
    ("GET", ""): index,
    ("GET", "health"): health,
    ("GET", "calls"): calls,
    ("GET", "state"): state,
    ("POST", "reset"): reset,
    ("POST", "advance"): advance,
    ("POST", "fail-next"): fail_next,
    ("POST", "drop-next"): drop_next,
    ("POST", "fail-rate"): fail_rate,
    ("POST", "latency"): latency,
    ("POST", "clear-faults"): clear_faults,
    ("POST", "end-image"): end_image,
}
