from django import forms

from . import safehttp
from .models import DEFAULT_WEBHOOK_EVENTS, IMPORT_EVENTS, Webhook


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Webhook URL",
        max_length=2048,
        help_text="",  # url_help(): what the running configuration accepts
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…"}),
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=Webhook.Kind.choices,
        initial=Webhook.Kind.SLACK,
        help_text="Slack and Teams get a readable message. Generic JSON is for your own "
        "receiver: each message is signed with a secret shown once, after you add the webhook.",
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
        try:
            safehttp.check(url)
        except safehttp.BlockedUrl as error:
            raise forms.ValidationError(str(error)) from None
        return url


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
        label="E-mail address", required=False, help_text="Where the portal writes to you."
    )
    email_on_end = forms.BooleanField(
        label="E-mail me when an import I started ends",
        required=False,
        help_text="Available, failed or cancelled; and when a file I uploaded has reached S3.",
    )
