"""Pages of sales' work: activities and tasks on a lead, converting a lead
into an opportunity, the opportunity list, detail and pipeline.

Every object is looked up among those the user may see (404 otherwise)
before a permission is checked (403).
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from . import activities, opportunities, selectors
from .models import Activity, ActivityKind, Lead, Level, Opportunity, OpportunityStage
from .sales_forms import ActivityForm, ConvertForm, OpportunityForm, StageMoveForm


def _add_errors(form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def _paginate(request, queryset, per_page: int):
    # A page past the end shows the last page instead of an error.
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def lead_sales_context(request, lead: Lead, **forms) -> dict[str, object]:
    """What the lead page shows of sales' work: activities, tasks, the
    opportunity or the way to convert."""
    user = request.user
    can_view = user.has_perm("leads.view_activity")
    can_log = user.has_perm("leads.add_activity")
    opportunity = Opportunity.objects.filter(lead=lead).first()
    return {
        "activities": activities.lead_activities(lead=lead) if can_view else [],
        "can_view_activities": can_view,
        "can_log_activity": can_log,
        "can_complete_tasks": user.has_perm("leads.change_activity"),
        "activity_form": forms.get("activity_form")
        or (ActivityForm() if can_log else None),
        "opportunity": opportunity,
        "can_convert": opportunity is None
        and lead.level == Level.SQL
        and lead.status == "open"
        and user.has_perm("leads.add_opportunity"),
        "can_see_opportunity": user.has_perm("leads.view_opportunity"),
        "can_see_money": user.has_perm("leads.view_opportunity_amount"),
    }


class LeadActivityCreateView(LoginRequiredMixin, View):
    def post(self, request, pk):
        lead = selectors.lead_detail(user=request.user, pk=pk)
        if not request.user.has_perm("leads.add_activity"):
            raise PermissionDenied

        form = ActivityForm(request.POST)
        if form.is_valid():
            try:
                activity = activities.activity_log(
                    lead_id=lead.pk, by=request.user, data=form.to_input()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                message = _("%(kind)s logged.") % {"kind": activity.get_kind_display()}
                if request.htmx:
                    return _activities_card(request, lead, message=message)
                messages.success(request, message)
                return redirect(f"{lead.get_absolute_url()}#activities")

        if request.htmx:
            return _activities_card(request, lead, activity_form=form)
        from .views import lead_detail_context

        context = lead_detail_context(request, lead, activity_form=form)
        context["lead"] = lead
        return render(request, "leads/lead_detail.html", context)


def _activities_card(request, lead: Lead, *, message: str = "", **forms):
    lead = selectors.lead_detail(user=request.user, pk=lead.pk)
    context = lead_sales_context(request, lead, **forms)
    context.update(lead=lead, activity_message=message)
    return render(request, "leads/_lead_activities.html", context)


class TaskListView(LoginRequiredMixin, TemplateView):
    template_name = "leads/task_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        when = self.request.GET.get("when", "today")
        if when not in activities.TASK_FILTERS:
            when = "today"
        tasks = activities.task_list(user=self.request.user, when=when)
        context.update(
            when=when,
            filters=[
                ("today", _("Due today and overdue")),
                ("overdue", _("Overdue")),
                ("upcoming", _("Upcoming")),
                ("open", _("All open")),
                ("done", _("Done")),
            ],
            page_obj=_paginate(self.request, tasks, 50),
            reminders=list(activities.reminders_shown(user=self.request.user)[:20]),
            can_complete_tasks=self.request.user.has_perm("leads.change_activity"),
        )
        return context


class TaskCompleteView(LoginRequiredMixin, View):
    def post(self, request, pk):
        task = get_object_or_404(
            Activity.objects.visible_to(request.user).filter(kind=ActivityKind.TASK),
            pk=pk,
        )
        if not request.user.has_perm("leads.change_activity"):
            raise PermissionDenied

        try:
            task = activities.task_complete(task_id=task.pk, by=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
            if not request.htmx:
                messages.error(request, error)
        else:
            error = ""
            if not request.htmx:
                messages.success(request, _("Task done."))

        if request.htmx and request.POST.get("from") == "lead":
            return _activities_card(request, task.lead, message=error)
        if request.htmx:
            task.refresh_from_db()
            return render(
                request,
                "leads/_task_row.html",
                {"task": task, "error": error, "can_complete_tasks": True},
            )
        return redirect(_next_url(request, default="leads:tasks"))


def _next_url(request, *, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(default)


class LeadConvertView(LoginRequiredMixin, View):
    template_name = "leads/opportunity_convert.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.lead = selectors.lead_detail(user=request.user, pk=kwargs["pk"])
        if not request.user.has_perm("leads.add_opportunity"):
            raise PermissionDenied
        existing = Opportunity.objects.filter(lead=self.lead).first()
        if existing is not None:
            messages.info(
                request, _("This lead was converted already; here is its opportunity.")
            )
            return redirect(existing)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, pk):
        initial = {"name": self.lead.company or self.lead.display_name}
        budget = self.lead.bant.filter(criterion="budget").first()
        if budget and budget.amount is not None:
            initial.update(amount=budget.amount, currency=budget.currency or "VND")
        return self._render(ConvertForm(initial=initial))

    def post(self, request, pk):
        form = ConvertForm(request.POST)
        if form.is_valid():
            try:
                opportunity = opportunities.opportunity_convert(
                    lead_id=self.lead.pk, by=request.user, data=form.to_input()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Converted into an opportunity."))
                return redirect(opportunity)
        return self._render(form)

    def _render(self, form):
        return render(
            self.request,
            self.template_name,
            {
                "lead": self.lead,
                "form": form,
                "is_sql": self.lead.level == Level.SQL,
            },
        )


class _OpportunityAccess(LoginRequiredMixin):
    def money_context(self) -> dict[str, object]:
        return {
            "can_see_money": self.request.user.has_perm(
                "leads.view_opportunity_amount"
            ),
            "can_move": self.request.user.has_perm("leads.change_opportunity"),
        }


class OpportunityListView(_OpportunityAccess, TemplateView):
    template_name = "leads/opportunity_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "").strip()
        stage = self.request.GET.get("stage", "")
        found = opportunities.opportunity_list(
            user=self.request.user, query=query, stage=stage
        )
        context.update(
            self.money_context(),
            q=query,
            stage=stage if stage in OpportunityStage.values else "",
            stages=OpportunityStage.choices,
            page_obj=_paginate(self.request, found, 25),
            is_narrowed=bool(query or stage),
        )
        return context


class PipelineView(_OpportunityAccess, TemplateView):
    template_name = "leads/opportunity_pipeline.html"

    def get_template_names(self):
        htmx = self.request.htmx
        if htmx and not htmx.history_restore_request:
            return ["leads/_pipeline_board.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.money_context(), **board_context(self.request))
        return context

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        patch_vary_headers(response, ("HX-Request",))
        return response


def board_context(request, **forms) -> dict[str, object]:
    columns = opportunities.pipeline(user=request.user)
    # A refused move shows its errors on its own card.
    refused = forms.get("move_forms", {})
    for column in columns:
        for opportunity in column.opportunities:
            opportunity.move_form = refused.get(opportunity.pk)
    return {
        "columns": columns,
        "stage_choices": OpportunityStage.choices,
        "reason_choices": StageMoveForm.base_fields["reason_code"].choices,
    }


class OpportunityDetailView(_OpportunityAccess, TemplateView):
    template_name = "leads/opportunity_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        opportunity = opportunities.opportunity_detail(
            user=self.request.user, pk=kwargs["pk"]
        )
        context.update(self.money_context(), **detail_context(opportunity))
        return context


def detail_context(
    opportunity: Opportunity, form=None, edit_form=None
) -> dict[str, object]:
    return {
        "opportunity": opportunity,
        "history": opportunities.opportunity_history(opportunity=opportunity),
        "move_form": form or StageMoveForm(initial={"to_stage": opportunity.stage}),
        "edit_form": edit_form
        or OpportunityForm(
            prefix="edit",
            initial={
                "name": opportunity.name,
                "amount": opportunity.amount,
                "currency": opportunity.currency,
                "expected_close_on": opportunity.expected_close_on,
            },
        ),
    }


class OpportunityEditView(_OpportunityAccess, View):
    def post(self, request, pk):
        opportunity = opportunities.opportunity_detail(user=request.user, pk=pk)
        user = request.user
        if not (
            user.has_perm("leads.change_opportunity")
            and user.has_perm("leads.view_opportunity_amount")
        ):
            raise PermissionDenied

        form = OpportunityForm(request.POST, prefix="edit")
        if form.is_valid():
            try:
                opportunities.opportunity_update(
                    opportunity_id=opportunity.pk, by=user, data=form.to_input()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Opportunity saved."))
                return redirect(opportunity)

        context = {
            **self.money_context(),
            **detail_context(opportunity, edit_form=form),
        }
        return render(request, "leads/opportunity_detail.html", context)


class OpportunityMoveView(_OpportunityAccess, View):
    def post(self, request, pk):
        opportunity = opportunities.opportunity_detail(user=request.user, pk=pk)
        if not request.user.has_perm("leads.change_opportunity"):
            raise PermissionDenied

        form = StageMoveForm(request.POST)
        moved = False
        if form.is_valid():
            try:
                opportunity = opportunities.opportunity_move(
                    opportunity_id=opportunity.pk, by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                moved = True

        from_pipeline = request.POST.get("from") == "pipeline"
        if request.htmx and from_pipeline:
            forms = {} if moved else {"move_forms": {opportunity.pk: form}}
            context = {**self.money_context(), **board_context(request, **forms)}
            return render(request, "leads/_pipeline_board.html", context)
        if moved:
            label = OpportunityStage(opportunity.stage).label
            messages.success(request, _("Moved to %(stage)s.") % {"stage": label})
            if from_pipeline:
                return redirect("opportunities:pipeline")
            return redirect(opportunity)

        context = {**self.money_context(), **detail_context(opportunity, form)}
        return render(request, "leads/opportunity_detail.html", context, status=200)
