"""Faults on demand: error answers, dropped connections, a failure rate, latency.

A fault is drawn for each service call before it runs. One marked `after`
lets the call run first and then loses its answer: the case where a retry
must not create a second image.
"""

import random
import threading
from dataclasses import asdict, dataclass

DROP = "drop"  # close the connection without an HTTP answer


@dataclass
class Fault:
    kind: str  # an error code, or DROP
    operation: str | None = None  # None: any operation
    remaining: int = 1
    message: str | None = None
    after: bool = False

    def applies_to(self, operation):
        return self.remaining > 0 and self.operation in (None, operation)

    def describe(self):
        return self.message or f"Injected by the emulator: {self.kind}."


class Faults:
    def __init__(self, seed=None):
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.clear()

    def clear(self):
        with self.lock:
            self.queued = []
            self.rate = 0.0
            self.rate_fault = None
            self.latency = {}  # operation (None: any) -> seconds

    def fail_next(self, count, kind, operation=None, message=None, after=False):
        with self.lock:
            self.queued.append(Fault(kind, operation, count, message, after))

    def fail_rate(self, rate, kind, operation=None):
        with self.lock:
            self.rate = rate
            self.rate_fault = Fault(kind, operation, remaining=1)

    def add_latency(self, seconds, operation=None):
        with self.lock:
            self.latency[operation] = seconds

    def draw(self, operation):
        """The fault for this call (or None) and the seconds to wait before answering."""
        with self.lock:
            delay = self.latency.get(operation, self.latency.get(None, 0.0))
            for fault in self.queued:
                if fault.applies_to(operation):
                    fault.remaining -= 1
                    return fault, delay
            rate_fault = self.rate_fault
            applies = rate_fault and rate_fault.operation in (None, operation)
            if applies and self.random.random() < self.rate:
                return rate_fault, delay
            return None, delay

    def describe(self):
        with self.lock:
            return {
                "next": [asdict(fault) for fault in self.queued if fault.remaining > 0],
                "rate": self.rate,
                "rateFault": asdict(self.rate_fault) if self.rate_fault else None,
                "latency": {operation or "*": s for operation, s in self.latency.items()},
            }
