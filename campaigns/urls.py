from django.urls import path

from dashboard.views import CampaignResultsView

from . import pages, views

app_name = "campaigns"

# Mounted at the site's root: the public capture lives under /f/, the
# marketers' campaign pages under /campaigns/.
urlpatterns = [
    # Public: capture, hosted form, embed token, double opt-in.
    path("f/<slug:key>/", views.capture, name="capture"),
    path("f/<slug:key>/thanks/", views.thanks, name="thanks"),
    path("f/<slug:key>/token/", views.token, name="token"),
    path(
        "consent/confirm/<str:token>/",
        views.consent_confirmation,
        name="consent_confirm",
    ),
    # Marketers' pages.
    path("campaigns/", pages.CampaignListView.as_view(), name="list"),
    path("campaigns/new/", pages.CampaignCreateView.as_view(), name="create"),
    path("campaigns/<int:pk>/", pages.CampaignDetailView.as_view(), name="detail"),
    path("campaigns/<int:pk>/edit/", pages.CampaignUpdateView.as_view(), name="edit"),
    path(
        "campaigns/<int:pk>/forms/new/",
        pages.WebFormCreateView.as_view(),
        name="form_create",
    ),
    path(
        "campaigns/forms/<int:pk>/", pages.WebFormUpdateView.as_view(), name="form_edit"
    ),
    path("campaigns/spam/", pages.SpamLogView.as_view(), name="spam_log"),
    path(
        "campaigns/spam/<int:pk>/release/",
        pages.SpamReleaseView.as_view(),
        name="spam_release",
    ),
    path(
        "campaigns/<int:pk>/results/",
        CampaignResultsView.as_view(),
        name="results",
    ),
]
