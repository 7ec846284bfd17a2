"""Serializers of Settings over the API: members, invitations, API tokens, the workspace."""
from rest_framework import serializers

from catalog.models import ApiToken, Invitation, Membership, Role, Workspace


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    role_label = serializers.CharField(source="get_role_display", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "role_label", "joined_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, help_text="The member's new role.")


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, allow_null=True, default=None)
    status = serializers.ChoiceField(
        choices=["open", "expired", "accepted", "revoked"], read_only=True, help_text="What the link does now."
    )

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
        read_only_fields = fields


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254, help_text="The address the one-time link is sent to.")
    role = serializers.ChoiceField(choices=Role.choices, help_text="The role the person gets on joining.")


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, help_text="The token from the link, `/invite/<token>/`.")
    password = serializers.CharField(
        required=False,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="New address: the password of the account to create. Existing account (when the caller is not "
        "signed in as it): that account's password.",
    )


class InvitationAcceptedSerializer(serializers.Serializer):
    email = serializers.EmailField(source="user.email")
    workspace = serializers.SlugField(source="workspace.slug")
    workspace_name = serializers.CharField(source="workspace.name")
    role = serializers.ChoiceField(choices=Role.choices)


class ApiTokenSerializer(serializers.ModelSerializer):
    owner = serializers.EmailField(source="user.email", read_only=True, help_text="The member the token acts as.")
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_prefix", "owner", "status", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The API key: shown in this response only, never again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class _ExpiryField(serializers.DateTimeField):
    """A form's empty `expires_at=` is not `null` (a token that never expires): only an
    explicit JSON null is."""

    def get_value(self, dictionary):
        # DRF turns a form's "" into None (null) before any check sees it.
        if self.field_name in dictionary and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)

    def validate_empty_values(self, data):
        if data == "":
            raise serializers.ValidationError(
                "Give the expiry as a date and time (e.g. 2030-01-31T12:00:00Z), null for a token that never expires, or leave it out for the default."
            )
        return super().validate_empty_values(data)


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="Where the token is used, e.g. “CI uploads”.")
    expires_at = _ExpiryField(
        required=False,
        allow_null=True,
        help_text="When the token stops working. Leave it out for the default (90 days unless the server says "
        "otherwise); `null` for a token that never expires.",
    )


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role in this workspace.")

    class Meta:
        model = Workspace
        fields = ["name", "slug", "allow_self_approval", "role", "created_at"]
        read_only_fields = ["name", "slug", "role", "created_at"]

    def get_role(self, workspace) -> str:
        return self.context["request"].membership.role


class WorkspaceUpdateSerializer(serializers.Serializer):
    allow_self_approval = serializers.BooleanField(
        help_text="Whether a member may approve an asset they submitted for review themselves (default false)."
    )
