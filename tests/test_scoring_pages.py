"""The scoring pages: rules in force, the draft editor, the preview,
activation with its rescore job, and the admin for rule sets."""

import pytest
from django.contrib.auth.models import Group
from django.forms import CheckboxInput
from django.urls import reverse

from leads.models import Lead
from leads.services import InteractionData
from scoring.models import (
    EngagementRule,
    FitRule,
    JobStatus,
    RescoreJob,
    RuleSet,
    RuleSetStatus,
)
from scoring.rulesets import rule_set_draft

OVERVIEW = reverse("scoring:overview")
MARKETER_PERMS = ("scoring.change_ruleset", "leads.view_lead", "leads.move_lead")


@pytest.fixture
def marketer(make_user):
    return make_user("mai", role="Marketer")


@pytest.fixture
def rep(make_user):
    return make_user("rep", role="Sales rep")


@pytest.fixture
def outsider(make_user):
    return make_user("guest")


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def active() -> RuleSet:
    return RuleSet.objects.get(status=RuleSetStatus.ACTIVE)


def open_draft(client) -> RuleSet:
    response = client.post(reverse("scoring:draft_open"))
    assert response.status_code == 302
    return RuleSet.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])


def form_values(*forms) -> dict[str, str]:
    """What a browser would post back for these forms unchanged."""
    data: dict[str, str] = {}
    for form in forms:
        for field in form:
            value = field.value()
            if isinstance(field.field.widget, CheckboxInput):
                if value:
                    data[field.html_name] = "on"
            else:
                data[field.html_name] = "" if value is None else str(value)
    return data


def editor_data(response) -> dict[str, str]:
    context = response.context
    engagement, fit = context["engagement_formset"], context["fit_formset"]
    return form_values(
        context["form"],
        engagement.management_form,
        *engagement.forms,
        fit.management_form,
        *fit.forms,
    )


def first_extra(formset) -> int:
    return formset.initial_form_count()


# --- access ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_gives_each_role_its_permissions():
    def perms(name: str) -> set[str]:
        group = Group.objects.get(name=name)
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }

    marketer, rep, manager = (
        perms("Marketer"),
        perms("Sales rep"),
        perms("Sales manager"),
    )

    assert {
        "scoring.change_ruleset",
        "leads.move_lead",
        "leads.change_lead",
    } <= marketer
    assert "scoring.view_rescorejob" in marketer
    assert "leads.change_bant" not in marketer
    assert {"leads.view_lead", "leads.move_lead", "leads.change_bant"} <= rep
    assert not any(p.startswith("scoring.") for p in rep)
    assert "leads.change_lead" not in rep
    assert "leads.view_all_leads" in marketer
    assert "leads.view_all_leads" not in rep | manager
    assert "leads.work_inbox" in rep
    assert manager == rep | {
        "leads.add_lead",
        "leads.change_lead",
        "leads.assign_lead",
        "leads.view_assignmentrule",
        "leads.add_assignmentrule",
        "leads.change_assignmentrule",
        "leads.delete_assignmentrule",
        # Managers follow speed to lead and the funnel on the dashboard.
        "dashboard.view_dashboard",
    }


@pytest.mark.django_db
def test_a_marketer_sees_the_rules_in_force(marketer_client):
    rule_set = active()

    response = marketer_client.get(OVERVIEW)

    assert response.status_code == 200
    html = response.content.decode()
    assert f"v{rule_set.pk}" in html
    assert "Default rules" in html
    assert "total score at least 50, fit at least 20" in html
    assert "3 BANT criteria confirmed by sales" in html
    assert "including Budget, Need" in html
    assert "at least 50,000,000 VND" in html
    warm, hot = f"{rule_set.warm_at:g}", f"{rule_set.hot_at:g}"
    assert f"cold below {warm} recent points, warm from {warm}, hot from {hot}" in html
    assert "Demo request" in html  # an engagement rule, described
    assert "Email is filled" in html  # a fit rule, by its field's name
    assert "Edit rules" in html
    assert 'href="/scoring/"' in html  # the navbar link


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "name", "needs_draft"),
    [
        ("get", "scoring:overview", False),
        ("get", "scoring:jobs", False),
        ("post", "scoring:draft_open", False),
        ("get", "scoring:draft", True),
        ("post", "scoring:draft", True),
        ("get", "scoring:preview", True),
        ("post", "scoring:activate", True),
        ("post", "scoring:discard", True),
    ],
)
def test_people_without_the_permission_get_403_and_anonymous_ones_the_login(
    client, outsider, rep, method, name, needs_draft
):
    draft = rule_set_draft()
    url = reverse(name, args=[draft.pk] if needs_draft else [])

    anonymous = getattr(client, method)(url)
    client.force_login(outsider)
    denied_outsider = getattr(client, method)(url)
    client.force_login(rep)
    denied_rep = getattr(client, method)(url)

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    assert denied_outsider.status_code == 403
    assert denied_rep.status_code == 403
    assert RuleSet.objects.get(pk=draft.pk).status == RuleSetStatus.DRAFT
    assert not RescoreJob.objects.exists()


