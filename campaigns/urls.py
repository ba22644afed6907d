from django.urls import path

from dashboard.views import CampaignResultsView

from . import views

app_name = "campaigns"

# Mounted at the site's root: the public capture lives under /f/, the
# marketers' campaign pages under /campaigns/.
urlpatterns = [
    path("f/<slug:key>/", views.capture, name="capture"),
    path("f/<slug:key>/thanks/", views.thanks, name="thanks"),
    path(
        "campaigns/<int:pk>/results/",
        CampaignResultsView.as_view(),
        name="results",
    ),
]
