"""The generic webhook's signature: HMAC-SHA256 over "<timestamp>.<raw body>".

Sent as `X-Portal-Signature: sha256=<hex>` with `X-Portal-Timestamp: <unix
seconds>`; a receiver recomputes it with the webhook's secret, compares in
constant time and refuses old timestamps (replays). The README shows one.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"


def sign(secret, timestamp, body):
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret, timestamp, body, signature):
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
