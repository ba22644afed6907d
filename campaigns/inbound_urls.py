from django.urls import path

from . import inbound_views

app_name = "inbound"

urlpatterns = [
    path("<slug:key>/", inbound_views.receive, name="receive"),
]
