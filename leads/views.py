from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import DetailView, ListView

from .models import Lead


class LeadListView(LoginRequiredMixin, ListView):
    model = Lead
    paginate_by = 50

    def get_queryset(self):
        return Lead.objects.visible_to(self.request.user)


class LeadDetailView(LoginRequiredMixin, DetailView):
    model = Lead

    def get_queryset(self):
        return Lead.objects.visible_to(self.request.user)
