"""Forms a team admin uses: members and the team's AWS target."""

import re

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import EmailValidator

from . import invitations, teams
from .forms import filter_choice
from .inputs import mail_domain_problem
from .models import Membership, Team

# ASCII only: \d and \w would take other scripts' digits and letters, which
# AWS refuses only at the first call, far from the form. A region's first part
# has two to four letters (eusc-de-east-1); a partition is aws and up to two
# more parts (aws-us-gov, aws-iso-b). Each is bounded, so that nothing longer
# than its column gets past its check.
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]{1,10}){1,3}-\d{1,2}", re.ASCII)
REGION_MAX = Team._meta.get_field("aws_region").max_length
ACCOUNT_PATTERN = re.compile(r"\d{12}", re.ASCII)
ROLE_ARN_PATTERN = re.compile(
    r"arn:aws(-[a-z]{1,10}){0,2}:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}", re.ASCII
)
# S3's general purpose bucket naming rules, in order of the messages below.
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS_PATTERN = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# IAM role names: 1-64 of letters, digits and + = , . @ _ -
ROLE_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
PREFIX_MAX = 512


def role_account(role_arn):
    """The account ID in a role's ARN, or None."""
    match = ROLE_ARN_PATTERN.fullmatch(role_arn or "")
    return match["account"] if match else None


def validate_bucket_name(name):
    """S3's bucket naming rules, each with its own message."""
    if not 3 <= len(name) <= 63:
        raise forms.ValidationError(
            f"A bucket name has 3 to 63 characters; this one has {len(name)}."
        )
    if not BUCKET_PATTERN.fullmatch(name):
        raise forms.ValidationError(
            "A bucket name uses only lowercase letters, digits, dots and hyphens, and starts "
            "and ends with a letter or digit."
        )
    if ".." in name:
        raise forms.ValidationError("A bucket name may not contain two dots in a row.")
    if IP_ADDRESS_PATTERN.fullmatch(name):
        raise forms.ValidationError("A bucket name may not look like an IP address.")
    if name.startswith(BUCKET_RESERVED_PREFIXES) or name.endswith(BUCKET_RESERVED_SUFFIXES):
        raise forms.ValidationError(
            "S3 reserves bucket names starting with "
            + ", ".join(BUCKET_RESERVED_PREFIXES)
            + " or ending with "
            + ", ".join(BUCKET_RESERVED_SUFFIXES)
            + "."
        )


def clean_key_prefix(prefix):
    """A team's key prefix as a folder ("vm-imports" -> "vm-imports/"), or why it cannot be."""
    if prefix.startswith("/"):
        raise forms.ValidationError("A key prefix does not start with a slash.")
    if any(ord(char) < 32 or ord(char) == 127 for char in prefix):
        raise forms.ValidationError("A key prefix may not contain control characters.")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # a folder, so that team-a/ never matches team-ab/
    if len(prefix) > PREFIX_MAX:  # counted as stored, its "/" included
        raise forms.ValidationError(
            f"A key prefix has at most {PREFIX_MAX} characters, its closing / included."
        )
    return prefix


