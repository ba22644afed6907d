"""The scoring pages: rules in force, the draft editor, its preview and
activation. Marketers and admins only (scoring.change_ruleset)."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from leads.models import Level

from . import selectors
from .forms import draft_forms
from .models import FIT_FIELDS, RuleSet, RuleSetStatus
from .rules import active_rules
from .rulesets import (
    rule_set_activate,
    rule_set_discard,
    rule_set_draft_open,
    rule_set_draft_save,
)
from .services import Preview, rules_preview


class ScoringAccessMixin(PermissionRequiredMixin):
    # Anonymous people are sent to the login; signed-in people without the
    # permission get 403.
    permission_required = "scoring.change_ruleset"


class DraftMixin:
    """Loads the draft named in the URL. A version that left draft is never
    edited: its URLs lead back to the scoring page."""

    def dispatch(self, request, *args, **kwargs):
        self.draft = get_object_or_404(RuleSet, pk=kwargs["pk"])
        if self.draft.status != RuleSetStatus.DRAFT:
            messages.info(
                request,
                _("v%(version)s is not a draft: versions that scored leads stay.")
                % {"version": self.draft.pk},
            )
            return redirect("scoring:overview")
        return super().dispatch(request, *args, **kwargs)


class OverviewView(ScoringAccessMixin, TemplateView):
    template_name = "scoring/ruleset_overview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        jobs = selectors.rescore_jobs_latest()
        context.update(
            active=selectors.rule_set_active(),
            drafts=selectors.rule_set_drafts(),
            versions=selectors.rule_set_versions(),
            jobs=jobs,
            jobs_running=selectors.rescore_jobs_running(jobs),
        )
        return context


class JobListView(ScoringAccessMixin, TemplateView):
    """The rescore jobs alone, polled by the scoring page while one runs."""

    template_name = "scoring/_rescorejob_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        jobs = selectors.rescore_jobs_latest()
        context.update(jobs=jobs, jobs_running=selectors.rescore_jobs_running(jobs))
        return context


class DraftOpenView(ScoringAccessMixin, View):
    def post(self, request):
        draft = rule_set_draft_open(by=request.user)
        return redirect("scoring:draft", pk=draft.pk)


class DraftEditView(ScoringAccessMixin, DraftMixin, TemplateView):
    template_name = "scoring/ruleset_form.html"

    def get(self, request, *args, **kwargs):
        return self.render_forms(*draft_forms(self.draft))

    def post(self, request, *args, **kwargs):
        form, engagement, fit = draft_forms(self.draft, request.POST)
        # Every form is validated, so all their errors show at once.
        if not all([form.is_valid(), engagement.is_valid(), fit.is_valid()]):
            return self.render_forms(form, engagement, fit)

        try:
            draft = rule_set_draft_save(
                draft=form.save(commit=False),
                rules=[*engagement.save(commit=False), *fit.save(commit=False)],
                removed=[*engagement.deleted_objects, *fit.deleted_objects],
            )
        except ValidationError as exc:
            if exc.code != "not_draft":
                raise
            # Activated or discarded in another tab meanwhile.
            messages.error(request, " ".join(exc.messages))
            return redirect("scoring:overview")

        action = request.POST.get("action")
        if action == "preview":
            return redirect("scoring:preview", pk=draft.pk)
        if action == "activate":
            return _activate(request, draft)
        messages.success(
            request, _("Draft v%(version)s saved.") % {"version": draft.pk}
        )
        return redirect("scoring:draft", pk=draft.pk)

    def render_forms(self, form, engagement, fit):
        return self.render_to_response(
            self.get_context_data(
                draft=self.draft,
                form=form,
                engagement_formset=engagement,
                fit_formset=fit,
                errors=_error_summary(form, engagement, fit),
                fit_fields=FIT_FIELDS,
            )
        )


class DraftPreviewView(ScoringAccessMixin, DraftMixin, TemplateView):
    """What the draft would do to every lead, beside what the rules in force
    do. Runs in the request: it reads the leads in batches and writes
    nothing."""

    template_name = "scoring/ruleset_preview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        draft = rules_preview(rules=self.draft.to_rules())
        active = rules_preview(rules=active_rules())
        context.update(
            draft=self.draft,
            active_version=selectors.rule_set_active(),
            preview=draft,
            active_preview=active,
            levels=_level_rows(draft, active),
            transitions=_transition_rows(draft),
            level_choices=Level.choices,
            auc_change=(
                draft.auc - active.auc
                if draft.auc is not None and active.auc is not None
                else None
            ),
        )
        return context


class DraftActivateView(ScoringAccessMixin, DraftMixin, View):
    def post(self, request, *args, **kwargs):
        return _activate(request, self.draft)


class DraftDiscardView(ScoringAccessMixin, DraftMixin, View):
    def post(self, request, *args, **kwargs):
        rule_set_discard(rule_set=self.draft, by=request.user)
        messages.success(
            request, _("Draft v%(version)s discarded.") % {"version": self.draft.pk}
        )
        return redirect("scoring:overview")


def _activate(request, draft: RuleSet):
    try:
        rule_set_activate(rule_set=draft, by=request.user)
    except ValueError:
        messages.error(request, _("Only a draft can be activated."))
    else:
        messages.success(
            request,
            _("Rules v%(version)s are in force. Every lead is being rescored.")
            % {"version": draft.pk},
        )
    return redirect("scoring:overview")


@dataclass(frozen=True)
class ErrorLine:
    where: str
    message: str


def _error_summary(form, engagement, fit) -> list[ErrorLine]:
    """Every error of the editor, named by rule row and field, for the list
    at the top of the page."""
    lines = [
        ErrorLine(_field_label(form, name), message)
        for name, messages_ in form.errors.items()
        for message in messages_
    ]
    for formset, title in (
        (engagement, _("Engagement rule %(row)s")),
        (fit, _("Fit rule %(row)s")),
    ):
        lines += [ErrorLine("", message) for message in formset.non_form_errors()]
        for row, rule_form in enumerate(formset.forms, start=1):
            where = title % {"row": row}
            for name, messages_ in rule_form.errors.items():
                label = _field_label(rule_form, name)
                for message in messages_:
                    lines.append(
                        ErrorLine(f"{where}, {label}" if label else where, message)
                    )
    return lines


def _field_label(form, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else ""


@dataclass(frozen=True)
class LevelRow:
    level: str
    label: str
    draft: dict[str, int]
    draft_rate: float | None
    active: dict[str, int]
    active_rate: float | None


def _level_rows(draft: Preview, active: Preview) -> list[LevelRow]:
    empty = {"leads": 0, "known": 0, "converted": 0}
    return [
        LevelRow(
            level=level,
            label=str(label),
            draft=draft.by_level.get(level, empty),
            draft_rate=draft.conversion_rate(level),
            active=active.by_level.get(level, empty),
            active_rate=active.conversion_rate(level),
        )
        for level, label in Level.choices
    ]


def _transition_rows(preview: Preview) -> list[tuple[str, str, list[int]]]:
    """One row per level now: how many leads the draft would put at each
    level, in the columns' order (Level.choices)."""
    return [
        (
            current,
            str(label),
            [preview.transitions.get((current, earned), 0) for earned in Level.values],
        )
        for current, label in Level.choices
    ]
