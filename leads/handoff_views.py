"""Pages of the sales hand-off: MQL inbox, SQL queue, the manager's team
board, notifications. Leads are looked up through `visible_to` (404 for the
rest) before any permission is checked (403)."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.generic import ListView, View

from . import selectors
from .assignment import lead_reassign
from .handoff import lead_accept, lead_reject
from .handoff_forms import QueueFilter, ReassignForm, RejectForm
from .models import Notification
from .notifications import notification_mark_read

PAGE_SIZE = 50


def _require_sales(user) -> None:
    if not (
        user.is_superuser
        or user.has_perm("leads.work_inbox")
        or user.has_perm("leads.assign_lead")
    ):
        raise PermissionDenied


def _require_manager(user) -> None:
    if not selectors.is_manager(user):
        raise PermissionDenied


def _back(request, default: str) -> str:
    """Where an action returns: the page it was posted from, when local."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class PagedListView(LoginRequiredMixin, ListView):
    paginate_by = PAGE_SIZE

    def paginate_queryset(self, queryset, page_size):
        # Past the end shows the last page instead of an error.
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()


class InboxView(PagedListView):
    template_name = "sales/inbox.html"
    context_object_name = "leads"

    def get_queryset(self):
        _require_sales(self.request.user)
        return selectors.mql_inbox(user=self.request.user)


class QueueView(PagedListView):
    template_name = "sales/queue.html"
    context_object_name = "leads"

    def get_queryset(self):
        user = self.request.user
        _require_sales(user)
        self.reps = (
            list(selectors.assignable_reps(user=user))
            if selectors.is_manager(user)
            else None
        )
        self.filterset = QueueFilter(
            self.request.GET or None,
            queryset=selectors.sql_queue(user=user),
            reps=self.reps,
        )
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter"] = self.filterset
        context["is_narrowed"] = any(
            self.request.GET.get(name) for name in self.filterset.filters
        )
        return context


class TeamBoardView(PagedListView):
    template_name = "sales/team_board.html"
    context_object_name = "leads"

    def get_queryset(self):
        user = self.request.user
        _require_manager(user)
        self.reps = list(selectors.assignable_reps(user=user))
        self.filterset = QueueFilter(
            self.request.GET or None,
            queryset=selectors.team_board(user=user),
            reps=self.reps,
        )
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter"] = self.filterset
        context["reassign_form"] = kwargs.get("reassign_form") or ReassignForm(
            reps=self.reps
        )
        return context


class ReassignView(LoginRequiredMixin, View):
    """Bulk reassignment from the team board, or one lead's from its page."""

    def post(self, request, pk=None):
        user = request.user
        if pk is not None:
            selectors.lead_detail(user=user, pk=pk)
        _require_manager(user)
        reps = list(selectors.assignable_reps(user=user))
        data = request.POST.copy()
        if pk is not None:
            data.setlist("leads", [str(pk)])
        ids = [int(v) for v in data.getlist("leads") if v.isdigit()]
        form = ReassignForm(data, reps=reps, lead_ids=ids)
        board = reverse("sales:team")
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect(_back(request, board))
        try:
            moved = lead_reassign(
                lead_ids=form.cleaned_data["leads"],
                to_user_id=int(form.cleaned_data["rep"]),
                by=user,
            )
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
        else:
            messages.success(
                request, _("%(count)s lead(s) reassigned.") % {"count": moved}
            )
        return redirect(_back(request, board))


class AcceptView(LoginRequiredMixin, View):
    def post(self, request, pk):
        lead = selectors.lead_detail(user=request.user, pk=pk)
        _require_sales(request.user)
        try:
            lead_accept(lead_id=lead.pk, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, _("Accepted %(lead)s.") % {"lead": lead.display_name}
            )
        return redirect(_back(request, reverse("sales:inbox")))


class RejectView(LoginRequiredMixin, View):
    def get(self, request, pk):
        """The reject form: inline in the inbox row (htmx), or a page."""
        lead = selectors.lead_detail(user=request.user, pk=pk)
        _require_sales(request.user)
        context = {
            "lead": lead,
            "form": RejectForm(),
            "next": request.GET.get("next", ""),
        }
        if request.htmx:
            return render(request, "sales/_reject_form.html", context)
        return render(request, "sales/reject.html", context)

    def post(self, request, pk):
        lead = selectors.lead_detail(user=request.user, pk=pk)
        _require_sales(request.user)
        form = RejectForm(request.POST)
        if form.is_valid():
            try:
                lead_reject(lead_id=lead.pk, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(
                    request,
                    _("Rejected %(lead)s: it is back with marketing.")
                    % {"lead": lead.display_name},
                )
                return redirect(_back(request, reverse("sales:inbox")))
        return render(
            request,
            "sales/reject.html",
            {"lead": lead, "form": form, "next": request.POST.get("next", "")},
            status=400,
        )


class NotificationListView(PagedListView):
    template_name = "sales/notification_list.html"
    context_object_name = "notifications"

    def get_queryset(self):
        return Notification.objects.filter(user=self.request.user).select_related(
            "lead"
        )


class NotificationBadgeView(LoginRequiredMixin, View):
    """The unread count in the navigation, loaded by htmx so pages do not
    pay for it."""

    def get(self, request):
        unread = Notification.objects.filter(
            user=request.user, read_at__isnull=True
        ).count()
        return render(request, "sales/_notification_badge.html", {"unread": unread})


class NotificationReadView(LoginRequiredMixin, View):
    """Mark one notification read and open its lead, or mark all read."""

    def post(self, request, pk=None):
        if pk is None:
            notification_mark_read(user=request.user)
            return redirect("sales:notifications")
        notification = get_object_or_404(
            Notification.objects.filter(user=request.user), pk=pk
        )
        notification_mark_read(user=request.user, notification_ids=[pk])
        return redirect(notification.lead.get_absolute_url())
