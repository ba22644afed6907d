import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Lead, LeadStatus, Level, Temperature, source_label
from .selectors import lead_search, lead_sources

# Only these orderings are accepted from ?sort=; each ends with the primary
# key so that leads with equal scores keep one order across pages.
SORTS = {
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "-score": ("-score", "-id"),
    "score": ("score", "id"),
    "-engagement": ("-engagement_score", "-id"),
    "-fit": ("-fit_score", "-id"),
    "-bant": ("-bant_score", "-id"),
}
SORT_CHOICES = [
    ("-created", _("Newest first")),
    ("created", _("Oldest first")),
    ("-score", _("Highest score")),
    ("score", _("Lowest score")),
    ("-engagement", _("Most engaged")),
    ("-fit", _("Best fit")),
    ("-bant", _("Most BANT")),
]
# Parameters that narrow the list, as opposed to ordering or paging it.
NARROWING = (
    "q",
    "level",
    "status",
    "temperature",
    "source",
    "score_min",
    "score_max",
    "engagement_min",
    "fit_min",
    "bant_min",
)


class LeadFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_search",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": _("Name, email, phone or company"),
                "autocomplete": "off",
            }
        ),
    )
    level = django_filters.ChoiceFilter(
        label=_("Level"), choices=Level.choices, empty_label=_("All levels")
    )
    temperature = django_filters.ChoiceFilter(
        label=_("Temperature"),
        choices=Temperature.choices,
        empty_label=_("All temperatures"),
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=LeadStatus.choices,
        empty_label=_("Any status"),
    )
    source = django_filters.ChoiceFilter(
        label=_("Source"), choices=[], empty_label=_("All sources")
    )
    score_min = django_filters.NumberFilter(
        label=_("Score from"), field_name="score", lookup_expr="gte"
    )
    score_max = django_filters.NumberFilter(
        label=_("Score up to"), field_name="score", lookup_expr="lte"
    )
    engagement_min = django_filters.NumberFilter(
        label=_("Engagement from"), field_name="engagement_score", lookup_expr="gte"
    )
    fit_min = django_filters.NumberFilter(
        label=_("Fit from"), field_name="fit_score", lookup_expr="gte"
    )
    bant_min = django_filters.NumberFilter(
        label=_("BANT from"), field_name="bant_score", lookup_expr="gte"
    )
    sort = django_filters.ChoiceFilter(
        label=_("Sort"),
        choices=SORT_CHOICES,
        method="filter_sort",
        empty_label=None,
    )

    class Meta:
        model = Lead
        fields = [
            "q",
            "level",
            "status",
            "temperature",
            "source",
            "score_min",
            "score_max",
            "engagement_min",
            "fit_min",
            "bant_min",
            "sort",
        ]

    def __init__(self, data=None, queryset=None, **kwargs):
        super().__init__(data, queryset=queryset, **kwargs)
        self.filters["source"].extra["choices"] = [
            (source, source_label(source)) for source in lead_sources(self.queryset)
        ]

    @property
    def is_narrowed(self) -> bool:
        """Whether the list shows fewer leads than the user may see."""
        return self.is_bound and any(self.data.get(name) for name in NARROWING)

    def filter_search(self, queryset, name, value):
        return lead_search(queryset, value)

    def filter_sort(self, queryset, name, value):
        return queryset.order_by(*SORTS[value])
