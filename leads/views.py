from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.generic import DetailView, ListView, View

from . import selectors
from .filters import LeadFilter
from .forms import BantConfirmForm, MoveForm, ReopenForm, StageReasonForm
from .models import Bant, BantCriterion, Lead, LeadStatus, Level
from .services import (
    lead_bant_set,
    lead_disqualify,
    lead_move,
    lead_recycle,
    lead_reopen,
)


class LeadListView(LoginRequiredMixin, ListView):
    template_name = "leads/lead_list.html"
    context_object_name = "leads"
    paginate_by = 50

    def paginate_queryset(self, queryset, page_size):
        # A page past the end (a bookmark, a list that shrank) shows the
        # last page instead of an error.
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def get_queryset(self):
        self.filterset = LeadFilter(
            self.request.GET or None,
            queryset=selectors.lead_list(user=self.request.user),
        )
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter"] = self.filterset
        context["is_narrowed"] = self.filterset.is_narrowed
        return context

    def get_template_names(self):
        # htmx asks for the table alone when the filter form changes; a
        # history restore after a cache miss needs the whole page.
        htmx = self.request.htmx
        if htmx and not htmx.history_restore_request:
            return ["leads/_lead_table.html"]
        return [self.template_name]

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        # One URL answers with a page or a fragment: caches must tell them apart.
        patch_vary_headers(response, ("HX-Request",))
        return response


