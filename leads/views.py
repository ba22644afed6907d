from django.contrib.auth.mixins import LoginRequiredMixin
from django.utils.cache import patch_vary_headers
from django.views.generic import DetailView, ListView

from . import selectors
from .filters import LeadFilter


class LeadListView(LoginRequiredMixin, ListView):
    template_name = "leads/lead_list.html"
    context_object_name = "leads"
    paginate_by = 50

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
        lead = self.object
        timeline, timeline_total = selectors.lead_timeline(lead=lead)
        context.update(
            timeline=timeline,
            timeline_total=timeline_total,
            level_history=selectors.lead_level_history(lead=lead),
        )
        return context
