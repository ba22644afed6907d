from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.LeadListView.as_view(), name="list"),
    path("<int:pk>/", views.LeadDetailView.as_view(), name="detail"),
    path(
        "<int:pk>/bant/<slug:criterion>/",
        views.LeadBantConfirmView.as_view(),
        name="bant_confirm",
    ),
    path("<int:pk>/recycle/", views.LeadRecycleView.as_view(), name="recycle"),
    path("<int:pk>/disqualify/", views.LeadDisqualifyView.as_view(), name="disqualify"),
    path("<int:pk>/reopen/", views.LeadReopenView.as_view(), name="reopen"),
    path("<int:pk>/move/", views.LeadMoveView.as_view(), name="move"),
]
