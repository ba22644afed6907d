"""Materialised aggregates behind the marketer's dashboard.

Counting a million leads with their stage history on every page view is too
slow, so `services.summary_refresh` folds them into one row per local day,
source and first/last-touch campaign. The pages read only these rows.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LeadDaySummary(models.Model):
    """Leads created on one day (in settings.TIME_ZONE) with one source and
    one pair of touch campaigns, and how far they got."""

    day = models.DateField()
    source = models.CharField(max_length=100, blank=True)
    first_campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    last_campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    leads = models.PositiveIntegerField(default=0)
    reached_mql = models.PositiveIntegerField(default=0)
    reached_sql = models.PositiveIntegerField(default=0)
    opportunities = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)
    at_iql = models.PositiveIntegerField(default=0)
    at_mql = models.PositiveIntegerField(default=0)
    at_sql = models.PositiveIntegerField(default=0)
    cold = models.PositiveIntegerField(default=0)
    warm = models.PositiveIntegerField(default=0)
    hot = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("lead day summary")
        verbose_name_plural = _("lead day summaries")
        default_permissions = ()
        permissions = [("view_dashboard", _("Can see the marketing dashboard"))]
        indexes = [models.Index(fields=["day"], name="leaddaysummary_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.source or '-'}: {self.leads}"


class SummaryState(models.Model):
    """One row: up to when the summary has folded in lead changes."""

    refreshed_through = models.DateTimeField(null=True)
    refreshed_at = models.DateTimeField(null=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.refreshed_through}"
