"""Loaded by pytest before Django (`-p tests.environment` in pyproject.toml).

Keeps a test run away from the developer's own data and from real AWS: its
own DATA_DIR (so the filesystem broker never feeds `make run`'s worker), no
AWS credentials or profile unless a test sets them, AWS endpoints on a
closed local port unless a test starts the emulator, and no
instance-metadata look-ups (those would leave this machine).
"""

import os
import tempfile

os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="vmip-test-")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for name in (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IMAGEBUILDER",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_IAM",
):
    os.environ.pop(name, None)
os.environ["AWS_REGION"] = "us-east-1"
# A safety net: any AWS call a test makes without the emulator (or Stubber)
# is refused on this machine's discard port instead of leaving for the
# internet. The emulator fixture points these at itself.
for name in (
    "AWS_ENDPOINT_URL_IMAGEBUILDER",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_IAM",
):
    os.environ[name] = "http://127.0.0.1:9"
