"""Invitations: a team admin brings in a colleague who has no account yet.

An invitation is an account the portal made for an e-mail address, with an
unusable password and no sign-in yet, its membership of the team, and an
e-mail carrying a one-time link to set a password. The link carries
Django's password-reset token (default_token_generator), which hashes the
account's password and last sign-in: it stops working once the password is
set, when a fresh link is sent (the unusable password is drawn again), and
after PASSWORD_RESET_TIMEOUT. Nothing about the link is stored.
"""

import logging
import re
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlencode, urlsafe_base64_decode, urlsafe_base64_encode

from .audit import client_ip
from .models import Action, AlreadyMember, AuditEvent, Invitation, Membership

logger = logging.getLogger(__name__)

# What a username may hold (Django's own validator), and the room left for "-2".
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
USERNAME_STEM_MAX = 140
ID_MAX = 2**63 - 1


def is_pending(user):
    """Whether the account has never been used: no password to sign in with, never signed in.

    Only such an account is ever sent a set-password link, and only to its own
    address, so no account that someone uses can be taken over this way.
    """
    return not user.has_usable_password() and user.last_login is None


def is_invited(user):
    """A pending account that an invitation made (not one a portal admin left without a password).

    Only such an account is ever sent a link, so an account made some other
    way is added to a team as it is, never offered a password by e-mail.
    """
    return is_pending(user) and Invitation.objects.filter(user=user).exists()


def username_for(email):
    """A free username made from the address's local part: ada@example.com -> ada, ada-2, ..."""
    stem = USERNAME_UNSAFE.sub("", email.rsplit("@", 1)[0]).strip(".-+@").lower()
    stem = stem[:USERNAME_STEM_MAX] or "member"
    taken = set(
        get_user_model()
        .objects.filter(username__istartswith=stem)
        .values_list("username", flat=True)
    )
    taken = {name.lower() for name in taken}
    candidate, number = stem, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}"
    return candidate


def create_account(email):
    """The invited person's account: active, but with no password it cannot sign in.

    Active rather than inactive until accepted: the unusable password already
    refuses every sign-in, and an active account is one a team admin can add
    to another team by its username meanwhile, as any other.
    """
    User = get_user_model()
    for _ in range(5):  # another invitation may take the same username first
        try:
            with transaction.atomic():
                user = User(username=username_for(email), email=email)
                user.set_unusable_password()
                user.save()
                return user
        except IntegrityError:
            continue
    raise IntegrityError("No free username for this address; try again.")


def invite(team, email, role, *, by):
    """A new account for `email`, its membership of `team`, recorded; the e-mail is sent apart."""
    with transaction.atomic():
        user = create_account(email)
        Invitation.objects.create(user=user, email=email)
        membership = Membership.objects.create(team=team, user=user, role=role)
        record_invitation(membership, by=by)
    return membership


def invite_pending_account(team, user, role, *, by):
    """An account still waiting for its first password joins one more team, recorded."""
    with transaction.atomic():
        membership = Membership.objects.create(team=team, user=user, role=role)
        record_invitation(membership, by=by)
    return membership


def bring_in(team, form, *, by):
    """Do what a valid AddMemberForm asks; returns (what was done, why mail failed or None).

    A known account joins at once; an address with none is invited; an
    invitation still waiting is sent again (with the role now chosen), not
    made twice. A mail server that refuses leaves the membership in place,
    to be sent again.
    """
    role, user = form.cleaned_data["role"], form.user
    if user is None:
        membership = invite(team, form.email, role, by=by)
        done = (
            f"Invitation sent to {form.email}; {membership.user.get_username()} shows as "
            "Invited until they set a password."
        )
    elif form.membership is not None:
        membership = form.membership
        try:
            changed = membership.change_role(role, by=by)
        except Membership.DoesNotExist:
            return membership.removed_meanwhile() + ": add them again if you meant to.", None
        as_role = f", now as {membership.get_role_display()}" if changed else ""
        renew_link(membership, by=by)
        done = (
            f"{user.get_username()} was already invited: the invitation was sent again "
            f"with a fresh link{as_role}."
        )
    elif is_invited(user):
        try:
            membership = invite_pending_account(team, user, role, by=by)
        except IntegrityError:  # another admin invited them into the team meanwhile
            membership = Membership.objects.get(team=team, user=user)
            renew_link(membership, by=by)
        done = f"{user.get_username()} has not set a password yet: invitation sent to {user.email}."
    else:
        try:
            team.add_member(user, role, by=by)
        except AlreadyMember as meanwhile:
            return meanwhile.added_meanwhile(), None
        return f"{user.get_username()} added.", None
    return done, send_invitation(membership, by=by)


def mail_failed(problem):
    return (
        f"The member is in the list as Invited, but the e-mail could not be sent ({problem}). "
        "Use Send the invitation again once mail works."
    )


def record_invitation(membership, *, by):
    """A link is on its way to the membership's account, made by an invitation; audited."""
    Invitation.objects.filter(user=membership.user).update(sent_at=timezone.now())
    AuditEvent.record(
        Action.MEMBER_INVITED,
        actor=by,
        team=membership.team,
        detail=f"{membership.user.get_username()} invited as {membership.get_role_display()}; "
        f"link sent to {membership.user.email}",
    )


