"""Settings over the API: members and roles, invitations, API tokens, the approval rule.
Thin views: validate, call one service or selector, serialize."""
from django.contrib.auth import authenticate
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.models import ApiToken, Invitation, Membership, Role

from .permissions import IsWorkspaceMember, IsWorkspaceOwner
from .errors import Conflict, ErrorSerializer
from .team_serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    WorkspaceSerializer,
    WorkspaceUpdateSerializer,
)
from .views import TokenThrottle, WorkspaceScoped, refuse_if_locked_out


class InvitationUnusable(APIException):
    """400: the invitation link cannot be used as asked; the message says why."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invitation_refused"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = _error("No credentials, or the API token is unknown, expired or revoked (code `invalid_token`, `token_expired`, `token_revoked`).")
NOT_OWNER = _error("The caller is not an owner of the workspace.")
NOT_FOUND = _error("No such row in the caller's workspace.")


def _flag(request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in {"1", "true", "0", "false"}:
        raise ValidationError({name: [f"Use {name}=true or {name}=false."]})
    return value in {"1", "true"}


# Members ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List members",
        description="Everyone in the workspace with their role, owners first. Owners only.",
        responses={200: MemberSerializer(many=True), 401: UNAUTHENTICATED, 403: NOT_OWNER},
    ),
    retrieve=extend_schema(
        summary="Get a member", responses={200: MemberSerializer, 401: UNAUTHENTICATED, 403: NOT_OWNER, 404: NOT_FOUND}
    ),
)
class MemberViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The workspace's members. Owners change roles and remove members; the workspace always
    keeps at least one owner."""

    permission_classes = [IsWorkspaceOwner]
    serializer_class = MemberSerializer
    queryset = Membership.objects.none()
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def scoped_queryset(self):
        return selectors.member_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.member_get(workspace=self.request.workspace, membership_id=self.kwargs["pk"])

    @extend_schema(
        request=MemberRoleSerializer,
        responses={
            200: MemberSerializer,
            400: _error("Not a role (owner, brand_manager, merchant)."),
            401: UNAUTHENTICATED,
            403: NOT_OWNER,
            404: NOT_FOUND,
            409: _error("The member is the workspace's only owner (code `last_owner`): make someone else an owner first."),
        },
        summary="Change a member's role",
        description="Owners make members owners, brand managers (they approve assets) or merchants (they upload and "
        "generate). The last owner cannot be given another role.",
    )
    def partial_update(self, request, pk=None):
        data = MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            membership = services.member_role_change(
                actor=request.membership, membership=self.get_object(), role=data.validated_data["role"]
            )
        except services.TeamConflict as exc:
            raise Conflict(exc.message, code=exc.code) from None
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        responses={
            204: None,
            401: UNAUTHENTICATED,
            403: NOT_OWNER,
            404: NOT_FOUND,
            409: _error("The member is the workspace's only owner (code `last_owner`)."),
        },
        summary="Remove a member",
        description="The person loses access to this workspace at once and their API tokens for it are revoked; their "
        "account and the work they did stay. The last owner cannot be removed.",
    )
    def destroy(self, request, pk=None):
        try:
            services.member_remove(actor=request.membership, membership=self.get_object())
        except services.TeamConflict as exc:
            raise Conflict(exc.message, code=exc.code) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# Invitations -----------------------------------------------------------------------------


def invitation_link_for(request):
    """The absolute one-time link of a token, as the invitation email shows it."""
    return lambda token: request.build_absolute_uri(reverse("invite", kwargs={"token": token}))


