from django.urls import path

from . import tracking_views as views

app_name = "email_tracking"

urlpatterns = [
    path("o/<str:token>/", views.open_pixel, name="open"),
    path("c/<str:token>/<int:index>/", views.click, name="click"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("bounces/", views.bounces, name="bounces"),
]