@pytest.mark.django_db
def test_the_navbar_offers_scoring_only_to_those_who_may_use_it(client, rep):
    client.force_login(rep)

    html = client.get(reverse("leads:list")).content.decode()

    assert 'href="/scoring/"' not in html


# --- drafts ---------------------------------------------------------------


@pytest.mark.django_db
def test_edit_rules_copies_the_active_rules_into_a_draft_and_then_continues_it(
    marketer_client, marketer
):
    first = open_draft(marketer_client)
    second = open_draft(marketer_client)

    assert first == second
    assert first.status == RuleSetStatus.DRAFT
    assert first.based_on == active()
    assert first.created_by == marketer
    assert first.engagement_rules.count() == active().engagement_rules.count()
    assert first.fit_rules.count() == active().fit_rules.count()
    overview = marketer_client.get(OVERVIEW).content.decode()
    assert f"Continue draft v{first.pk}" in overview


@pytest.mark.django_db
def test_an_invalid_fit_rule_shows_its_error_and_nothing_is_saved(marketer_client):
    draft = open_draft(marketer_client)
    url = reverse("scoring:draft", args=[draft.pk])
    page = marketer_client.get(url)
    data = editor_data(page)
    data["mql_total"] = "75"
    row = first_extra(page.context["fit_formset"])
    data.update({
        f"fit-{row}-field": "industry",
        f"fit-{row}-operator": "one_of",
        f"fit-{row}-values": "",
        f"fit-{row}-points": "10",
    })  # fmt: skip
    fit_rules = draft.fit_rules.count()

    response = marketer_client.post(url, data)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was saved: one problem to fix." in html
    assert "This condition needs at least one value." in html
    assert f"Fit rule {row + 1}, Values" in html  # named in the summary
    assert 'class="invalid-feedback d-block">This condition needs' in html
    draft.refresh_from_db()
    assert draft.mql_total == 50
    assert draft.fit_rules.count() == fit_rules


@pytest.mark.django_db
def test_rule_set_checks_show_next_to_their_fields(marketer_client):
    draft = open_draft(marketer_client)
    url = reverse("scoring:draft", args=[draft.pk])
    data = editor_data(marketer_client.get(url))
    data.update(warm_at="40", hot_at="20")

    response = marketer_client.post(url, data)

    form = response.context["form"]
    assert form.errors["hot_at"] == ["Hot must start at or above warm."]
    assert RuleSet.objects.get(pk=draft.pk).hot_at == active().hot_at != 20


@pytest.mark.django_db
def test_a_valid_edit_is_saved_and_the_rule_set_stays_a_draft(marketer_client):
    draft = open_draft(marketer_client)
    url = reverse("scoring:draft", args=[draft.pk])
    page = marketer_client.get(url)
    data = editor_data(page)
    engagement = page.context["engagement_formset"]
    removed = engagement.forms[0].instance
    data.update({
        "name": "Stricter MQL",
        "mql_total": "60",
        "sql_requires_timeline": "on",
        "engagement-0-DELETE": "on",
    })  # fmt: skip
    row = first_extra(page.context["fit_formset"])
    data.update({
        f"fit-{row}-field": "industry",
        f"fit-{row}-operator": "one_of",
        f"fit-{row}-values": "Software\nFinance",
        f"fit-{row}-points": "15",
    })  # fmt: skip

    response = marketer_client.post(url, data)

    assert response.status_code == 302
    assert response["Location"] == url
    draft.refresh_from_db()
    assert (draft.name, draft.mql_total, draft.status) == (
        "Stricter MQL",
        60,
        RuleSetStatus.DRAFT,
    )
    assert draft.sql_required() == ("budget", "need", "timeline")
    assert not EngagementRule.objects.filter(pk=removed.pk).exists()
    added = draft.fit_rules.get(field="industry", operator="one_of")
    assert added.value_list() == ("Software", "Finance")
    assert active().mql_total == 50  # the rules in force did not change
    assert "Draft v" in marketer_client.get(url).content.decode()