class LeadDetailView(LoginRequiredMixin, DetailView):
    template_name = "leads/lead_detail.html"
    context_object_name = "lead"

    def get_object(self, queryset=None):
        return selectors.lead_detail(user=self.request.user, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(lead_detail_context(self.request, self.object))
        return context


@dataclass(frozen=True)
class BantRow:
    criterion: str
    label: str
    fact: Bant | None
    # What the criterion adds to the score now; None when it does not count
    # (unknown, or known but short of the rules' policy).
    points: int | None
    form: BantConfirmForm | None


def lead_detail_context(request, lead: Lead, **forms) -> dict[str, object]:
    """Everything the lead page shows. A form passed in (bound, with its
    errors) replaces the blank one of the same name."""
    user = request.user
    timeline, timeline_total = selectors.lead_timeline(lead=lead)
    facts = selectors.lead_bant(lead=lead)
    points = {
        line.get("rule"): line.get("points")
        for line in lead.score_breakdown
        if line.get("part") == "bant"
    }
    can_confirm = user.has_perm("leads.change_bant")
    bant_forms = forms.pop("bant_forms", {})

    def bant_form(criterion: str) -> BantConfirmForm | None:
        if not can_confirm:
            return None
        if criterion in bant_forms:
            return bant_forms[criterion]
        return BantConfirmForm(criterion=criterion, known=facts.get(criterion))

    bant_rows = [
        BantRow(
            criterion=criterion,
            label=str(label),
            fact=facts.get(criterion),
            points=points.get(f"bant:{criterion}"),
            form=bant_form(criterion),
        )
        for criterion, label in BantCriterion.choices
    ]

    context: dict[str, object] = {
        "timeline": timeline,
        "timeline_total": timeline_total,
        "score_lines": selectors.lead_score_lines(lead=lead),
        "level_history": selectors.lead_level_history(lead=lead),
        "bant_rows": bant_rows,
        "can_confirm_bant": can_confirm,
        "can_move": user.has_perm("leads.move_lead"),
        "can_see_rules": user.has_perm("scoring.change_ruleset"),
        "reassign_reps": (
            list(selectors.assignable_reps(user=user))
            if selectors.is_manager(user) and lead.status == LeadStatus.OPEN
            else []
        ),
    }
    if context["can_move"]:
        context.update(
            recycle_form=StageReasonForm(prefix="recycle"),
            disqualify_form=StageReasonForm(prefix="disqualify"),
            reopen_form=ReopenForm(prefix="reopen"),
            move_form=MoveForm(prefix="move", initial={"to_level": _next(lead)}),
        )
    from .sales_views import lead_sales_context

    context.update(lead_sales_context(request, lead, **forms))
    context.update(forms)
    return context


def _next(lead: Lead) -> str:
    levels = Level.values
    return levels[min(Level.rank(lead.level) + 1, len(levels) - 1)]


class LeadActionView(LoginRequiredMixin, View):
    """A change to one lead through a service: POST, then back to the lead.

    The lead is looked up among those the user may see (404 otherwise)
    before the permission is checked (403). A refusal by the service shows
    on the form, on the lead page.
    """

    permission = "leads.move_lead"
    form_name = ""
    anchor = "stage"
    # A template answering htmx posts with the changed part of the page;
    # without one, htmx posts are answered like any other.
    fragment = ""

    def post(self, request, pk, **kwargs):
        lead = selectors.lead_detail(user=request.user, pk=pk)
        if not request.user.has_perm(self.permission):
            raise PermissionDenied

        form = self.get_form(request.POST, **kwargs)
        if form.is_valid():
            try:
                message = self.perform(lead, form)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                if request.htmx and self.fragment:
                    return self.render_fragment(lead, message=message)
                messages.success(request, message)
                return redirect(f"{lead.get_absolute_url()}#{self.anchor}")

        if request.htmx and self.fragment:
            return self.render_fragment(lead, **self.form_context(form))
        context = lead_detail_context(request, lead, **self.form_context(form))
        context["lead"] = lead
        return render(request, "leads/lead_detail.html", context)

    def render_fragment(self, lead: Lead, *, message: str = "", **forms):
        """The part of the lead page the action changed, for htmx: the lead
        is read again, so its new level and score show."""
        lead = selectors.lead_detail(user=self.request.user, pk=lead.pk)
        context = lead_detail_context(self.request, lead, **forms)
        context.update(lead=lead, fragment_message=message)
        return render(self.request, self.fragment, context)

    def get_form(self, data, **kwargs):
        raise NotImplementedError

    def perform(self, lead: Lead, form) -> str:
        """Call the service; return the message that confirms it."""
        raise NotImplementedError

    def form_context(self, form) -> dict[str, object]:
        return {self.form_name: form}


def _add_errors(form, exc: ValidationError) -> None:
    """Show a service's refusal on the form: by field where it has one."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


class LeadRecycleView(LeadActionView):
    form_name = "recycle_form"

    def get_form(self, data, **kwargs):
        return StageReasonForm(data, prefix="recycle")

    def perform(self, lead, form):
        lead_recycle(lead_id=lead.pk, by=self.request.user, **form.cleaned_data)
        return _("Recycled to nurture.")


class LeadDisqualifyView(LeadActionView):
    form_name = "disqualify_form"

    def get_form(self, data, **kwargs):
        return StageReasonForm(data, prefix="disqualify")

    def perform(self, lead, form):
        lead_disqualify(lead_id=lead.pk, by=self.request.user, **form.cleaned_data)
        return _("Disqualified.")


class LeadReopenView(LeadActionView):
    form_name = "reopen_form"

    def get_form(self, data, **kwargs):
        return ReopenForm(data, prefix="reopen")

    def perform(self, lead, form):
        lead_reopen(lead_id=lead.pk, by=self.request.user, **form.cleaned_data)
        return _("Reopened.")


class LeadMoveView(LeadActionView):
    form_name = "move_form"

    def get_form(self, data, **kwargs):
        return MoveForm(data, prefix="move")

    def perform(self, lead, form):
        lead_move(lead_id=lead.pk, by=self.request.user, **form.cleaned_data)
        level = Level(form.cleaned_data["to_level"]).label
        return _("Moved to %(level)s.") % {"level": level}


class LeadBantConfirmView(LeadActionView):
    permission = "leads.change_bant"
    anchor = "bant"
    fragment = "leads/_lead_bant_htmx.html"

    def get_form(self, data, *, criterion: str):
        if criterion not in BantCriterion.values:
            raise Http404
        return BantConfirmForm(data, criterion=criterion)

    def perform(self, lead, form):
        lead_bant_set(
            lead_id=lead.pk,
            criterion=form.criterion,
            confirmed=True,
            by=self.request.user,
            **form.service_kwargs(),
        )
        label = BantCriterion(form.criterion).label
        return _("%(criterion)s confirmed.") % {"criterion": label}

    def form_context(self, form):
        return {"bant_forms": {form.criterion: form}}
