"""Pages for marketers: segments and email campaigns."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.generic import ListView, View

from leads.models import Lead
from leads.normalize import storable_text

from .email_forms import EmailCampaignForm, SegmentNameForm, TestSendForm
from .email_sending import (
    build_message,
    email_campaign_progress,
    email_campaign_save,
    email_campaign_send,
    email_template,
    email_test_send,
)
from .models import EmailCampaign, Segment
from .segments import (
    SegmentFilter,
    emailable,
    filter_leads,
    segment_filter_data,
    segment_leads,
    segment_save,
)

PREVIEW_CHOICES = 50


class _PagedList(LoginRequiredMixin, PermissionRequiredMixin, ListView):
    paginate_by = 25

    def paginate_queryset(self, queryset, page_size):
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def search(self, queryset, *fields):
        query = storable_text(self.request.GET.get("q", "")).strip()
        if not query:
            return queryset
        from django.db.models import Q

        match = Q()
        for field in fields:
            match |= Q(**{f"{field}__icontains": query})
        return queryset.filter(match)


class SegmentListView(_PagedList):
    permission_required = "campaigns.view_segment"
    template_name = "campaigns/segment_list.html"
    context_object_name = "segments"

    def get_queryset(self):
        return self.search(Segment.objects.select_related("created_by"), "name")


def _segment_counts(user, filters: dict) -> dict[str, object]:
    try:
        leads = filter_leads(filters, Lead.objects.visible_to(user))
    except ValidationError as exc:
        return {"count_error": exc}
    return {"count": leads.count(), "emailable": emailable(leads).count()}


class SegmentEditView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Create (no pk) or change a segment; the filter form is the segment."""

    template_name = "campaigns/segment_form.html"

    def get_permission_required(self):
        return [
            "campaigns.change_segment"
            if "pk" in self.kwargs
            else "campaigns.add_segment"
        ]

    def get_segment(self) -> Segment | None:
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(Segment, pk=self.kwargs["pk"])

    def get(self, request, **kwargs):
        segment = self.get_segment()
        filters = segment.filters if segment else {}
        name_form = SegmentNameForm(initial={"name": segment.name if segment else ""})
        return self.show(request, segment, name_form, SegmentFilter(filters or None))

    def post(self, request, **kwargs):
        segment = self.get_segment()
        name_form = SegmentNameForm(request.POST)
        filters = segment_filter_data(request.POST)
        filterset = SegmentFilter(filters)
        if name_form.is_valid() and filterset.is_valid():
            try:
                segment = segment_save(
                    segment=segment,
                    name=name_form.cleaned_data["name"],
                    filters=filters,
                    by=request.user,
                )
            except ValidationError as exc:
                name_form.add_error(None, exc)
            else:
                messages.success(request, _("Segment saved."))
                return redirect("emails:segments")
        return self.show(request, segment, name_form, filterset, status=400)

    def show(self, request, segment, name_form, filterset, status=200):
        context = {
            "segment": segment,
            "name_form": name_form,
            "filter": filterset,
            **_segment_counts(request.user, filterset.data or {}),
        }
        return render(request, self.template_name, context, status=status)


