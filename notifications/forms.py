from django import forms
from django.contrib.auth import get_user_model

from imports.inputs import mail_domain_problem

from . import safehttp
from .models import (
    DEFAULT_WEBHOOK_EVENTS,
    IMPORT_EVENTS,
    SLACK_WEBHOOK_HOSTS,
    TEAMS_WEBHOOK_DOMAINS,
    Webhook,
)

URL_MAX = Webhook._meta.get_field("url").max_length
EMAIL_MAX = get_user_model()._meta.get_field("email").max_length
LET_THE_URL_DECIDE = "Choose, or let the URL decide"


def either(names):
    """("a", "b", "c") -> "a, b or c"."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


class WebhookForm(forms.Form):
    """A team's new webhook; a kind left blank is the one its URL's host says.

    After is_valid(), cleaned_data["kind"] is always a Webhook.Kind.
    """

    # No max_length: the browser's maxlength would cut a long paste without a
    # word (and save a shorter URL); clean_url says the limit instead.
    url = forms.CharField(
        label="Webhook URL",
        help_text="",  # url_help(): what the running configuration accepts
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…"}),
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=[("", LET_THE_URL_DECIDE), *Webhook.Kind.choices],
        required=False,
        error_messages={
            "invalid_choice": "A kind is one of "
            + ", ".join(str(label) for _, label in Webhook.Kind.choices)
            + f", or “{LET_THE_URL_DECIDE}”."
        },
        help_text=f"Left to the URL: {either(SLACK_WEBHOOK_HOSTS)} is Slack; a host under "
        f"{either(TEAMS_WEBHOOK_DOMAINS)} is Teams; any other, Generic JSON. Slack and Teams "
        "get a readable message. Generic JSON is for your own receiver: each message is signed "
        "with a secret shown once, after you add the webhook.",
    )
    events = forms.MultipleChoiceField(
        choices=[(event.value, event.label) for event in IMPORT_EVENTS],
        initial=DEFAULT_WEBHOOK_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        help_text="“Upload finished”: a disk file sent from the browser has reached the "
        "team's bucket and its import is queued.",
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="Optional: a name that tells this webhook apart on the Team page.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["url"].help_text = url_help()

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if len(url) > URL_MAX:  # the stored URL's limit, said before any DNS look-up
            raise forms.ValidationError(
                f"A webhook URL has at most {URL_MAX} characters; this one has {len(url)}."
            )
        try:
            safehttp.check(url)
        except safehttp.BlockedUrl as error:
            raise forms.ValidationError(str(error)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("kind") and "url" in cleaned:
            cleaned["kind"] = Webhook.kind_for_url(cleaned["url"])
        return cleaned


def url_help():
    """What the URL field accepts, as safehttp.check judges it now."""
    where = (
        # `make run` and tests turn WEBHOOK_ALLOW_PRIVATE on, for a receiver on
        # this machine: saying "https only" there would be untrue.
        "http or https, to any address, private and local ones too (WEBHOOK_ALLOW_PRIVATE is on)."
        if safehttp.allow_private()
        else "https only; it must resolve to a public address."
    )
    return (
        f"{where} Slack and Teams give you this URL when you add an incoming webhook or a workflow."
    )


class EventsForm(forms.Form):
    events = forms.MultipleChoiceField(
        choices=[(event.value, event.label) for event in IMPORT_EVENTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class ProfileForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address",
        required=False,
        max_length=EMAIL_MAX,  # the account's column, not the form's 320
        help_text="Where the portal writes to you.",
    )
    email_on_end = forms.BooleanField(
        label="E-mail me when an import I started ends",
        required=False,
        help_text="Available, failed or cancelled; and when a file I uploaded has reached S3.",
    )

    def clean_email(self):
        email = self.cleaned_data["email"]
        problem = email and mail_domain_problem(email.rpartition("@")[2])
        if problem:
            raise forms.ValidationError(problem)
        return email