@pytest.mark.django_db
def test_versions_out_of_draft_are_never_edited(marketer_client):
    rule_set = active()
    url = reverse("scoring:draft", args=[rule_set.pk])

    shown = marketer_client.get(url)
    posted = marketer_client.post(url, {"name": "Changed", "mql_total": "1"})
    missing = marketer_client.get(reverse("scoring:draft", args=[999999]))

    assert shown.status_code == posted.status_code == 302
    assert shown["Location"] == OVERVIEW
    assert missing.status_code == 404
    rule_set.refresh_from_db()
    assert (rule_set.name, rule_set.mql_total) == ("Default rules", 50)


@pytest.mark.django_db
def test_discarding_a_draft_deletes_it_and_its_rules(marketer_client):
    draft = open_draft(marketer_client)

    response = marketer_client.post(reverse("scoring:discard", args=[draft.pk]))

    assert response["Location"] == OVERVIEW
    assert not RuleSet.objects.filter(pk=draft.pk).exists()
    assert not FitRule.objects.filter(rule_set_id=draft.pk).exists()
    assert (
        marketer_client.post(reverse("scoring:discard", args=[active().pk])).status_code
        == 302
    )  # back to the overview, nothing deleted
    assert RuleSet.objects.filter(status=RuleSetStatus.ACTIVE).exists()


# --- preview --------------------------------------------------------------


@pytest.mark.django_db
def test_the_preview_measures_auc_and_conversion_on_known_outcomes(
    marketer_client, make_lead
):
    for n in range(6):
        make_lead(
            email=f"lead{n}@example.com",
            company="VinaTech" if n % 2 else "",
            known_outcome=bool(n % 2),
            interactions=[InteractionData(kind="demo_request", channel="web_form")],
            score=True,
        )
    make_lead(email="unknown@example.com")  # no known outcome: not measured
    draft = open_draft(marketer_client)
    FitRule.objects.create(
        rule_set=draft, field="company", operator="filled", points=50
    )

    response = marketer_client.get(reverse("scoring:preview", args=[draft.pk]))

    assert response.status_code == 200
    preview, current = response.context["preview"], response.context["active_preview"]
    assert (preview.leads, preview.with_outcome, preview.auc) == (7, 6, 1.0)
    assert current.leads == 7
    html = response.content.decode()
    assert "Scored all 7 leads from scratch" in html
    auc_cell = html.split('id="draft-auc"')[1].split("</td>")[0]
    assert "1.000" in auc_cell
    levels = {row.level: row for row in response.context["levels"]}
    assert levels["mql"].draft_rate == 1.0
    assert "100.0 %" in html
    assert "No lead has a known outcome" not in html


@pytest.mark.django_db
def test_the_preview_counts_leads_that_would_rise_and_that_would_fall_back(
    marketer_client, make_lead
):
    make_lead(
        email="an@vinatech.vn",
        phone="0912345678",
        company="VinaTech",
        interactions=[InteractionData(kind="demo_request", channel="web_form")],
        score=True,
    )
    draft = open_draft(marketer_client)
    draft.mql_total = 1000
    draft.save()

    response = marketer_client.get(reverse("scoring:preview", args=[draft.pk]))

    preview = response.context["preview"]
    assert preview.would_no_longer_qualify == 1
    assert preview.transitions == {("mql", "iql"): 1}
    assert ("mql", "MQL", [1, 0, 0]) in response.context["transitions"]
    assert "They keep their level" in response.content.decode()


@pytest.mark.django_db
def test_the_preview_says_when_there_is_nothing_to_measure(marketer_client, make_lead):
    draft = open_draft(marketer_client)
    url = reverse("scoring:preview", args=[draft.pk])

    empty = marketer_client.get(url).content.decode()
    make_lead(email="an@example.com")
    no_outcome = marketer_client.get(url).content.decode()

    assert "No leads to preview against" in empty
    assert "No lead has a known outcome" in no_outcome


