"""The audit: every import and every event, read-only, and the teams.

Imports and events are written only by the portal's own code, so the admin
may look but never add, change or delete them. Superusers and auditors (the
"Auditors" group: view permissions plus `audit_all_teams`) read every team;
other staff read only their own teams' rows.
"""

import csv
import re

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import NotSupportedError
from django.db.models.constants import LOOKUP_SEP
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from .errors import bad_request_answer
from .forms import PLATFORMS, STATUS_FILTER_LABELS, STATUS_FILTERS, status_condition
from .inputs import parse_int
from .models import AlreadyMember, ApiToken, AuditEvent, ImageImport, Membership, Team
from .team_forms import TargetRules
from .vocabulary import status_label

AUDIT_ALL = "imports.audit_all_teams"


def teams_of(request):
    return Team.objects.filter(memberships__user=request.user)


def sees_every_team(request):
    return request.user.is_superuser or request.user.has_perm(AUDIT_ALL)


# A list's team filter offers the teams of the rows the person may read, not
# every team's name.
TEAMS_SEEN = ("team", admin.RelatedOnlyFieldListFilter)


# Numbers past these make Python or the database raise where a filter should
# match nothing: a year outside datetime's 1 to 9999 (and 9999 itself, as the
# date hierarchy ends a year at the first day of the next), and, on SQLite,
# any whole number past 64 bits. Row and member numbers are read as every
# number sent to the portal is (inputs.parse_int: ASCII digits that fit every
# integer column).
YEARS = range(1, 9999)
INT64 = range(-(2**63), 2**63)
# Lookups no admin link makes, whose bad values only the database notices:
# a regular expression it cannot compile, a range without two ends.
LOOKUPS_NO_LINK_MAKES = {"regex", "iregex", "range"}


def is_year(text):
    year = parse_int(text)
    return year is not None and year in YEARS


def past_64_bits(text):
    try:
        return int(text) not in INT64
    except ValueError:
        return False


def refuse_filters_the_query_cannot_run(query):
    """IncorrectLookupParameters for a filter Django accepts but the query then fails on.

    Django refuses a filter it cannot build; these it builds, and they raise
    only as the list is counted or rendered, outside its check: a 500.
    """
    for key, values in query.lists():
        lookups = key.split(LOOKUP_SEP)[1:]
        if not lookups:
            continue
        if lookups[-1] in LOOKUPS_NO_LINK_MAKES:
            raise IncorrectLookupParameters(f"{key} is not a filter the admin offers.")
        listed = lookups[-1] == "in"
        texts = [text for value in values for text in (value.split(",") if listed else [value])]
        if {"year", "iso_year"} & set(lookups):
            if not all(is_year(text) for text in texts):
                raise IncorrectLookupParameters(f"{key} must be a year from 1 to 9998.")
        elif listed and any(past_64_bits(text) for text in texts):
            raise IncorrectLookupParameters(f"{key} holds a number past 64 bits.")


class ListRequestChecks:
    """A list's filters and a bulk action's rows checked before Django acts on them.

    Django raises (a 500) for these rather than refusing them; only a
    hand-made or damaged request sends them. A filter is refused the way
    Django refuses its own (the list again, with ?e=1); an action on rows
    that are not numbers is a 400: no tick box sends one.
    """

    def get_changelist_instance(self, request):
        refuse_filters_the_query_cannot_run(request.GET)
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, NotSupportedError) as error:
            # What the checks above do not name: a number too large for
            # Python's dates (a month of 20 digits) or for SQLite (a row
            # number past 64 bits on a relation: ?team=9999...), a lookup the
            # database has not (SQLite's JSON contains). Django counts the
            # list as it makes it, so they all raise here.
            raise IncorrectLookupParameters(str(error)) from error

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if any(parse_int(row) is None for row in selected):
            # Every model here is numbered; Django would filter by "abc" and raise.
            return bad_request_answer(
                request, "_selected_action must be row numbers from the list."
            )
        return super().response_action(request, queryset)


class ReadOnlyAdmin(ListRequestChecks, admin.ModelAdmin):
    team_field = "team"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if sees_every_team(request):
            return queryset
        return queryset.filter(**{f"{self.team_field}__in": teams_of(request)})


class AuditEventInline(admin.TabularInline):
    """The import's events as a table of its own: headed columns only, in a box that scrolls.

    Django's tabular template adds two columns without headings (the row's
    name, and Delete) and, at 390 px, a sideways scroller no keyboard can
    reach (axe-core: empty-table-header, scrollable-region-focusable).
    """

    model = AuditEvent
    template = "admin/imports/imageimport/audit_events_inline.html"
    fields = ("created_at", "action", "actor", "client_ip", "from_status", "to_status", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StatusFilter(admin.SimpleListFilter):
    """Imports in a status, Cancelled apart, as the history's filter has it.

    A cancel is stored as failed: Django's own filter on the column would
    list it under Failed, where the import's page says Cancelled.
    """

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, STATUS_FILTER_LABELS[status]) for status in STATUS_FILTERS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(status_condition(self.value()))
        return queryset


