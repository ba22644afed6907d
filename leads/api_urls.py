from django.urls import path

from . import api

app_name = "api"

urlpatterns = [
    path("leads/", api.LeadListCreateView.as_view(), name="lead-list"),
    path("leads/<int:pk>/", api.LeadDetailView.as_view(), name="lead-detail"),
]
