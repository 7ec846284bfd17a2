from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import PhotoJob, Membership, Product, ProductPhoto, User, Workspace


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    inlines = [MembershipInline]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "handle", "sku", "workspace"]
    list_filter = ["workspace"]


@admin.register(ProductPhoto)
class ProductPhotoAdmin(admin.ModelAdmin):
    list_display = ["original_name", "workspace", "width", "height", "created_at"]
    list_filter = ["workspace"]
    readonly_fields = ["original_sha256", "working_sha256"]


@admin.register(PhotoJob)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "status", "progress", "photo", "created_at"]
    list_filter = ["kind", "status"]