# --- activation and rescore jobs --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_activation_rescores_every_lead_and_archives_the_previous_version(
    client, make_user, make_lead
):
    marketer = make_user("mai", perms=MARKETER_PERMS)
    client.force_login(marketer)
    leads = [make_lead(email=f"x{n}@example.com", score=True) for n in range(3)]
    previous = active()
    draft = open_draft(client)
    url = reverse("scoring:draft", args=[draft.pk])
    data = editor_data(client.get(url))
    data.update(name="Stricter", mql_total="70", action="activate")

    response = client.post(url, data, follow=True)

    assert response.redirect_chain[-1][0] == OVERVIEW
    html = response.content.decode()
    assert f"Rules v{draft.pk} are in force." in html
    draft.refresh_from_db()
    assert (draft.status, draft.mql_total, draft.activated_by) == (
        RuleSetStatus.ACTIVE,
        70,
        marketer,
    )
    previous.refresh_from_db()
    assert previous.status == RuleSetStatus.ARCHIVED
    job = RescoreJob.objects.get()
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 3, 3)
    assert set(
        Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list(
            "score_version", flat=True
        )
    ) == {draft.pk}
    # The job is finished: the progress block no longer polls.
    assert "100 %" in html
    assert 'hx-trigger="every 2s"' not in html
    assert response.context["versions"][1].rule_set == previous


@pytest.mark.django_db(transaction=True)
def test_the_preview_page_activates_the_draft(client, make_user, make_lead):
    client.force_login(make_user("mai", perms=MARKETER_PERMS))
    lead = make_lead(email="an@example.com", score=True)
    draft = open_draft(client)

    response = client.post(reverse("scoring:activate", args=[draft.pk]))

    assert response["Location"] == OVERVIEW
    assert Lead.objects.get(pk=lead.pk).score_version == draft.pk
    assert client.post(reverse("scoring:activate", args=[draft.pk])).status_code == 302
    assert RescoreJob.objects.count() == 1  # not activated twice


@pytest.mark.django_db
def test_the_job_partial_polls_while_a_job_runs_and_stops_when_it_is_done(
    marketer_client,
):
    job = RescoreJob.objects.create(
        rule_set=active(),
        reason="rules changed",
        status=JobStatus.RUNNING,
        total=200,
        done=50,
    )
    url = reverse("scoring:jobs")

    running = marketer_client.get(url, headers={"HX-Request": "true"})
    RescoreJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, done=200)
    done = marketer_client.get(url, headers={"HX-Request": "true"})

    running_html, done_html = running.content.decode(), done.content.decode()
    assert "<html" not in running_html
    assert 'hx-trigger="every 2s"' in running_html
    assert 'aria-valuenow="25"' in running_html
    assert "50 of 200 leads" in running_html
    assert 'hx-trigger="every 2s"' not in done_html
    assert 'aria-valuenow="100"' in done_html
    overview = marketer_client.get(OVERVIEW).content.decode()
    assert 'id="rescore-jobs"' in overview


# --- admin ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_rule_sets_and_jobs(admin_client):
    RescoreJob.objects.create(rule_set=active(), reason="nightly refresh")

    for name in ("ruleset", "rescorejob"):
        url = reverse(f"admin:scoring_{name}_changelist")
        assert admin_client.get(url).status_code == 200
    assert admin_client.get(reverse("admin:scoring_rescorejob_add")).status_code == 403


@pytest.mark.django_db
def test_the_admin_edits_drafts_only(admin_client):
    rule_set = active()
    draft = rule_set_draft()

    frozen = admin_client.get(
        reverse("admin:scoring_ruleset_change", args=[rule_set.pk])
    )
    editable = admin_client.get(
        reverse("admin:scoring_ruleset_change", args=[draft.pk])
    )
    posted = admin_client.post(
        reverse("admin:scoring_ruleset_change", args=[rule_set.pk]),
        {"name": "Changed"},
    )

    assert frozen.status_code == editable.status_code == 200
    assert frozen.context["has_change_permission"] is False
    assert editable.context["has_change_permission"] is True
    assert posted.status_code == 403
    assert active().name == "Default rules"


@pytest.mark.django_db
def test_the_admin_action_activates_one_draft(admin_client, make_lead):
    make_lead(email="an@example.com", score=True)
    draft = rule_set_draft(name="From admin")

    admin_client.post(
        reverse("admin:scoring_ruleset_changelist"),
        {"action": "activate", "_selected_action": [draft.pk]},
    )

    assert active() == draft
    assert RescoreJob.objects.get().rule_set == draft


@pytest.mark.django_db
def test_the_overview_lists_earlier_versions_with_their_periods(
    marketer_client, marketer
):
    from scoring.rulesets import rule_set_activate

    first = active()
    second = rule_set_draft(name="Second")
    rule_set_activate(rule_set=second, by=marketer)

    response = marketer_client.get(OVERVIEW)

    versions = response.context["versions"]
    assert [v.rule_set.pk for v in versions] == [second.pk, first.pk]
    assert versions[0].until is None
    assert versions[1].until == RuleSet.objects.get(pk=second.pk).activated_at
    html = response.content.decode()
    assert "Archived" in html
    assert marketer.get_username() in html
