"""The audit: every import and every event, read-only.

Imports and events are written only by the portal's own transitions, so the
admin may look but never add, change or delete them. Teams, memberships and
tokens are managed here.
"""

from django.contrib import admin

from .models import ApiToken, ImportEvent, Membership, Team, VmImport


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ImportEventInline(admin.TabularInline):
    model = ImportEvent
    fields = ("created_at", "actor", "from_status", "to_status", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(VmImport)
class VmImportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "name",
        "team",
        "status",
        "platform",
        "submitted_by",
        "client_token",
        "image_arn",
        "created_at",
    )
    list_filter = ("status", "platform", "team", "created_at")
    search_fields = (
        "client_token",
        "image_arn",
        "name",
        "vm_import_task_id",
        "submitted_by__username",
    )
    date_hierarchy = "created_at"
    list_select_related = ("team", "submitted_by")
    inlines = [ImportEventInline]


@admin.register(ImportEvent)
class ImportEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "vm_import", "actor", "from_status", "to_status", "detail")
    list_filter = ("to_status", "vm_import__team", "created_at")
    search_fields = (
        "vm_import__client_token",
        "vm_import__image_arn",
        "vm_import__name",
        "actor__username",
        "detail",
    )
    date_hierarchy = "created_at"
    list_select_related = ("vm_import", "actor")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "team", "created_at", "last_used_at")
    list_filter = ("team",)
    search_fields = ("name", "user__username")
    fields = ("name", "user", "team", "created_at", "last_used_at")
    readonly_fields = ("name", "user", "team", "created_at", "last_used_at")

    def has_add_permission(self, request):
        # A token is shown once, when created: the create_api_token command does that.
        return False