@admin.register(ImageImport)
class ImageImportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "name",
        "team",
        "import_status",
        "platform",
        "submitted_by",
        "client_token",
        "image_arn",
        "created_at",
    )
    list_filter = (StatusFilter, "platform", TEAMS_SEEN, "created_at")
    search_fields = (
        "client_token",
        "image_arn",
        "name",
        "disk_key",
        "vm_import_task_id",
        "submitted_by__username",
    )
    date_hierarchy = "created_at"
    list_select_related = ("team", "submitted_by")
    inlines = [AuditEventInline]

    @admin.display(description="status", ordering="status")
    def import_status(self, image_import):
        return image_import.status_label  # a cancel says Cancelled, as its filter has it


class ImportStatusFilter(StatusFilter):
    """The events of imports in a status, Cancelled apart, as the history's filter has it."""

    title = "import status"
    parameter_name = "import_status"

    def queryset(self, request, queryset):
        if self.value():
            imports = ImageImport.objects.filter(status_condition(self.value()))
            return queryset.filter(image_import__in=imports)
        return queryset


class ImportPlatformFilter(admin.SimpleListFilter):
    title = "platform"
    parameter_name = "platform"

    def lookups(self, request, model_admin):
        return [(platform, platform) for platform in PLATFORMS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(image_import__platform=self.value())
        return queryset


ATTEMPT = re.compile(r"^Attempt (\d+) ")


def actor_label(event):
    """The person, or the worker (saying which retry) when no person acted."""
    if event.actor is not None:
        return event.actor.get_username()
    match = ATTEMPT.match(event.detail)
    if match and int(match[1]) > 1:
        return f"worker (retry {int(match[1]) - 1})"
    return "worker"


CSV_COLUMNS = (
    ("when (UTC)", lambda e: e.created_at.isoformat()),
    ("action", lambda e: e.action),
    ("user", lambda e: e.actor.get_username() if e.actor else ""),
    ("client IP", lambda e: e.client_ip or ""),
    ("team", lambda e: e.team.name if e.team else ""),
    ("import", lambda e: e.image_import_id or ""),
    ("client token", lambda e: e.image_import.client_token if e.image_import else ""),
    ("name", lambda e: e.image_import.name if e.image_import else ""),
    ("platform", lambda e: e.image_import.platform if e.image_import else ""),
    ("VM import task", lambda e: e.image_import.vm_import_task_id if e.image_import else ""),
    ("image ARN", lambda e: e.image_import.image_arn if e.image_import else ""),
    ("from", lambda e: e.from_status),
    ("to", lambda e: e.to_status),
    ("detail", lambda e: e.detail),
)


# A cell starting with one of these is a formula to a spreadsheet: an import
# named =HYPERLINK(...) would run when the export is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: a leading ' before a formula's first character."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Echo:
    """A file-like object for csv.writer that hands each line straight back."""

    def write(self, value):
        return value


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    change_list_template = "admin/imports/auditevent/change_list.html"
    list_display = (
        "created_at",
        "action",
        "who",
        "client_ip",
        "team",
        "import_name",
        "status_change",
        "detail",
    )
    list_filter = (
        TEAMS_SEEN,
        ("actor", admin.RelatedOnlyFieldListFilter),
        "action",
        ImportStatusFilter,
        ImportPlatformFilter,
        "created_at",
    )
    search_fields = (
        "image_import__client_token",
        "image_import__image_arn",
        "image_import__vm_import_task_id",
        "image_import__name",
        "actor__username",
        "detail",
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_select_related = ("image_import", "actor", "team")

    class Media:
        css = {"all": ["css/admin-audit.css"]}

    @admin.display(description="import", ordering="image_import")
    def import_name(self, event):
        if event.image_import is None:
            return "-"
        return f"#{event.image_import_id} {event.image_import.name[:40]}"

    @admin.display(description="status")
    def status_change(self, event):
        change = event.status_change  # a cancel says Cancelled, as on every page
        if change is None:
            return status_label(event.to_status) or "-"
        before, after = change
        return f"{before} → {after}" if before else after

    @admin.display(description="actor", ordering="actor__username")
    def who(self, event):
        return actor_label(event)

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv),
            name="imports_auditevent_export",
        )
        return [export, *super().get_urls()]

    def export_csv(self, request):
        """The filtered history as CSV, streamed row by row: no size limit in memory."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            events = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            # Not the list's redirect to ?e=1: that shows every event, unfiltered,
            # without a word, where the admin asked for a file of some of them.
            return bad_request_answer(
                request,
                "The audit list cannot apply this export's filters. "
                "Filter the list itself, then use its Export link.",
            )
        writer = csv.writer(Echo())
        header = [writer.writerow([title for title, _ in CSV_COLUMNS])]
        rows = (
            writer.writerow([spreadsheet_safe(value(event)) for _, value in CSV_COLUMNS])
            for event in events.iterator(chunk_size=2000)
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            (line for part in (header, rows) for line in part), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        return response


class MemberChoiceField(forms.ModelChoiceField):
    """The member, by number (inputs.parse_int): text, or a number past what an
    integer column holds, is not a valid choice.

    SQLite cannot compare a number past 64 bits (OverflowError, a 500) where
    PostgreSQL finds no row; and the search box, shown again with the error,
    looks up what was sent, text or number, and raised for either.
    """

    def to_python(self, value):
        if isinstance(value, str) and value not in self.empty_values and parse_int(value) is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)

    def prepare_value(self, value):
        if isinstance(value, str) and parse_int(value) is None:
            return None  # shown again as nobody picked, beside its error
        return super().prepare_value(value)


class MembershipFormSet(forms.BaseInlineFormSet):
    """A new row for someone already in the team is that row's error, not an IntegrityError.

    Django checks the one_membership constraint only among the rows sent:
    each row's own check leaves out the team, the inline's key. A member
    whose row is deleted in the same save may be added back.
    """

    def clean(self):
        super().clean()
        if self.instance.pk is None:
            return  # a team being added has no members yet
        leaving = [
            form.instance.pk for form in self.initial_forms if self._should_delete_form(form)
        ]
        members = set(
            self.instance.memberships.exclude(pk__in=leaving).values_list("user", flat=True)
        )
        for form in self.extra_forms:
            user = form.cleaned_data.get("user") if form.has_changed() else None
            if user is not None and user.pk in members and not self._should_delete_form(form):
                form.add_error("user", f"{user.get_username()} is already in this team.")


class MembershipForm(forms.ModelForm):
    """A stored membership's person is shown, not edited: the row is that person's.

    save_formset changes only a stored row's role (Membership.change_role,
    audited), so a person picked over another was dropped without a word.
    To put someone else in the team, an admin adds a row for them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            self.fields["user"].disabled = True
            self.fields["user"].help_text = "To add someone else, use a new row."


