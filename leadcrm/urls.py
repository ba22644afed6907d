from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.views import home

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Capture and the campaign pages first: every form post on every site
    # resolves its URL, and a pattern tried sooner is cheaper to reach.
    path("", include("campaigns.urls")),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Invitations (manage.py invite_user) link here to choose a password.
    path(
        "password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("leads/", include("leads.urls")),
    path("opportunities/", include("leads.opportunity_urls")),
    path("scoring/", include("scoring.urls")),
    path("sales/", include("leads.handoff_urls")),
    path("api/", include("leads.api_urls")),
    path("dashboard/", include("dashboard.urls")),
    path("events/", include("campaigns.event_urls")),
    path("in/", include("campaigns.inbound_urls")),
    path("emails/", include("campaigns.email_urls")),
    path("e/", include("campaigns.tracking_urls")),
    path("", home, name="home"),
]
