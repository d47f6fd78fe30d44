"""A local stand-in for EC2 Image Builder, EC2 VM import and STS, over real HTTP.

No public emulator implements Image Builder or EC2 VM import, so the project
ships its own, beside the portal and independent of it: nothing here imports
Django or the `imports` app, and requests are judged by botocore's service
models (validation.py), never by the portal's code. `python -m fakeaws`
serves it (cli.py); `fakeaws.testing.running_emulator()` runs it inside a
test. State lives in memory only; a restart (or POST /_emulator/reset)
starts afresh. S3 and IAM are not emulated here: moto's server mode does
them, and ImportImage reads disks from it (s3.py, disks.py).
"""
