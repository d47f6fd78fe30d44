"""S3 and IAM come from moto's server mode, not from this package.

The emulator only talks to it, as EC2 talks to S3: it reads the disk an
ImportImage names (a few ranged GETs, never the whole object, disks.py), and
at start-up it sets up what a new account would have to set up by hand: the
upload bucket with its CORS rule and lifecycle rule, and the `vmimport` role
VM Import/Export uses. Setting up is idempotent: every call puts the same
configuration again.

    python -m fakeaws --s3-endpoint http://127.0.0.1:8002   # moto_server -p 8002
"""

import json
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGION = "us-east-1"
UPLOAD_BUCKET = "vm-import-portal-uploads"
IMPORT_ROLE = "vmimport"
# The portal's own origins under `make run`: the browser uploads straight to S3.
PORTAL_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")
CORS_RULE = {
    "AllowedOrigins": list(PORTAL_ORIGINS),
    "AllowedMethods": ["PUT", "GET", "POST", "HEAD"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3000,
}
LIFECYCLE_RULE = {
    "ID": "abort-incomplete-multipart-uploads",
    "Filter": {"Prefix": ""},
    "Status": "Enabled",
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
}
# The trust and role policies the VM Import/Export user guide gives for the
# service role named vmimport.
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vmie.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:Externalid": "vmimport"}},
        }
    ],
}


def role_policy(bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:ModifySnapshotAttribute",
                    "ec2:CopySnapshot",
                    "ec2:RegisterImage",
                    "ec2:Describe*",
                ],
                "Resource": "*",
            },
        ],
    }


def client(service, endpoint):
    """A boto3 client of moto's server: path-style, dummy credentials, no retries."""
    return boto3.session.Session(
        aws_access_key_id="emulator", aws_secret_access_key="emulator", region_name=REGION
    ).client(
        service,
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def set_up(endpoint, *, bucket=UPLOAD_BUCKET, role=IMPORT_ROLE, origins=PORTAL_ORIGINS):
    """The upload bucket (CORS, lifecycle) and the vmimport role, as a new account needs."""
    s3 = client("s3", endpoint)
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={"CORSRules": [{**CORS_RULE, "AllowedOrigins": list(origins)}]},
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [LIFECYCLE_RULE]}
    )
    iam = client("iam", endpoint)
    try:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    except ClientError as error:
        if error.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(TRUST_POLICY))
    iam.put_role_policy(
        RoleName=role, PolicyName=role, PolicyDocument=json.dumps(role_policy(bucket))
    )


def set_up_when_ready(endpoint, *, timeout=60, log=print, **names):
    """set_up() once moto answers (it may start after the emulator); False if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            set_up(endpoint, **names)
            return True
        except (BotoCoreError, ClientError) as error:
            if time.monotonic() > deadline:
                log(f"Could not set up S3 and IAM at {endpoint}: {error}")
                return False
            time.sleep(0.5)


def read_range(s3, bucket, key, start, end):
    """Bytes start..end (inclusive) of an object; fewer at its end."""
    return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()
