"""Plain-language help for the ways an import commonly fails.

AWS's own message is always shown too; a hint says what it usually means
and what to do next.
"""

import re

HINTS = (
    (
        re.compile(r"AccessDenied|UnauthorizedOperation|not authori[sz]ed|permission", re.I),
        "AWS refused the call for lack of permissions. The worker's role (or the role the "
        "team's AWS target assumes) needs imagebuilder:ImportVmImage and imagebuilder:GetImage, "
        "plus ec2:DescribeImportImageTasks; ask your AWS administrator, then start a new import.",
    ),
    (
        re.compile(r"still (active|running|in progress)|not (yet )?complet|is active", re.I),
        "The VM import task has not finished yet. Wait until `aws ec2 "
        "describe-import-image-tasks` shows it completed, then start a new import.",
    ),
    (
        re.compile(r"does not exist|not found|unknown|invalid.*task|deleted", re.I),
        "Image Builder could not find that VM import task. Check the ID (import-ami-...) and the "
        "region; EC2 forgets finished import tasks after 7 days, so an old task must be "
        "imported again with `aws ec2 import-image`.",
    ),
    (
        re.compile(r"NoCredentials|NoRegion", re.I),
        "The portal's worker has no AWS access configured. An administrator must give it AWS "
        "credentials and a region (see the README's configuration).",
    ),
    (
        re.compile(r"gave up after", re.I),
        "AWS kept answering that it was busy or unavailable, so the portal stopped trying. "
        "Start a new import once AWS has recovered.",
    ),
)


def failure_hint(image_import):
    """A sentence on what to do next, or "" when nothing useful can be said."""
    if not image_import.is_failed or image_import.is_cancelled:
        return ""
    text = f"{image_import.error_code} {image_import.error_message}"
    for pattern, hint in HINTS:
        if pattern.search(text):
            return hint
    return ""
