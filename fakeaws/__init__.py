"""A local stand-in for AWS that judges requests by AWS's own definitions.

validation.py walks botocore's service models; query.py reads query-protocol
form fields back into a model's members. Nothing here imports Django or the
`imports` app.
"""
