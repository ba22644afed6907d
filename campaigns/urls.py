from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("<slug:key>/", views.capture, name="capture"),
    path("<slug:key>/thanks/", views.thanks, name="thanks"),
]
