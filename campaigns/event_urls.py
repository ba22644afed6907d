from django.urls import path

from . import event_views as views

app_name = "events"

urlpatterns = [
    path("", views.EventListView.as_view(), name="list"),
    path("new/", views.EventCreateView.as_view(), name="create"),
    path("<int:pk>/", views.EventDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", views.EventUpdateView.as_view(), name="update"),
    path("<int:pk>/check-in/", views.EventCheckInView.as_view(), name="check_in"),
    path(
        "<int:pk>/check-in/<int:registration_pk>/",
        views.RegistrationCheckInView.as_view(),
        name="check_in_registration",
    ),
    path(
        "<int:pk>/attendance/",
        views.AttendanceImportView.as_view(),
        name="import_attendance",
    ),
]
