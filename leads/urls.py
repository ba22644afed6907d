from django.urls import path

from . import sales_views, views

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
    path(
        "<int:pk>/activities/",
        sales_views.LeadActivityCreateView.as_view(),
        name="activity_create",
    ),
    path("<int:pk>/convert/", sales_views.LeadConvertView.as_view(), name="convert"),
    path("tasks/", sales_views.TaskListView.as_view(), name="tasks"),
    path(
        "tasks/<int:pk>/complete/",
        sales_views.TaskCompleteView.as_view(),
        name="task_complete",
    ),
]
