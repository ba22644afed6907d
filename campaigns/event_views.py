"""Event pages: the list, an event with its registrations, the check-in
page for the door and the attendance import."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import CreateView, ListView, UpdateView, View

from . import events
from .event_forms import AttendanceImportForm, EventForm
from .models import Attendance, Event, RegistrationStatus

PAGE_SIZE = 50


class PagedListView(ListView):
    paginate_by = PAGE_SIZE

    def paginate_queryset(self, queryset, page_size):
        # A page past the end shows the last page instead of an error.
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        patch_vary_headers(response, ("HX-Request",))
        return response

    def fragment(self) -> bool:
        htmx = self.request.htmx
        return bool(htmx) and not htmx.history_restore_request


class EventListView(LoginRequiredMixin, PermissionRequiredMixin, PagedListView):
    permission_required = "campaigns.view_event"
    template_name = "campaigns/event_list.html"
    context_object_name = "events"

    def get_queryset(self):
        return events.event_list(
            query=self.request.GET.get("q", ""), when=self.request.GET.get("when", "")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["query"] = self.request.GET.get("q", "")
        context["when"] = self.request.GET.get("when", "")
        context["is_narrowed"] = bool(context["query"] or context["when"])
        return context

    def get_template_names(self):
        if self.fragment():
            return ["campaigns/_event_table.html"]
        return [self.template_name]


class EventMixin(LoginRequiredMixin, PermissionRequiredMixin):
    @cached_property
    def event(self) -> Event:
        # Loaded on first use, after the login and permission checks: a
        # stranger learns nothing of which events exist.
        return get_object_or_404(
            Event.objects.select_related("campaign", "form"), pk=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["event"] = self.event
        return context


class EventDetailView(EventMixin, PagedListView):
    """The event and its registrations, searchable and filtered by status."""

    permission_required = "campaigns.view_event"
    template_name = "campaigns/event_detail.html"
    context_object_name = "registrations"

    def get_queryset(self):
        return events.registration_list(
            event=self.event,
            user=self.request.user,
            query=self.request.GET.get("q", ""),
            status=self.request.GET.get("status", ""),
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            counts=events.event_counts(event=self.event),
            query=self.request.GET.get("q", ""),
            status=self.request.GET.get("status", ""),
            statuses=[*RegistrationStatus.choices, *Attendance.choices],
            import_form=AttendanceImportForm(),
        )
        context["is_narrowed"] = bool(context["query"] or context["status"])
        return context

    def get_template_names(self):
        if self.fragment():
            return ["campaigns/_registration_table.html"]
        return [self.template_name]


class EventCheckInView(EventMixin, PagedListView):
    """The door: find a person by name, email or phone and tap them in."""

    permission_required = "campaigns.change_eventregistration"
    template_name = "campaigns/event_check_in.html"
    context_object_name = "registrations"
    paginate_by = 20

    def get_queryset(self):
        return events.registration_list(
            event=self.event,
            user=self.request.user,
            query=self.request.GET.get("q", ""),
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["query"] = self.request.GET.get("q", "")
        context["counts"] = events.event_counts(event=self.event)
        return context

    def get_template_names(self):
        if self.fragment():
            return ["campaigns/_check_in_results.html"]
        return [self.template_name]


class RegistrationCheckInView(EventMixin, View):
    permission_required = "campaigns.change_eventregistration"

    def post(self, request, pk, registration_pk):
        registration = (
            events.registration_list(event=self.event, user=request.user)
            .filter(pk=registration_pk)
            .first()
        )
        if registration is None:
            raise Http404(_("No such registration."))

        registration = events.registration_check_in(
            registration=registration, user=request.user
        )

        if request.htmx:
            return render(
                request,
                "campaigns/_check_in_done.html",
                {
                    "event": self.event,
                    "registration": registration,
                    "counts": events.event_counts(event=self.event),
                    "just_checked": True,
                },
            )
        messages.success(
            request,
            _("%(name)s is checked in.") % {"name": registration.lead.display_name},
        )
        back = reverse("events:check_in", args=[self.event.pk])
        query = request.POST.get("q", "")
        return redirect(f"{back}?{urlencode({'q': query})}" if query else back)


class AttendanceImportView(EventMixin, View):
    permission_required = "campaigns.change_eventregistration"

    def post(self, request, pk):
        form = AttendanceImportForm(request.POST, request.FILES)
        if not form.is_valid():
            for error in form.errors.get("file", []):
                messages.error(request, error)
            return redirect(self.event)

        try:
            report = events.event_attendance_import(
                event=self.event,
                content=form.cleaned_data["file"].read(),
                user=request.user,
            )
        except events.AttendanceFileError as exc:
            messages.error(request, str(exc))
            return redirect(self.event)

        messages.success(request, _import_summary(report))
        for line, reason in report.skipped[:20]:
            messages.warning(
                request,
                _("Line %(line)s skipped: %(reason)s")
                % {"line": line, "reason": reason},
            )
        return redirect(self.event)


def _import_summary(report: events.AttendanceReport) -> str:
    checked = ngettext(
        "%(count)s person checked in",
        "%(count)s people checked in",
        report.checked_in,
    ) % {"count": report.checked_in}
    return _(
        "%(checked)s (%(walk_ins)s not registered before), %(already)s already "
        "checked in, %(skipped)s rows skipped."
    ) % {
        "checked": checked,
        "walk_ins": report.walk_ins,
        "already": report.already,
        "skipped": len(report.skipped),
    }


class EventCreateView(LoginRequiredMixin, PermissionRequiredMixin, CreateView):
    permission_required = "campaigns.add_event"
    model = Event
    form_class = EventForm
    template_name = "campaigns/event_form.html"

    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("campaign"):
            initial["campaign"] = self.request.GET["campaign"]
        return initial


class EventUpdateView(LoginRequiredMixin, PermissionRequiredMixin, UpdateView):
    permission_required = "campaigns.change_event"
    model = Event
    form_class = EventForm
    template_name = "campaigns/event_form.html"

    def form_valid(self, form):
        response = super().form_valid(form)

        promoted = events.event_promote_waitlist(event=self.object)
        if promoted:
            messages.success(
                self.request,
                ngettext(
                    "%(count)s person moved from the waitlist to a seat.",
                    "%(count)s people moved from the waitlist to a seat.",
                    promoted,
                )
                % {"count": promoted},
            )
        return response