class TargetRules:
    """The rules of a team's AWS target and import area: the Team page's form and the admin's.

    clean_target(team) runs the rules between fields, from the form's clean(), while
    `team` still holds the values saved before. An account ID refused for want of a
    role is reported under ACCOUNT_WITHOUT_ROLE_FIELD (None: above the form).
    """

    ACCOUNT_WITHOUT_ROLE_FIELD = "aws_account_id"

    def clean_import_bucket(self):
        bucket = self.cleaned_data["import_bucket"]
        if bucket:
            validate_bucket_name(bucket)
        return bucket

    def clean_import_prefix(self):
        return clean_key_prefix(self.cleaned_data["import_prefix"])

    def clean_vm_import_role(self):
        name = self.cleaned_data["vm_import_role"]
        if not ROLE_NAME_PATTERN.fullmatch(name):
            raise forms.ValidationError(
                "An IAM role name has 1 to 64 characters: letters, digits and + = , . @ _ - "
                "(a name, not an ARN)."
            )
        return name

    def clean_aws_region(self):
        region = self.cleaned_data["aws_region"]
        if region and not (len(region) <= REGION_MAX and REGION_PATTERN.fullmatch(region)):
            raise forms.ValidationError("A region looks like eu-west-1 or us-gov-west-1.")
        return region

    def clean_aws_account_id(self):
        account = self.cleaned_data["aws_account_id"]
        if account and not ACCOUNT_PATTERN.fullmatch(account):
            raise forms.ValidationError("An AWS account ID is exactly 12 digits.")
        return account

    def clean_target(self, team):
        self.refuse_another_teams_area(team)
        self.match_account_and_role(team)

    def refuse_another_teams_area(self, team):
        """Uploads and the bucket picker act on the whole area: two teams may not share one."""
        bucket = self.cleaned_data.get("import_bucket")
        prefix = self.cleaned_data.get("import_prefix", "")
        if bucket and team.shares_import_area(bucket, prefix):
            self.add_error(
                "import_prefix",
                f"Another team imports from s3://{bucket}/{prefix} or a folder inside or around "
                "it: each team needs a bucket, or a key prefix in it, of its own, so that no "
                "team can list or overwrite another's disk files.",
            )

    def match_account_and_role(self, team):
        """The account named is where imports go: the role's, and none without a role."""
        self.account_cleared_with_role = False
        role_arn = self.cleaned_data.get("aws_role_arn", "")
        if role_arn:
            match = ROLE_ARN_PATTERN.fullmatch(role_arn)
            if not match:
                self.add_error(
                    "aws_role_arn", "A role ARN looks like arn:aws:iam::123456789012:role/name."
                )
            elif self.cleaned_data.get("aws_account_id") not in ("", match["account"]):
                self.add_error("aws_role_arn", "The role must be in the target account.")
            elif "aws_account_id" in self.cleaned_data:
                self.cleaned_data["aws_account_id"] = match["account"]
        elif not self.cleaned_data.get("aws_account_id"):
            return
        elif self.cleaned_data["aws_account_id"] == role_account(team.aws_role_arn):
            # The role was cleared and the account is still the one the form filled
            # in from it: the person meant to go back to the worker's own account.
            self.cleaned_data["aws_account_id"] = ""
            self.account_cleared_with_role = True
        else:
            self.add_error(
                self.ACCOUNT_WITHOUT_ROLE_FIELD,
                "Without a role to assume, imports go to the account of the worker's own "
                "credentials, whatever is set here: give a Role to assume in account "
                f"{self.cleaned_data['aws_account_id']}, or clear the Account ID.",
            )


