"""A local stand-in for EC2 Image Builder, EC2 VM import and STS, over real HTTP.

No public emulator implements Image Builder or EC2 VM import, so the project
ships its own: `python manage.py fakeaws` serves it, and
`imports.emulator.testing.running_emulator()` runs it inside a test. State
lives in memory only; a restart (or POST /_emulator/reset) starts afresh.
"""
