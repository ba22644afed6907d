from django.urls import path

from . import email_views as views

app_name = "emails"

urlpatterns = [
    path("", views.EmailCampaignListView.as_view(), name="list"),
    path("new/", views.EmailCampaignEditView.as_view(), name="create"),
    path("<int:pk>/", views.EmailCampaignDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", views.EmailCampaignEditView.as_view(), name="edit"),
    path("<int:pk>/test/", views.EmailCampaignTestView.as_view(), name="test"),
    path("<int:pk>/send/", views.EmailCampaignSendView.as_view(), name="send"),
    path(
        "<int:pk>/progress/", views.EmailCampaignProgressView.as_view(), name="progress"
    ),
    path("segments/", views.SegmentListView.as_view(), name="segments"),
    path("segments/new/", views.SegmentEditView.as_view(), name="segment_create"),
    path("segments/count/", views.SegmentCountView.as_view(), name="segment_count"),
    path("segments/<int:pk>/", views.SegmentEditView.as_view(), name="segment_edit"),
]
