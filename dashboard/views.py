"""The marketer's dashboard and a campaign's results.

Both read only the daily summary and one aggregate over MQL times; the
numbers cover all leads, so only roles that see every lead (the
dashboard.view_dashboard permission) get them.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.generic import TemplateView

from campaigns.models import Campaign

from . import exporting, selectors, tasks
from .charts import chart_data
from .forms import FilterForm
from .selectors import FIRST_TOUCH, LAST_TOUCH, Filters

logger = logging.getLogger(__name__)

# Older than this, opening the page asks for a refresh (beat normally keeps
# the summary within a minute or two).
STALE_AFTER = timedelta(minutes=5)
MARKETER = "Marketer"
REFRESH_REQUESTED = "dashboard:refresh-requested"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Marketers start on their dashboard, sales managers on their team's
    board, sales reps in their MQL inbox, everyone else (administrators
    included) on the leads."""
    user = request.user
    if user.groups.filter(name=MARKETER).exists():
        return redirect("dashboard:index")
    # A superuser holds every permission but works no inbox of their own.
    if user.is_superuser:
        return redirect("leads:list")
    if user.has_perm("leads.assign_lead"):
        return redirect("sales:team")
    if user.has_perm("leads.work_inbox"):
        return redirect("sales:inbox")
    return redirect("leads:list")


class DashboardAccessMixin(PermissionRequiredMixin):
    permission_required = "dashboard.view_dashboard"

    def summary_state(self):
        state = selectors.summary_state()
        stale = state is None or state.refreshed_at < timezone.now() - STALE_AFTER
        # Once a minute per process at most, however many views see it stale.
        if stale and cache.add(REFRESH_REQUESTED, True, timeout=60):
            # Runs in-process where Celery is eager (make run), else queued.
            tasks.refresh_summary.delay()
            state = selectors.summary_state()
        return state


class DashboardView(DashboardAccessMixin, TemplateView):
    template_name = "dashboard/dashboard.html"
    exports = {
        "funnel": lambda data: exporting.funnel_rows(data["results"].funnel),
        "weekly": lambda data: exporting.weekly_rows(data["results"].weeks),
        "speed": lambda data: exporting.speed_rows(data["speed"]),
        "temperature": lambda data: exporting.temperature_rows(
            data["results"].temperature
        ),
        "campaigns": lambda data: exporting.campaign_rows(data["campaigns"]),
    }

    def get(self, request, *args, **kwargs):
        export = request.GET.get("export")
        if export is not None and export not in self.exports:
            raise Http404
        state = self.summary_state()
        form = FilterForm(request.GET or None, sources=selectors.summary_sources())
        filters = form.filters()
        data = {
            "results": selectors.results(filters),
            "campaigns": selectors.top_campaigns(filters),
            "speed": selectors.speed_to_lead(filters),
        }
        if export:
            header, rows = self.exports[export](data)
            return exporting.csv_response(
                f"dashboard-{export}-{filters.start}-{filters.end}.csv", header, rows
            )
        context = self.get_context_data(
            form=form,
            filters=filters,
            state=state,
            funnel_steps=data["results"].funnel.steps(),
            chart_data=chart_data(data["results"]),
            time_zone=settings.TIME_ZONE,
            **data,
        )
        return self.render_to_response(context)


class CampaignResultsView(DashboardAccessMixin, TemplateView):
    template_name = "dashboard/campaign_results.html"
    exports = ("funnel", "weekly")

    def get(self, request, *args, **kwargs):
        export = request.GET.get("export")
        if export is not None and export not in self.exports:
            raise Http404
        campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        attribution = request.GET.get("attribution")
        if attribution != LAST_TOUCH:
            attribution = FIRST_TOUCH
        state = self.summary_state()
        filters = Filters(campaign=campaign, attribution=attribution)
        results = selectors.results(filters)

        if export == "funnel":
            header, rows = exporting.funnel_rows(results.funnel)
        elif export == "weekly":
            header, rows = exporting.weekly_rows(results.weeks)
        if export:
            return exporting.csv_response(
                f"campaign-{campaign.pk}-{attribution}-{export}.csv", header, rows
            )
        context = self.get_context_data(
            campaign=campaign,
            attribution=attribution,
            state=state,
            results=results,
            funnel_steps=results.funnel.steps(),
            costs=selectors.campaign_costs(campaign, results.funnel),
            chart_data=chart_data(results, weekly="funnel"),
            time_zone=settings.TIME_ZONE,
        )
        return self.render_to_response(context)