class SegmentCountView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The live count next to the segment form (htmx)."""

    permission_required = "campaigns.view_segment"

    def get(self, request):
        filters = segment_filter_data(request.GET)
        response = render(
            request,
            "campaigns/_segment_count.html",
            _segment_counts(request.user, filters),
        )
        patch_vary_headers(response, ("HX-Request",))
        return response


class EmailCampaignListView(_PagedList):
    permission_required = "campaigns.view_emailcampaign"
    template_name = "campaigns/emailcampaign_list.html"
    context_object_name = "emails"

    def get_queryset(self):
        queryset = EmailCampaign.objects.select_related("campaign", "segment")
        return self.search(queryset, "name", "subject", "campaign__name")


class EmailCampaignEditView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The composer: create (no pk) or change a draft."""

    template_name = "campaigns/emailcampaign_form.html"

    def get_permission_required(self):
        if "pk" in self.kwargs:
            return ["campaigns.change_emailcampaign"]
        return ["campaigns.add_emailcampaign"]

    def get_object(self) -> EmailCampaign | None:
        if "pk" not in self.kwargs:
            return None
        email_campaign = get_object_or_404(EmailCampaign, pk=self.kwargs["pk"])
        if not email_campaign.is_editable:
            raise Http404
        return email_campaign

    def get(self, request, **kwargs):
        form = EmailCampaignForm(instance=self.get_object())
        return render(request, self.template_name, {"form": form})

    def post(self, request, **kwargs):
        instance = self.get_object()
        form = EmailCampaignForm(request.POST, instance=instance)
        if form.is_valid():
            try:
                saved = email_campaign_save(
                    by=request.user, email_campaign=instance, **form.cleaned_data
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Email saved."))
                return redirect(saved)
        return render(request, self.template_name, {"form": form}, status=400)


def _preview_leads(email_campaign: EmailCampaign, user) -> list[Lead]:
    try:
        leads = segment_leads(email_campaign.segment, Lead.objects.visible_to(user))
    except ValidationError:
        return []
    return list(emailable(leads).order_by("-score", "pk")[:PREVIEW_CHOICES])


class EmailCampaignDetailView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """An email's page: preview as a chosen lead, test send, send, progress."""

    permission_required = "campaigns.view_emailcampaign"
    template_name = "campaigns/emailcampaign_detail.html"

    def get(self, request, pk):
        email_campaign = get_object_or_404(
            EmailCampaign.objects.select_related("campaign", "segment"), pk=pk
        )
        return self.show(request, email_campaign, TestSendForm(
            initial={"to": request.user.email}
        ))  # fmt: skip

    def show(self, request, email_campaign, test_form, status=200):
        choices = _preview_leads(email_campaign, request.user)
        chosen = _chosen(choices, request.GET.get("lead") or request.POST.get("lead"))
        context = {
            "email": email_campaign,
            "progress": email_campaign_progress(email_campaign),
            "preview_leads": choices,
            "preview_lead": chosen,
            "preview": _preview(email_campaign, chosen),
            "test_form": test_form,
            "can_send": request.user.has_perm("campaigns.send_emailcampaign"),
        }
        return render(request, self.template_name, context, status=status)


def _chosen(choices: list[Lead], raw) -> Lead | None:
    by_pk = {str(lead.pk): lead for lead in choices}
    return by_pk.get(str(raw)) or (choices[0] if choices else None)


def _preview(email_campaign: EmailCampaign, lead: Lead | None):
    if lead is None:
        return None
    try:
        template = email_template(email_campaign)
    except ValidationError:
        return None
    message = build_message(template, lead, to=lead.email, from_email="")
    return {"subject": message.subject, "html": message.alternatives[0][0]}


class EmailCampaignTestView(EmailCampaignDetailView):
    permission_required = "campaigns.change_emailcampaign"

    def post(self, request, pk):
        email_campaign = get_object_or_404(EmailCampaign, pk=pk)
        form = TestSendForm(request.POST)
        choices = _preview_leads(email_campaign, request.user)
        lead = _chosen(choices, request.POST.get("lead"))
        if lead is None:
            form.add_error(None, _("The segment has no lead to show the email as."))
        if form.is_valid():
            email_test_send(
                email_campaign=email_campaign,
                lead=lead,
                to=form.cleaned_data["to"],
                by=request.user,
            )
            messages.success(request, _("Test email sent."))
            return redirect(f"{email_campaign.get_absolute_url()}?lead={lead.pk}")
        return self.show(request, email_campaign, form, status=400)


class EmailCampaignSendView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = "campaigns.send_emailcampaign"

    def post(self, request, pk):
        email_campaign = get_object_or_404(EmailCampaign, pk=pk)
        try:
            email_campaign_send(email_campaign_id=email_campaign.pk, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Sending started."))
        return redirect(email_campaign)


class EmailCampaignProgressView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The progress block, polled by htmx while the email is being sent."""

    permission_required = "campaigns.view_emailcampaign"

    def get(self, request, pk) -> HttpResponse:
        email_campaign = get_object_or_404(EmailCampaign, pk=pk)
        return render(
            request,
            "campaigns/_email_progress.html",
            {
                "email": email_campaign,
                "progress": email_campaign_progress(email_campaign),
            },
        )