class AwsTargetForm(TargetRules, forms.Form):
    # On the Team page the refusal names both fields above the form: the person
    # who cleared the role never touched the account ID the role had filled in.
    ACCOUNT_WITHOUT_ROLE_FIELD = None

    aws_region = forms.CharField(
        label="Region",
        required=False,
        help_text="For example eu-west-1; empty: the portal's default.",
    )
    aws_account_id = forms.CharField(
        label="Account ID",
        required=False,
        help_text="12 digits, the role's account; empty: the role's, or without a role the "
        "worker's own account.",
    )
    aws_role_arn = forms.CharField(
        label="Role to assume",
        required=False,
        help_text="arn:aws:iam::<account>:role/<name>; empty: the worker's own credentials.",
    )

    import_bucket = forms.CharField(
        label="Import bucket",
        required=False,
        help_text="The S3 bucket disk files are uploaded to, in the target region.",
    )
    import_prefix = forms.CharField(
        label="Key prefix",
        required=False,
        max_length=PREFIX_MAX,
        help_text="Uploads go under this prefix, e.g. vm-imports/; empty: the bucket's top.",
    )
    vm_import_role = forms.CharField(
        label="VM import role name",
        initial=Team._meta.get_field("vm_import_role").default,
        help_text="The IAM role EC2's VM import service assumes to read the bucket.",
        error_messages={"required": "The VM import role name is required (usually vmimport)."},
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team

    def clean(self):
        self.clean_target(self.team)
        return self.cleaned_data


def no_such_username(typed):
    """Why text with no "@" names nobody: too long for a username, or no account has it."""
    limit = get_user_model()._meta.get_field("username").max_length
    if len(typed) > limit:
        said = f"A username has at most {limit} characters; this one has {len(typed)}."
    else:
        said = f"No active user is called {typed!r}."
    return said + " To invite someone without an account, type their e-mail address."


# What Django's EmailValidator accepts, rule by rule, so that each refusal
# names the one broken (validate_email itself only says "invalid").
EMAIL_RULES = EmailValidator()


def address_problem(address):
    """The e-mail address rule `address` (text with an "@") breaks, in plain words; or None.

    The limit is that of the address the account and the invitation store
    (Django's EmailField, 254 characters); the rest are validate_email's.
    """
    limit = get_user_model()._meta.get_field("email").max_length
    if len(address) > limit:
        return f"An e-mail address has at most {limit} characters; this one has {len(address)}."
    if any(char.isspace() for char in address):
        return "An e-mail address has no spaces."
    name, _, domain = address.rpartition("@")
    if not name:
        return "An e-mail address has a name before the @, as in name@example.com."
    if not domain:
        return "An e-mail address has a domain after the @, as in name@example.com."
    if "@" in name and not name.startswith('"'):
        return "An e-mail address has a single @, as in name@example.com."
    if not EMAIL_RULES.user_regex.match(name):
        return (
            "The name before the @ may hold only letters a to z, digits and "
            "! # $ % & ' * + - / = ? ^ _ ` { | } ~ and dots, a dot never first, last or "
            "next to another."
        )
    if domain in EMAIL_RULES.domain_allowlist or EMAIL_RULES.validate_domain_part(domain):
        return mail_domain_problem(domain) or None
    if "." not in domain:
        return "The domain after the @ has a dot and an ending, as in example.com."
    return (
        "The domain after the @ is made of letters, digits and hyphens between dots, "
        "as in mail.example.com."
    )


class AddMemberForm(forms.Form):
    """A known account by username or e-mail address, or an address to invite.

    After is_valid(): `user` is the account (None for an address with none),
    `membership` its membership of the team if it is a pending invitation
    already there (sent again, not duplicated), and `email` the address to
    invite. What it says about accounts only the team admin who typed it sees.
    """

    # No max_length: the browser's maxlength would cut a long paste without a
    # word (an address losing its "@example.com" then read as a username);
    # clean_username says the limit of what was typed instead.
    username = forms.CharField(
        label="Username or e-mail",
        help_text="An e-mail address with no account yet gets an invitation to set a password.",
    )
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.SUBMITTER,
        error_messages={
            "invalid_choice": "A role is one of "
            + ", ".join(str(label) for _, label in Membership.Role.choices)
            + "."
        },
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.user = self.membership = None
        self.email = ""

    def clean_username(self):
        typed = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=typed).first()
        if user is None and "@" in typed:
            user = self.account_with_address(typed)
        elif user is None:
            raise forms.ValidationError(no_such_username(typed))
        if user is not None:
            self.check_account(user, typed)
        return typed

    def account_with_address(self, address):
        """The account an invitation made for this address, or None (then it is invited).

        Only an invitation proves an address: its link went there. One set on
        a Profile page proves nothing (anyone may type anyone's), so it never
        brings its account into a team: that account is added by username.
        """
        problem = address_problem(address)
        if problem:
            raise forms.ValidationError(problem)
        accounts = get_user_model().objects
        invited = accounts.filter(invitation__email__iexact=address).first()
        if invited is not None:
            return invited
        if accounts.filter(email__iexact=address).exists():
            raise forms.ValidationError(
                f"An account gives {address} as its address, but nobody checks the address "
                "a person sets on their Profile page: add that person by their username "
                "(they see it at the top of every page)."
            )
        self.email = accounts.normalize_email(address)
        return None

    def check_account(self, user, typed):
        if not user.is_active:
            raise forms.ValidationError(
                f"The account {user.get_username()} ({typed}) is deactivated; "
                "ask a portal admin to reactivate it."
            )
        membership = Membership.objects.filter(team=self.team, user=user).first()
        if membership is not None and not invitations.is_invited(user):
            raise forms.ValidationError(f"{user.get_username()} is already in this team.")
        self.user, self.membership = user, membership


class RoleForm(forms.Form):
    membership = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class InvitedMemberForm(forms.Form):
    membership = forms.IntegerField(
        widget=forms.HiddenInput, min_value=1, max_value=invitations.ID_MAX
    )


class ActivityFilterForm(forms.Form):
    """The team activity's filter; a kind a link got wrong is left out, as on the history."""

    kind = filter_choice(
        "kind",
        tuple(teams.ACTIVITY_KINDS),
        {value: kind.label for value, kind in teams.ACTIVITY_KINDS.items()},
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    team = forms.TypedChoiceField(coerce=int, label="Acts in team")

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(m.team_id, m.team.name) for m in memberships]
