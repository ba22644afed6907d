from django.urls import path

from . import sales_views

app_name = "opportunities"

urlpatterns = [
    path("", sales_views.OpportunityListView.as_view(), name="list"),
    path("pipeline/", sales_views.PipelineView.as_view(), name="pipeline"),
    path("<int:pk>/", sales_views.OpportunityDetailView.as_view(), name="detail"),
    path("<int:pk>/move/", sales_views.OpportunityMoveView.as_view(), name="move"),
    path("<int:pk>/edit/", sales_views.OpportunityEditView.as_view(), name="edit"),
]