@extend_schema_view(
    list=extend_schema(
        summary="List open invitations",
        description="Invitations not yet accepted or revoked, newest first; `status` is `expired` once the link lapsed. "
        "Owners only.",
        responses={200: InvitationSerializer(many=True), 401: UNAUTHENTICATED, 403: NOT_OWNER},
    ),
    retrieve=extend_schema(
        summary="Get an invitation", responses={200: InvitationSerializer, 401: UNAUTHENTICATED, 403: NOT_OWNER, 404: NOT_FOUND}
    ),
)
class InvitationViewSet(
    WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Owners invite people by email; each invitation's link works once and expires."""

    permission_classes = [IsWorkspaceOwner]
    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()

    def scoped_queryset(self):
        return selectors.invitation_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.invitation_get(workspace=self.request.workspace, invitation_id=self.kwargs["pk"])

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={
            201: InvitationSerializer,
            400: _error("Not an email address, or not a role."),
            401: UNAUTHENTICATED,
            403: NOT_OWNER,
            409: _error("The address is already a member (code `already_member`) or has an open invitation (code "
                        "`invitation_open`: revoke it first to send a new link)."),
        },
        summary="Invite someone by email",
        description="Sends the address a one-time link to `/invite/<token>/`, valid for 7 days unless the server says "
        "otherwise. A new person sets a password there; someone with an account signs in. Either way they join with "
        "`role`. The token itself is never returned or stored; only the email holds it.",
    )
    def create(self, request):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            invitation = services.invitation_create(
                actor=request.membership, email=data.validated_data["email"], role=data.validated_data["role"],
                link_for=invitation_link_for(request),
            )
        except services.TeamConflict as exc:
            raise Conflict(exc.message, code=exc.code) from None
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            204: None,
            401: UNAUTHENTICATED,
            403: NOT_OWNER,
            404: NOT_FOUND,
            409: _error("The invitation was already accepted (code `invitation_accepted`): remove the member instead."),
        },
        summary="Revoke an invitation",
        description="The link stops working at once. Revoking an already revoked invitation changes nothing.",
    )
    def destroy(self, request, pk=None):
        try:
            services.invitation_revoke(actor=request.membership, invitation=self.get_object())
        except services.TeamConflict as exc:
            raise Conflict(exc.message, code=exc.code) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(APIView):
    """Use an invitation's token: join its workspace."""

    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={
            201: InvitationAcceptedSerializer,
            400: _error("The link is unknown, used, revoked or expired (codes `invitation_unknown`, `invitation_used`, "
                        "`invitation_revoked`, `invitation_expired`); it is for another account "
                        "(`invitation_other_account`); an account exists and no or a wrong password was given "
                        "(`sign_in_required`, `invalid`); or the new password is too weak (`invalid`, in `fields.password`)."),
            429: _error("Too many attempts from this address (wait a minute), or too many wrong passwords for the "
                        "invited account from this address (code `locked_out`, the same lockout as signing in): the message "
                        "says when to try again, `Retry-After` gives the seconds."),
        },
        summary="Accept an invitation",
        description="For an address without an account, `password` creates the account. For an existing account, "
        "either call this signed in as that account or send its `password`. The caller then belongs to the workspace "
        "with the invited role; get an API token for it with `POST /api/v1/auth/token/` and the header "
        "`X-Vitrine-Workspace: <workspace>`.",
    )
    def post(self, request):
        data = InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, password = data.validated_data["token"], data.validated_data.get("password")
        invitation = selectors.invitation_for_token(token=token)
        problem = services.invitation_problem(invitation)
        if problem is not None:
            raise InvitationUnusable(problem.message, code=problem.code)
        user = request.user if request.user.is_authenticated else None
        if user is None and password and selectors.account_exists(email=invitation.email):
            user = authenticate(request, email=invitation.email, password=password)
            refuse_if_locked_out(request)
            if user is None:
                raise ValidationError({"password": [f"That is not the password of the account {invitation.email}."]})
        try:
            membership = services.invitation_accept(token=token, user=user, password=password)
        except services.InvitationRefused as exc:
            raise InvitationUnusable(exc.message, code=exc.code) from None
        return Response(InvitationAcceptedSerializer(membership).data, status=status.HTTP_201_CREATED)


