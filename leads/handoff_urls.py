from django.urls import path

from . import handoff_views as views

app_name = "sales"

urlpatterns = [
    path("inbox/", views.InboxView.as_view(), name="inbox"),
    path("queue/", views.QueueView.as_view(), name="queue"),
    path("team/", views.TeamBoardView.as_view(), name="team"),
    path("team/reassign/", views.ReassignView.as_view(), name="reassign_many"),
    path("leads/<int:pk>/accept/", views.AcceptView.as_view(), name="accept"),
    path("leads/<int:pk>/reject/", views.RejectView.as_view(), name="reject"),
    path("leads/<int:pk>/reassign/", views.ReassignView.as_view(), name="reassign"),
    path(
        "notifications/",
        views.NotificationListView.as_view(),
        name="notifications",
    ),
    path(
        "notifications/badge/",
        views.NotificationBadgeView.as_view(),
        name="notification_badge",
    ),
    path(
        "notifications/read/",
        views.NotificationReadView.as_view(),
        name="notifications_read",
    ),
    path(
        "notifications/<int:pk>/open/",
        views.NotificationReadView.as_view(),
        name="notification_open",
    ),
]