def renew_link(membership, *, by):
    """A fresh link for a pending member, recorded: every link sent before stops working."""
    user = membership.user
    user.set_unusable_password()  # a new random one: the old tokens hashed the old
    user.save(update_fields=["password"])
    Invitation.objects.filter(user=user).update(sent_at=timezone.now())
    AuditEvent.record(
        Action.INVITATION_RESENT,
        actor=by,
        team=membership.team,
        detail=f"{user.get_username()} invitation sent again to {user.email}",
    )


def withdraw(user):
    """A pending account removed from its last team: its links stop working.

    Removed from one team of several, the link naming that team is refused
    anyway (accepting needs the membership); the others' links still work.
    """
    if is_pending(user) and not Membership.objects.filter(user=user).exists():
        user.set_unusable_password()
        user.save(update_fields=["password"])


def invitation_link(membership):
    """The absolute one-time link, as e-mailed: the team, the account and its token."""
    query = urlencode(
        {
            "team": membership.team_id,
            "uid": urlsafe_base64_encode(force_bytes(membership.user_id)),
            "token": default_token_generator.make_token(membership.user),
        }
    )
    return settings.PORTAL_URL.rstrip("/") + reverse("imports:accept_invitation") + "?" + query


def link_lifetime():
    """PASSWORD_RESET_TIMEOUT in plain words: "3 days", "12 hours", "36 hours".

    The largest unit that counts it exactly: 36 hours read "1 day" before,
    a promise the link would not keep.
    """
    seconds = settings.PASSWORD_RESET_TIMEOUT
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def invitation_email(membership, *, by):
    user = membership.user
    context = {
        "user": user,
        "team": membership.team,
        "role": membership.get_role_display(),
        "invited_by": by.get_username(),
        "link": invitation_link(membership),
        "lifetime": link_lifetime(),
        "portal_url": settings.PORTAL_URL.rstrip("/") + "/",
    }
    message = EmailMultiAlternatives(
        subject=f"[VM Import Portal] You are invited to team {membership.team.name}",
        body=render_to_string("notifications/email/invitation.txt", context),
        to=[user.email],
    )
    message.attach_alternative(
        render_to_string("notifications/email/invitation.html", context), "text/html"
    )
    return message


def send_invitation(membership, *, by):
    """E-mail the link; the reason in plain words if the mail server refused, else None."""
    try:
        invitation_email(membership, by=by).send()
    # ValueError: an address stored before its domain was checked for mail
    # (inputs.mail_domain_problem), which Django cannot encode.
    except (OSError, smtplib.SMTPException, ValueError) as error:
        logger.warning("Invitation e-mail to %s not sent: %s", membership.user.email, error)
        return str(error) or error.__class__.__name__
    return None


def invitations_sent(users):
    """{user id: when their latest link was sent} for those of `users` an invitation made."""
    if not users:
        return {}
    return dict(Invitation.objects.filter(user__in=users).values_list("user_id", "sent_at"))


# -- the invited person's side ---------------------------------------------------


def membership_for_link(team, uid, token):
    """The pending membership a link names, if the link still works; else None.

    Every way a link fails (garbled, expired, used, renewed, withdrawn) gives
    the same None, so the page never tells whether an address has an account.
    """
    try:
        team_id = int(team)
        user_id = int(urlsafe_base64_decode(uid).decode())
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not (0 < team_id <= ID_MAX and 0 < user_id <= ID_MAX):  # the database's integers
        return None
    membership = (
        Membership.objects.select_related("team", "user")
        .filter(team_id=team_id, user_id=user_id)
        .first()
    )
    if membership is None or not is_pending(membership.user):
        return None
    if not default_token_generator.check_token(membership.user, token):
        return None
    return membership


def accept(membership, password_form):
    """The person set their password: the link is used up; recorded."""
    user = password_form.save()
    AuditEvent.record(
        Action.INVITATION_ACCEPTED,
        actor=user,
        team=membership.team,
        detail=f"{user.get_username()} accepted the invitation as {membership.get_role_display()}",
    )
    return user


# Wrong links are throttled as wrong passwords are at sign-in (django-axes'
# limits): AXES_FAILURE_LIMIT from one address, then a pause of
# AXES_COOLOFF_TIME. Tokens cannot be guessed, but nobody needs to try.
def bad_link_key(request):
    return f"invitation-bad-links:{client_ip(request)}"


def too_many_bad_links(request):
    return cache.get(bad_link_key(request), 0) >= settings.AXES_FAILURE_LIMIT


def note_bad_link(request):
    key = bad_link_key(request)
    pause = int(timedelta(hours=settings.AXES_COOLOFF_TIME).total_seconds())
    if cache.add(key, 1, pause):
        return
    try:
        cache.incr(key)
        # incr keeps Redis's expiry, but a file cache rewrites the entry with
        # its default timeout: the pause is AXES_COOLOFF_TIME either way.
        cache.touch(key, pause)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, pause)
