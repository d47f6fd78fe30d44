"""Plain-language help for the ways an import commonly fails.

AWS's own message is always shown too; a hint says what it usually means
and what to do next.
"""

import re

# EC2 VM import's own failures, as the VM Import/Export User Guide's
# "Troubleshooting VM Import/Export" page words them (tests/test_hints.py
# quotes each message of that page), plus the failures of its requirements
# page (kernel, UEFI, disk validation). Most specific first: they come before
# the generic permission and not-found hints below, which their messages
# would also match, and "Invalid S3 source location" comes before the "Disk
# validation failed" that EC2 wraps it in.
VM_IMPORT_HINTS = (
    (
        re.compile(
            r"service role .*vmimport.* does not exist|role .* does not exist or does not "
            r"have sufficient permissions",
            re.I,
        ),
        "EC2 could not use the VM import role. Create the role (named as on the Team page, "
        "usually vmimport) with a trust policy for vmie.amazonaws.com and a policy that may read "
        "the team's bucket; if the bucket is encrypted with a KMS key, the role also needs "
        "kms:Decrypt on that key. Then press Check setup on the Team page and start a new import.",
    ),
    (
        re.compile(r"invalid s3 source location", re.I),
        "EC2 could not find the disk file in S3: the bucket name or the key is wrong, or the "
        "file was deleted. Check the file in the team's import bucket, then start a new import.",
    ),
    (
        re.compile(
            r"not in the same region|bucket .* region|region .* bucket|not local to the region",
            re.I,
        ),
        "The import bucket is in another region than the import. Use a bucket in the team's "
        "region (Team page, Check setup), copy the file there, and start a new import.",
    ),
    (
        re.compile(r"disk-image-size=0|parameter disk-image-size", re.I),
        "EC2 does not support this disk image format. Export the VM as OVA, VMDK, VHD, VHDX or "
        "raw, check that the format chosen matches the file, and start a new import.",
    ),
    (
        re.compile(r"footers? not identical", re.I),
        "The VHD's header and footer differ: it is a differencing VHD, or it was not created "
        "correctly (an export or an upload cut short). Export the VM again as a fixed or "
        "dynamic VHD, upload it again and start a new import.",
    ),
    (
        re.compile(r"unsupported compression algorithm|unsupported ova|ova.*compress", re.I),
        "EC2 cannot read the compression of the disk inside this export: the VMDK was made in "
        "OVA format instead of OVF format. Export the VM again in OVF format (or upload a "
        "stream-optimized VMDK), then start a new import.",
    ),
    (
        re.compile(
            r"uncompressed data has invalid length|corrupt|invalid vmdk|vmdk.*(invalid|"
            r"unsupported)|unsupported vmdk",
            re.I,
        ),
        "The VMDK file is damaged or not a stream-optimized VMDK. Repair it or export it again "
        "from VMware (as an OVA or a stream-optimized VMDK), upload it again and start a new "
        "import.",
    ),
    (
        re.compile(r"unsupported kernel", re.I),
        "EC2 VM import does not support this Linux kernel. Boot the VM on a kernel listed in "
        "the VM Import/Export requirements, export it again and start a new import.",
    ),
    (
        re.compile(r"could not read fstab|multiple directories found", re.I),
        "EC2 found more than one Linux system on the disk (a multi-boot VM, or several /etc "
        "directories), which VM import does not support. Keep one system on the disk, export "
        "it again and start a new import.",
    ),
    (
        re.compile(r"logical volume group activation failed", re.I),
        "A logical volume (LVM) on the disk could not be activated, which usually means the "
        "file or the disk is damaged. Check the disk on the VM, export and upload it again, "
        "and start a new import.",
    ),
    (
        re.compile(
            r"no bootable partition|bootable partition|boot ?loader not found|no valid "
            r"partitions",
            re.I,
        ),
        "EC2 found no partition it can boot from. Check that the disk holds the operating "
        "system with its boot loader (the root partition on the same disk as the boot record); "
        "a GPT-partitioned disk needs Boot mode uefi, or convert it to MBR. Export it again and "
        "start a new import.",
    ),
    (
        re.compile(r"\buefi\b", re.I),
        "The disk boots with UEFI. Start a new import with Boot mode set to uefi (or "
        "uefi-preferred), or convert the VM to legacy BIOS boot first.",
    ),
    (
        re.compile(r"booter networking failure|\.net framework", re.I),
        "The Windows VM needs the Microsoft .NET Framework 3.5 SP1 or later for EC2's first "
        "boot. Install it on the VM, export it again and start a new import.",
    ),
    (
        re.compile(r"firstbootfailure|failed to boot and establish network", re.I),
        "Windows did not boot and reach the network on EC2. Before exporting again: turn off "
        "anti-virus software and firewalls, undo hardening, enable TCP/IP with DHCP, detach "
        "every disk but the system disk, check that this Windows edition supports volume "
        "licensing and that it was installed in a VM (not converted from a physical machine). "
        "Then start a new import.",
    ),
    (
        re.compile(r"unknown os|missing os files|no operating system", re.I),
        "EC2 could not recognise the operating system on the disk. Check that it is a "
        "supported Windows or Linux version and that the disk is the system disk, then start "
        "a new import.",
    ),
    (
        re.compile(r"disk validation failed", re.I),
        "EC2 could not validate the disk file: its format, its size or access to it. Check that "
        "the disk format chosen matches the file, that the VM import role may read the bucket "
        "(Check setup on the Team page), and start a new import.",
    ),
)

GENERAL_HINTS = (
    (
        # AWS holds a client token per account, the portal per team: another
        # team in the same account (or a script outside the portal) used it.
        re.compile(r"IdempotentParameterMismatch", re.I),
        "This client token was already used in the AWS account for a different request, by "
        "another team that imports into the same account or outside the portal. Start a new "
        "import: it gets a new client token. A script should make a new UUID for each import.",
    ),
    (
        re.compile(r"AccessDenied|UnauthorizedOperation|not authori[sz]ed|permission", re.I),
        "AWS refused the call for lack of permissions. The worker's role (or the role the "
        "team's AWS target assumes) needs imagebuilder:ImportVmImage and imagebuilder:GetImage, "
        "plus ec2:ImportImage and ec2:DescribeImportImageTasks (README, Several machines); ask "
        "your AWS administrator, then start a new import.",
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


# Failures that are no AWS answer about the import itself, told by the
# error code the portal gave them (the text starts with it). First: their
# messages could match the wording of the hints above.
PORTAL_HINTS = (
    (
        re.compile(r"^ConnectionError\b"),
        "The portal could not reach AWS: no connection could be made from its worker (a "
        "network, proxy or firewall problem, or an AWS outage), so it stopped trying. Start "
        "a new import once the worker can reach AWS again.",
    ),
    (
        re.compile(r"^ImageNotFound\b"),
        "The image is gone from Image Builder, so this import cannot finish: someone deleted "
        "it in AWS, or, with the local emulator, the emulator was restarted (it forgets its "
        "images). Check with `aws imagebuilder list-images`, then start a new import.",
    ),
)


HINTS = PORTAL_HINTS + VM_IMPORT_HINTS + GENERAL_HINTS


def failure_hint(image_import):
    """A sentence on what to do next, or "" when nothing useful can be said."""
    if not image_import.is_failed or image_import.is_cancelled:
        return ""
    # EC2's last word on the VM import task often names the cause that
    # Image Builder's failure only summarises.
    text = f"{image_import.error_code} {image_import.error_message} {image_import.status_message}"
    for pattern, hint in HINTS:
        if pattern.search(text):
            return hint
    return ""
