"""REST API for leads: list, search, create (through the ingest) and read."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from campaigns.models import Campaign

from . import selectors
from .filters import LeadFilter
from .models import Channel, InteractionKind, Lead
from .services import (
    PROFILE_FIELDS,
    UTM_KEYS,
    InteractionData,
    LeadData,
    lead_ingest,
    leads_matching,
)

SCORE_FIELDS = (
    "level",
    "status",
    "recycled_at",
    "score",
    "engagement_score",
    "fit_score",
    "bant_score",
    "score_version",
    "temperature",
    "score_breakdown",
    "scored_at",
)


class LeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lead
        fields = (
            "id",
            "email",
            "phone",
            "external_id",
            *PROFILE_FIELDS,
            "custom",
            "email_consent",
            "known_outcome",
            "first_touch_campaign",
            "last_touch_campaign",
            "first_touch_utm",
            "last_touch_utm",
            *SCORE_FIELDS,
            "last_interaction_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class LeadCreateSerializer(serializers.Serializer):
    """What a client may send about a person; the ingest normalises it."""

    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=50)
    external_id = serializers.CharField(
        required=False, allow_blank=True, max_length=100
    )
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    full_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    job_title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    industry = serializers.CharField(required=False, allow_blank=True, max_length=200)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    country = serializers.CharField(required=False, allow_blank=True, max_length=100)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100)
    origin = serializers.CharField(required=False, allow_blank=True, max_length=100)
    custom = serializers.DictField(required=False)
    utm = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200), required=False
    )
    campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.all(), required=False, allow_null=True
    )
    email_consent = serializers.BooleanField(required=False, allow_null=True)

    kind = serializers.ChoiceField(
        choices=InteractionKind.choices, default=InteractionKind.OTHER
    )
    occurred_at = serializers.DateTimeField(required=False)
    details = serializers.DictField(required=False)
    idempotency_key = serializers.CharField(
        required=False, allow_blank=True, max_length=150
    )

    def validate_utm(self, value):
        unknown = set(value) - set(UTM_KEYS)
        if unknown:
            raise serializers.ValidationError(
                _("Unknown UTM keys: %(keys)s") % {"keys": ", ".join(sorted(unknown))}
            )
        return value

    def to_ingest(self) -> tuple[LeadData, InteractionData]:
        data = self.validated_data
        campaign = data.get("campaign")
        names = ("email", "phone", "external_id", *PROFILE_FIELDS)
        fields = {name: data.get(name, "") for name in names}
        fields["source"] = fields["source"] or Channel.API
        lead = LeadData(
            **fields,
            custom=data.get("custom", {}),
            utm=data.get("utm", {}),
            campaign_id=campaign.pk if campaign else None,
            email_consent=data.get("email_consent"),
        )
        # Keys are namespaced so a client's key never collides with a
        # submission's or an import's.
        key = data.get("idempotency_key")
        interaction = InteractionData(
            kind=data["kind"],
            channel=Channel.API,
            occurred_at=data.get("occurred_at"),
            details=data.get("details", {}),
            idempotency_key=f"api:{key}" if key else None,
        )
        return lead, interaction


class LeadListCreateView(generics.ListCreateAPIView):
    """GET: the leads the user may see, searched (?q=) and filtered.
    POST: record a person through the ingest; 201 when a lead was created,
    200 when the details merged into a known lead."""

    serializer_class = LeadSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = LeadFilter

    def get_queryset(self):
        return selectors.lead_list(user=self.request.user)

    def get_serializer_class(self):
        if self.request.method == "POST":
            return LeadCreateSerializer
        return LeadSerializer

    def create(self, request, *args, **kwargs):
        if not request.user.has_perm("leads.add_lead"):
            raise PermissionDenied(_("You may not add leads."))
        serializer = LeadCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        data, interaction = serializer.to_ingest()
        try:
            if self._matches_unseen_lead(data, interaction):
                # Merging would show, and change, a lead this user may not see.
                raise NotFound()
            result = lead_ingest(data=data, interactions=[interaction])
        except DjangoValidationError as exc:
            if "idempotency_key" in getattr(exc, "error_dict", {}):
                # The key already names another person's record.
                return Response(_field_errors(exc), status=status.HTTP_409_CONFLICT)
            raise serializers.ValidationError(_field_errors(exc)) from exc

        # Rescoring ran after the ingest committed; answer with its result.
        lead = result.lead
        lead.refresh_from_db()
        body = LeadSerializer(lead, context=self.get_serializer_context()).data
        if not result.created:
            return Response(body, status=status.HTTP_200_OK)
        headers = {"Location": reverse("api:lead-detail", args=[lead.pk])}
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)

    def _matches_unseen_lead(self, data, interaction) -> bool:
        known = leads_matching(
            data=data, idempotency_keys=[interaction.idempotency_key or ""]
        )
        visible = Lead.objects.visible_to(self.request.user)
        return known.exclude(pk__in=visible.values("pk")).exists()


class LeadDetailView(generics.RetrieveAPIView):
    serializer_class = LeadSerializer

    def get_queryset(self):
        return selectors.lead_list(user=self.request.user)


def _field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}
