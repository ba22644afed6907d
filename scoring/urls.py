from django.urls import path

from . import views

app_name = "scoring"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("jobs/", views.JobListView.as_view(), name="jobs"),
    path("draft/", views.DraftOpenView.as_view(), name="draft_open"),
    path("draft/<int:pk>/", views.DraftEditView.as_view(), name="draft"),
    path("draft/<int:pk>/preview/", views.DraftPreviewView.as_view(), name="preview"),
    path(
        "draft/<int:pk>/activate/", views.DraftActivateView.as_view(), name="activate"
    ),
    path("draft/<int:pk>/discard/", views.DraftDiscardView.as_view(), name="discard"),
]
