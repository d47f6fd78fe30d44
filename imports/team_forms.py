"""Forms a team admin uses: members and the team's AWS target."""

import re

from django import forms
from django.contrib.auth import get_user_model

from .models import Membership

REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
ACCOUNT_PATTERN = re.compile(r"\d{12}")
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}")


class AwsTargetForm(forms.Form):
    aws_region = forms.CharField(
        label="Region",
        required=False,
        help_text="For example eu-west-1; empty: the portal's default.",
    )
    aws_account_id = forms.CharField(
        label="Account ID", required=False, help_text="12 digits; empty: the worker's own account."
    )
    aws_role_arn = forms.CharField(
        label="Role to assume",
        required=False,
        help_text="arn:aws:iam::<account>:role/<name>; empty: the worker's own credentials.",
    )

    def clean_aws_region(self):
        region = self.cleaned_data["aws_region"]
        if region and not REGION_PATTERN.fullmatch(region):
            raise forms.ValidationError("A region looks like eu-west-1 or us-gov-west-1.")
        return region

    def clean_aws_account_id(self):
        account = self.cleaned_data["aws_account_id"]
        if account and not ACCOUNT_PATTERN.fullmatch(account):
            raise forms.ValidationError("An AWS account ID is exactly 12 digits.")
        return account

    def clean(self):
        role_arn = self.cleaned_data.get("aws_role_arn", "")
        if role_arn:
            match = ROLE_ARN_PATTERN.fullmatch(role_arn)
            if not match:
                self.add_error(
                    "aws_role_arn", "A role ARN looks like arn:aws:iam::123456789012:role/name."
                )
            elif self.cleaned_data.get("aws_account_id") not in ("", match[1]):
                self.add_error("aws_role_arn", "The role must be in the target account.")
        return self.cleaned_data


class AddMemberForm(forms.Form):
    username = forms.CharField(label="Username")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.SUBMITTER)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_username(self):
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user is called {username!r}.")
        if Membership.objects.filter(team=self.team, user=user).exists():
            raise forms.ValidationError(f"{username} is already in this team.")
        self.user = user
        return username


class RoleForm(forms.Form):
    membership = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    team = forms.TypedChoiceField(coerce=int, label="Acts in team")

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(m.team_id, m.team.name) for m in memberships]