# API tokens ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List API tokens",
        description="The caller's own tokens in this workspace, newest first, revoked and expired ones included (see "
        "`status`). Owners may pass `all=true` for every member's. Keys are never shown again; `key_prefix` tells "
        "them apart.",
        parameters=[OpenApiParameter("all", bool, description="Owners: every member's tokens in the workspace")],
        responses={200: ApiTokenSerializer(many=True), 400: _error("`all` is not true or false."), 401: UNAUTHENTICATED,
                   403: _error("`all=true` from a member who is not an owner.")},
    ),
    retrieve=extend_schema(
        summary="Get an API token",
        description="One of the caller's tokens (owners: any in the workspace).",
        responses={200: ApiTokenSerializer, 401: UNAUTHENTICATED, 403: _error("The caller belongs to no workspace."), 404: NOT_FOUND},
    ),
)
class ApiTokenViewSet(
    WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Named API tokens: each member creates and revokes their own; owners may revoke anyone's
    in the workspace. A token acts in the workspace it was created in."""

    permission_classes = [IsWorkspaceMember]
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    # JSON only: a form cannot tell `expires_at: null` (never expires) from a missing field
    # (the default expiry), and multipart clients drop empty parts altogether.
    parser_classes = [JSONParser]

    def _is_owner(self) -> bool:
        return self.request.membership.role == Role.OWNER

    def scoped_queryset(self):
        everyone = _flag(self.request, "all")
        if everyone and not self._is_owner():
            raise PermissionDenied("Only an owner of this workspace can list every member's tokens.")
        return selectors.api_token_list(workspace=self.request.workspace, user=None if everyone else self.request.user)

    def get_object(self):
        user = None if self._is_owner() else self.request.user
        return selectors.api_token_get(workspace=self.request.workspace, token_id=self.kwargs["pk"], user=user)

    @extend_schema(
        request=ApiTokenCreateSerializer,
        responses={
            201: ApiTokenCreatedSerializer,
            400: _error("No name, or an expiry in the past."),
            401: UNAUTHENTICATED,
            403: _error("The caller belongs to no workspace."),
        },
        summary="Create an API token",
        description="A new key for the caller in this workspace. The response holds the key in `key`: store it now, "
        "it is never shown again (only its sha256 is kept). Send it as `Authorization: Token <key>`.",
    )
    def create(self, request):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(
            membership=request.membership,
            name=data.validated_data["name"],
            expires_at=data.validated_data.get("expires_at", services.DEFAULT_EXPIRY),
        )
        token.key = key  # for this one response only
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={204: None, 401: UNAUTHENTICATED, 403: _error("The caller belongs to no workspace."), 404: NOT_FOUND},
        summary="Revoke an API token",
        description="The token stops working at once (requests with it answer 401, code `token_revoked`). Members "
        "revoke their own tokens; owners any member's in the workspace. Revoking twice changes nothing.",
    )
    def destroy(self, request, pk=None):
        services.api_token_revoke(actor=request.membership, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# The workspace (the approval rule) ---------------------------------------------------------


class WorkspaceView(APIView):
    """The caller's workspace and its approval rule."""

    def get_permissions(self):
        return [IsWorkspaceOwner()] if self.request.method == "PATCH" else [IsWorkspaceMember()]

    @extend_schema(
        responses={200: WorkspaceSerializer, 401: UNAUTHENTICATED, 403: _error("The caller belongs to no workspace.")},
        summary="Get the workspace",
        description="The workspace the request acts in, its approval rule and the caller's role there.",
    )
    def get(self, request):
        return Response(WorkspaceSerializer(request.workspace, context={"request": request}).data)

    @extend_schema(
        request=WorkspaceUpdateSerializer,
        responses={200: WorkspaceSerializer, 400: _error("`allow_self_approval` is missing or not a boolean."),
                   401: UNAUTHENTICATED, 403: NOT_OWNER},
        summary="Change the approval rule",
        description="`allow_self_approval: true` lets a brand manager or owner approve an asset they submitted "
        "themselves; false (the default) needs a second person. Owners only.",
    )
    def patch(self, request):
        data = WorkspaceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = services.workspace_settings_update(
            actor=request.membership, allow_self_approval=data.validated_data["allow_self_approval"]
        )
        return Response(WorkspaceSerializer(workspace, context={"request": request}).data)