# A team's page takes its members and up to this many new ones in one save.
# Django would build up to 2,000 rows (about 20 s) for a forged TOTAL_FORMS.
NEW_MEMBERS_AT_ONCE = 100


class MembershipInline(admin.StackedInline):
    """One block per member, each field with its label: usable at 390 px.

    The tabular inline's cells have no labels (axe-core: select-name, label)
    and put Role and Delete off a phone's screen. The user is still picked by
    searching (autocomplete: no list of every user per row); js/admin.js gives
    that box its label's name.
    """

    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    extra = 1
    autocomplete_fields = ("user",)

    def get_formset(self, request, obj=None, **kwargs):
        members = obj.memberships.count() if obj is not None else 0
        most = members + NEW_MEMBERS_AT_ONCE
        return super().get_formset(request, obj, max_num=most, absolute_max=most, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["form_class"] = MemberChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TeamAdminForm(TargetRules, forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        self.clean_target(self.instance)
        return cleaned


@admin.register(Team)
class TeamAdmin(ListRequestChecks, admin.ModelAdmin):
    """Teams, their AWS target and members; every change is audited as on the team page.

    Other staff see only their own teams, as in the audit.
    """

    form = TeamAdminForm
    list_display = ("name", "aws_account_id", "aws_region", "aws_role_arn")
    search_fields = ("name",)
    readonly_fields = ("external_id",)
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if sees_every_team(request) else queryset.filter(pk__in=teams_of(request))

    def save_model(self, request, obj, form, change):
        if change:
            new_target = {name: getattr(obj, name) for name in obj.TARGET_FIELDS}
            obj.change_target(new_target, by=request.user)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        changed = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership.remove(by=request.user)
        for membership in changed:
            problem = self.save_membership(membership, by=request.user)
            if problem:
                self.message_user(request, problem, level=messages.WARNING)
        formset.save_m2m()

    @staticmethod
    def save_membership(membership, *, by):
        """Add or change one inline row; what another admin's change meanwhile undid, or None."""
        if membership.pk is None:
            try:
                membership.team.add_member(membership.user, membership.role, by=by)
            except AlreadyMember as meanwhile:
                return meanwhile.added_meanwhile()
            return None
        try:
            Membership.objects.get(pk=membership.pk).change_role(membership.role, by=by)
        except Membership.DoesNotExist:
            return membership.removed_meanwhile() + ": the new role was not kept."
        return None


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "user", "team", "created_at", "last_used_at", "revoked_at")
    list_filter = (TEAMS_SEEN,)
    search_fields = ("name", "user__username")
    fields = ("name", "user", "team", "created_at", "last_used_at", "revoked_at")


User = get_user_model()


class PortalUserAdmin(ListRequestChecks, UserAdmin):
    """Django's user admin, with the times Django records shown, not edited.

    Nobody should rewrite when someone last signed in or joined; read-only,
    they are text, not the split date and time boxes without labels.
    """

    readonly_fields = ("last_login", "date_joined")


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PortalUserAdmin)


def with_list_checks(model_admin_class):
    """The same admin class with ListRequestChecks first: it refuses what ours refuse."""
    return type(model_admin_class.__name__, (ListRequestChecks, model_admin_class), {})


# Django's groups and django-axes' sign-in records are registered by their own
# apps (axes before this one, in INSTALLED_APPS order): they get the checks too.
for model in (Group, AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(model):
        checked = with_list_checks(type(admin.site.get_model_admin(model)))
        admin.site.unregister(model)
        admin.site.register(model, checked)
