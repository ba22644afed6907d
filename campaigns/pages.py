"""The marketers' pages: campaigns, the form builder and the spam log."""

import logging

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import CreateView, DetailView, ListView, UpdateView, View

from leads.normalize import storable_text

from .forms import LEAD_FIELD_CHOICES, CampaignForm, FormFieldFormSet, WebFormForm
from .models import (
    CONSENT_FIELD,
    Campaign,
    SpamReason,
    Submission,
    SubmissionStatus,
    WebForm,
)
from .services import submission_release, webform_consent_set
from .spam import HONEYPOT_FIELD, TOKEN_FIELD

logger = logging.getLogger(__name__)


class PagedListView(ListView):
    paginate_by = 25

    def paginate_queryset(self, queryset, page_size):
        # A page past the end shows the last page instead of an error.
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()


class CampaignListView(LoginRequiredMixin, PermissionRequiredMixin, PagedListView):
    permission_required = "campaigns.view_campaign"
    template_name = "campaigns/campaign_list.html"
    context_object_name = "campaigns"

    def get_queryset(self):
        # Meta.ordering does not apply to an aggregated query: order again.
        campaigns = (
            Campaign.objects.select_related("owner")
            .annotate(form_count=Count("forms"))
            .order_by("-created_at", "-id")
        )
        self.query = storable_text(self.request.GET.get("q", "")).strip()
        if self.query:
            campaigns = campaigns.filter(
                Q(name__icontains=self.query) | Q(utm_campaign__icontains=self.query)
            )
        return campaigns

    def get_context_data(self, **kwargs):
        return super().get_context_data(query=self.query, **kwargs)


class CampaignDetailView(LoginRequiredMixin, PermissionRequiredMixin, DetailView):
    permission_required = "campaigns.view_campaign"
    template_name = "campaigns/campaign_detail.html"
    queryset = Campaign.objects.select_related("owner")
    context_object_name = "campaign"

    def get_context_data(self, **kwargs):
        forms = self.object.forms.annotate(
            submission_count=Count(
                "submissions", filter=~Q(submissions__status=SubmissionStatus.SPAM)
            ),
            spam_count=Count(
                "submissions", filter=Q(submissions__status=SubmissionStatus.SPAM)
            ),
        )
        return super().get_context_data(forms=forms, **kwargs)


class CampaignCreateView(LoginRequiredMixin, PermissionRequiredMixin, CreateView):
    permission_required = "campaigns.add_campaign"
    template_name = "campaigns/campaign_form.html"
    form_class = CampaignForm

    def get_initial(self):
        return {"owner": self.request.user, "currency": "VND"}

    def form_valid(self, form):
        response = super().form_valid(form)
        logger.info("Campaign %s created", self.object.pk)
        messages.success(self.request, _("The campaign is saved."))
        return response

    def get_success_url(self):
        return reverse("campaigns:detail", args=[self.object.pk])


class CampaignUpdateView(LoginRequiredMixin, PermissionRequiredMixin, UpdateView):
    permission_required = "campaigns.change_campaign"
    template_name = "campaigns/campaign_form.html"
    form_class = CampaignForm
    model = Campaign

    def form_valid(self, form):
        messages.success(self.request, _("The campaign is saved."))
        return super().form_valid(form)

    def get_success_url(self):
        return reverse("campaigns:detail", args=[self.object.pk])


class WebFormBuilderMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """The builder: the form's settings and its fields on one page, with the
    embed snippet and the hosted page's address once it is saved."""

    template_name = "campaigns/webform_form.html"
    form_class = WebFormForm
    model = WebForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("fields", self.fields_formset())
        context["lead_fields"] = LEAD_FIELD_CHOICES
        context["campaign"] = self.campaign
        if self.object is not None and self.object.pk:
            context.update(embed_context(self.request, self.object))
        return context

    def fields_formset(self):
        data = self.request.POST if self.request.method == "POST" else None
        return FormFieldFormSet(data, instance=self.object or WebForm())

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        if self.object is not None:
            self.campaign = self.object.campaign
        form = self.get_form()
        fields = self.fields_formset()
        if not (form.is_valid() and fields.is_valid()):
            return self.render_to_response(
                self.get_context_data(form=form, fields=fields)
            )
        names = getattr(fields, "field_names", set())
        consent_text = form.cleaned_data["consent_text_en"].strip()
        has_text = consent_text or (self.object and self.object.consent_version)
        if CONSENT_FIELD in names and not has_text:
            form.add_error(
                "consent_text_en",
                _("A consent checkbox needs the consent text it agrees to."),
            )
            return self.render_to_response(
                self.get_context_data(form=form, fields=fields)
            )
        self.save(form, fields)
        messages.success(request, _("The form is saved."))
        return redirect("campaigns:form_edit", pk=self.object.pk)

    def save(self, form, fields) -> None:
        with transaction.atomic():
            form.instance.campaign = self.campaign
            self.object = form.save()
            fields.instance = self.object
            fields.save()
            webform_consent_set(
                form=self.object,
                purpose=form.cleaned_data["consent_purpose"],
                text_en=form.cleaned_data["consent_text_en"],
                text_vi=form.cleaned_data["consent_text_vi"],
            )
        logger.info("Web form %s saved", self.object.pk)


class WebFormCreateView(WebFormBuilderMixin, CreateView):
    permission_required = "campaigns.add_webform"

    def dispatch(self, request, *args, **kwargs):
        self.campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_object(self, queryset=None):
        return None


class WebFormUpdateView(WebFormBuilderMixin, UpdateView):
    permission_required = "campaigns.change_webform"
    queryset = WebForm.objects.select_related("campaign")

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        self.campaign = self.object.campaign
        return self.render_to_response(self.get_context_data())


def embed_context(request, form: WebForm) -> dict[str, object]:
    """The hosted page's address and the HTML to paste on another site."""
    language = request.GET.get("lang") or request.LANGUAGE_CODE
    return {
        "hosted_url": request.build_absolute_uri(
            reverse("campaigns:capture", args=[form.key])
        ),
        "snippet": embed_snippet(request, form, language=language),
        "snippet_language": language,
    }


def embed_snippet(request, form: WebForm, *, language: str) -> str:
    from django.templatetags.static import static
    from django.utils import translation

    with translation.override(language):
        return render_to_string(
            "campaigns/webform_embed.html",
            {
                "form": form,
                "fields": list(form.fields.all()),
                "action": request.build_absolute_uri(
                    reverse("campaigns:capture", args=[form.key])
                ),
                "token_url": request.build_absolute_uri(
                    reverse("campaigns:token", args=[form.key])
                ),
                "script_url": request.build_absolute_uri(static("campaigns/embed.js")),
                "consent_text": form.consent_texts.first(),
                "honeypot_field": HONEYPOT_FIELD,
                "token_field": TOKEN_FIELD,
                "language": language,
            },
        )


class SpamLogView(LoginRequiredMixin, PermissionRequiredMixin, PagedListView):
    """Posts caught as spam, newest first, for a person to review."""

    permission_required = "campaigns.view_submission"
    template_name = "campaigns/spam_log.html"
    context_object_name = "submissions"

    def get_queryset(self):
        spam = Submission.objects.filter(status=SubmissionStatus.SPAM).select_related(
            "form__campaign"
        )
        self.reason = self.request.GET.get("reason", "")
        if self.reason in SpamReason.values:
            spam = spam.filter(spam_reason=self.reason)
        return spam.order_by("-received_at", "-id")

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            reasons=SpamReason.choices, reason=self.reason, **kwargs
        )


class SpamReleaseView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = "campaigns.change_submission"

    def post(self, request, pk: int):
        get_object_or_404(Submission, pk=pk, status=SubmissionStatus.SPAM)
        try:
            submission_release(submission_id=pk, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, _("The submission is released and being processed.")
            )
        return redirect("campaigns:spam_log")
