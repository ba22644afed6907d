import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from leads.models import Lead, LeadQuerySet, Opportunity
from leads.opportunities import (
    OpportunityInput,
    opportunity_convert,
    opportunity_move,
)
from tests.sales_helpers import mql_lead, sql_lead

HTMX = {"HTTP_HX_REQUEST": "true"}
SALES_PERMS = (
    "leads.view_lead",
    "leads.change_bant",
    "leads.view_opportunity",
    "leads.add_opportunity",
    "leads.change_opportunity",
    "leads.view_opportunity_amount",
)


@pytest.fixture
def rep(make_user):
    return make_user("rep", role="Sales rep")


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


def _deal(name="VinaTech CRM", amount="250000000", currency="VND", days=30):
    return OpportunityInput(
        name=name,
        amount=Decimal(amount),
        currency=currency,
        expected_close_on=timezone.localdate() + timedelta(days=days),
    )


def _convert(lead, rep, **kwargs) -> Opportunity:
    return opportunity_convert(lead_id=lead.pk, by=rep, data=_deal(**kwargs))


def _move_url(opportunity) -> str:
    return reverse("opportunities:move", args=[opportunity.pk])


@pytest.mark.django_db
def test_a_rep_converts_an_sql_into_an_opportunity_linked_to_the_lead(
    rep_client, rep, make_lead
):
    lead = sql_lead(make_lead, rep)
    page = rep_client.get(lead.get_absolute_url()).content.decode()
    form = rep_client.get(reverse("leads:convert", args=[lead.pk]))

    response = rep_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {
            "name": "VinaTech CRM rollout",
            "amount": "120000000",
            "currency": "vnd",
            "expected_close_on": (
                timezone.localdate() + timedelta(days=45)
            ).isoformat(),
            "stage": "qualification",
        },
    )

    opportunity = Opportunity.objects.get()
    history = list(opportunity.stage_changes.all())
    assert 'id="convert-link"' in page
    assert form.context["form"].initial["amount"] == Decimal("120000000")
    assert form.context["form"].initial["name"] == "VinaTech"
    assert response.status_code == 302
    assert response["Location"] == opportunity.get_absolute_url()
    assert (opportunity.lead, opportunity.currency) == (lead, "VND")
    assert opportunity.owner == rep
    assert [(c.from_stage, c.to_stage, c.changed_by) for c in history] == [
        ("", "qualification", rep)
    ]
    lead_page = rep_client.get(lead.get_absolute_url()).content.decode()
    assert opportunity.get_absolute_url() in lead_page
    assert lead.level_changes.exists()  # the lead keeps its history


@pytest.mark.django_db
def test_the_currency_defaults_to_vnd(rep, make_lead):
    lead = sql_lead(make_lead, rep)

    opportunity = opportunity_convert(
        lead_id=lead.pk,
        by=rep,
        data=OpportunityInput(
            name="Deal",
            amount=Decimal(1),
            expected_close_on=timezone.localdate(),
        ),
    )

    assert opportunity.currency == "VND"


@pytest.mark.django_db
def test_converting_twice_is_refused_with_a_clear_message(rep_client, rep, make_lead):
    lead = sql_lead(make_lead, rep)
    first = _convert(lead, rep)

    with pytest.raises(ValidationError) as refused:
        _convert(lead, rep, name="Again")
    again = rep_client.get(reverse("leads:convert", args=[lead.pk]), follow=True)

    assert refused.value.code == "already_converted"
    assert Opportunity.objects.count() == 1
    assert again.redirect_chain[-1][0] == first.get_absolute_url()
    assert "converted already" in again.content.decode()


@pytest.mark.django_db
def test_only_an_sql_can_be_converted(rep_client, make_lead, rep):
    lead = mql_lead(make_lead, owner=rep)

    page = rep_client.get(reverse("leads:convert", args=[lead.pk]))
    response = rep_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {
            "name": "Too early",
            "amount": "1",
            "currency": "VND",
            "expected_close_on": timezone.localdate().isoformat(),
            "stage": "qualification",
        },
    )

    assert "Only a sales-qualified lead" in page.content.decode()
    assert response.context["form"].non_field_errors() == [
        "Only a sales-qualified lead (SQL) can be converted."
    ]
    assert not Opportunity.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_conversions_make_one_opportunity(make_user, make_lead):
    rep = make_user("rep", perms=SALES_PERMS)
    lead = sql_lead(make_lead, rep)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def convert(number: int) -> None:
        try:
            barrier.wait()
            _convert(lead, rep, name=f"Deal {number}")
            outcomes.append("created")
        except ValidationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=convert, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["already_converted"] * 3 + ["created"]
    assert Opportunity.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
def test_moving_a_card_with_htmx_answers_with_the_board_and_records_it(
    rep_client, rep, make_lead
):
    opportunity = _convert(sql_lead(make_lead, rep), rep)

    response = rep_client.post(
        _move_url(opportunity), {"to_stage": "proposal", "from": "pipeline"}, **HTMX
    )

    opportunity.refresh_from_db()
    change = opportunity.stage_changes.first()
    html = response.content.decode()
    assert opportunity.stage == "proposal"
    assert (change.from_stage, change.to_stage, change.changed_by) == (
        "qualification",
        "proposal",
        rep,
    )
    assert html.lstrip().startswith('<div id="pipeline"')
    proposal = html[
        html.index('id="stage-proposal"') : html.index('id="stage-negotiation"')
    ]
    assert f'id="opportunity-{opportunity.pk}"' in proposal


@pytest.mark.django_db
def test_won_makes_the_lead_a_customer_and_reopening_undoes_it(rep, make_lead):
    lead = sql_lead(make_lead, rep)
    opportunity = _convert(lead, rep)

    opportunity_move(opportunity_id=opportunity.pk, by=rep, to_stage="won")
    lead.refresh_from_db()
    status_when_won = lead.status
    opportunity.refresh_from_db()
    closed_at = opportunity.closed_at
    opportunity_move(opportunity_id=opportunity.pk, by=rep, to_stage="negotiation")
    lead.refresh_from_db()
    opportunity.refresh_from_db()

    assert status_when_won == "customer"
    assert closed_at is not None
    assert lead.status == "open"
    assert opportunity.closed_at is None
    assert [c.to_stage for c in opportunity.stage_changes.order_by("id")] == [
        "qualification",
        "won",
        "negotiation",
    ]


@pytest.mark.django_db
def test_lost_needs_a_reason_on_the_board(rep_client, rep, make_lead):
    opportunity = _convert(sql_lead(make_lead, rep), rep)

    refused = rep_client.post(
        _move_url(opportunity), {"to_stage": "lost", "from": "pipeline"}, **HTMX
    )
    opportunity.refresh_from_db()
    stage_after_refusal = opportunity.stage
    lost = rep_client.post(
        _move_url(opportunity),
        {
            "to_stage": "lost",
            "reason_code": "no_budget",
            "note": "Budget went to hardware",
            "from": "pipeline",
        },
        **HTMX,
    )

    opportunity.refresh_from_db()
    lead = Lead.objects.get(pk=opportunity.lead_id)
    change = opportunity.stage_changes.first()
    assert "Say why the deal was lost." in refused.content.decode()
    assert stage_after_refusal == "qualification"
    assert lost.status_code == 200
    assert (opportunity.stage, opportunity.lost_reason) == ("lost", "no_budget")
    assert opportunity.lost_note == "Budget went to hardware"
    assert (change.reason_code, change.note) == ("no_budget", "Budget went to hardware")
    assert lead.status == "open"


@pytest.mark.django_db
def test_lost_for_another_reason_needs_a_note(rep, make_lead):
    opportunity = _convert(sql_lead(make_lead, rep), rep)

    with pytest.raises(ValidationError) as refused:
        opportunity_move(
            opportunity_id=opportunity.pk, by=rep, to_stage="lost", reason_code="other"
        )

    assert "note" in refused.value.error_dict


@pytest.mark.django_db
def test_the_pipeline_totals_each_currency_apart(rep_client, rep, make_lead):
    for number, (amount, currency) in enumerate(
        [("100000000", "VND"), ("50000000", "VND"), ("2000", "USD")]
    ):
        lead = sql_lead(make_lead, rep, email=f"lead{number}@example.vn")
        _convert(lead, rep, name=f"Deal {number}", amount=amount, currency=currency)

    response = rep_client.get(reverse("opportunities:pipeline"))

    columns = {column.stage: column for column in response.context["columns"]}
    qualification = columns["qualification"]
    assert qualification.count == 3
    assert qualification.totals == {"USD": Decimal("2000"), "VND": Decimal("150000000")}
    assert columns["won"].count == 0
    assert "150,000,000 VND" in response.content.decode()


# Session, user, its two permission reads, the totals per stage and currency,
# the cards of every column.
QUERIES = 6


@pytest.mark.django_db
def test_the_pipeline_runs_the_same_queries_for_2_or_8_deals(
    rep_client, rep, make_lead, django_assert_num_queries
):
    def add(numbers):
        for number in numbers:
            lead = sql_lead(make_lead, rep, email=f"lead{number}@example.vn")
            opportunity = _convert(lead, rep, name=f"Deal {number}")
            stage = ("proposal", "negotiation", "won")[number % 3]
            opportunity_move(opportunity_id=opportunity.pk, by=rep, to_stage=stage)

    add(range(2))
    with django_assert_num_queries(QUERIES):
        rep_client.get(reverse("opportunities:pipeline"))
    add(range(2, 8))
    with django_assert_num_queries(QUERIES):
        rep_client.get(reverse("opportunities:pipeline"))


@pytest.mark.django_db
def test_a_marketer_sees_the_pipeline_without_money(client, make_user, rep, make_lead):
    opportunity = _convert(sql_lead(make_lead, rep), rep, amount="987654321")
    marketer = make_user("marketer2", role="Marketer")
    client.force_login(marketer)

    pipeline = client.get(reverse("opportunities:pipeline")).content.decode()
    detail = client.get(opportunity.get_absolute_url()).content.decode()
    listing = client.get(reverse("opportunities:list")).content.decode()
    moved = client.post(_move_url(opportunity), {"to_stage": "won"})
    edited = client.post(
        reverse("opportunities:edit", args=[opportunity.pk]), {"edit-amount": "1"}
    )

    assert opportunity.name in pipeline
    assert edited.status_code == 403
    assert 'id="edit-form"' not in detail
    for html in (pipeline, detail, listing):
        assert "987,654,321" not in html
    assert moved.status_code == 403


@pytest.mark.django_db
def test_the_list_searches_by_deal_or_lead_and_paginates(rep_client, rep, make_lead):
    for number in range(27):
        lead = sql_lead(
            make_lead, rep, email=f"lead{number}@example.vn", name=f"Khách {number}"
        )
        _convert(lead, rep, name=f"Deal {number}")
    special = sql_lead(make_lead, rep, email="an@sao-mai.vn", name="Trần Thị Ánh")
    _convert(special, rep, name="Sao Mai rollout")

    first = rep_client.get(reverse("opportunities:list"))
    second = rep_client.get(reverse("opportunities:list"), {"page": 2})
    by_lead = rep_client.get(reverse("opportunities:list"), {"q": "tran thi anh"})
    by_deal = rep_client.get(reverse("opportunities:list"), {"q": "Sao Mai"})
    nothing = rep_client.get(reverse("opportunities:list"), {"q": "zzz"})

    assert len(first.context["page_obj"]) == 25
    assert len(second.context["page_obj"]) == 3
    assert [o.name for o in by_lead.context["page_obj"]] == ["Sao Mai rollout"]
    assert [o.name for o in by_deal.context["page_obj"]] == ["Sao Mai rollout"]
    assert "No opportunity matches this search." in nothing.content.decode()


@pytest.mark.django_db
def test_an_empty_pipeline_list_says_how_to_start(rep_client):
    response = rep_client.get(reverse("opportunities:list"))

    assert "Convert a sales-qualified lead" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("opportunities:detail", "get"),
        ("opportunities:move", "post"),
        ("opportunities:edit", "post"),
        ("leads:convert", "get"),
        ("leads:convert", "post"),
    ],
)
def test_every_url_of_a_lead_out_of_sight_is_404(
    rep_client, rep, make_lead, monkeypatch, name, method
):
    lead = sql_lead(make_lead, rep)
    opportunity = _convert(lead, rep)
    pk = lead.pk if name == "leads:convert" else opportunity.pk
    monkeypatch.setattr(LeadQuerySet, "visible_to", lambda self, user: self.none())

    response = getattr(rep_client, method)(reverse(name, args=[pk]), {})
    listing = rep_client.get(reverse("opportunities:list"))
    board = rep_client.get(reverse("opportunities:pipeline"))

    assert response.status_code == 404
    assert list(listing.context["page_obj"]) == []
    assert sum(column.count for column in board.context["columns"]) == 0


@pytest.mark.django_db
def test_an_outsider_without_a_role_gets_404(client, make_user, rep, make_lead):
    lead = sql_lead(make_lead, rep)
    opportunity = _convert(lead, rep)
    client.force_login(make_user("outsider"))

    assert client.get(opportunity.get_absolute_url()).status_code == 404
    assert client.post(_move_url(opportunity), {"to_stage": "won"}).status_code == 404
    assert client.get(reverse("leads:convert", args=[lead.pk])).status_code == 404
    opportunity.refresh_from_db()
    assert opportunity.stage == "qualification"


@pytest.mark.django_db(transaction=True)
def test_confirming_bant_with_htmx_makes_an_sql_and_offers_conversion(
    client, make_user, make_lead
):
    # Transactional: the rescore runs after the confirmation commits, before
    # the answer is rendered, as it does in the running application.
    rep = make_user("rep", perms=SALES_PERMS)
    client.force_login(rep)
    lead = mql_lead(make_lead, owner=rep)
    soon = timezone.localdate() + timedelta(days=20)
    posts = [
        ("budget", {"bant-budget-amount": "90000000", "bant-budget-currency": "VND"}),
        ("need", {"bant-need-need": "A shared pipeline"}),
        ("timeline", {"bant-timeline-date": soon.isoformat()}),
    ]

    answers = [
        client.post(
            reverse("leads:bant_confirm", args=[lead.pk, criterion]), data, **HTMX
        )
        for criterion, data in posts
    ]

    lead.refresh_from_db()
    last = answers[-1].content.decode()
    assert lead.level == "sql"
    assert last.lstrip().startswith("<section")
    assert "Timeline confirmed." in last
    assert 'id="lead-badges" class="d-inline-flex gap-2" hx-swap-oob="true"' in last
    assert ">SQL</span>" in last
    assert 'id="convert-link"' in last
    assert 'id="convert-link"' not in answers[0].content.decode()


@pytest.mark.django_db
def test_a_refused_bant_confirmation_with_htmx_shows_the_error_in_the_card(
    rep_client, make_lead, rep
):
    lead = mql_lead(make_lead, owner=rep)

    response = rep_client.post(
        reverse("leads:bant_confirm", args=[lead.pk, "budget"]),
        {"bant-budget-amount": "", "bant-budget-currency": "VND"},
        **HTMX,
    )

    html = response.content.decode()
    assert html.lstrip().startswith("<section")
    assert 'class="collapse show" id="bant-budget-panel"' in html
    assert not lead.bant.exists()


@pytest.mark.django_db
def test_the_admin_lists_opportunities_and_activities(admin_client, rep, make_lead):
    opportunity = _convert(sql_lead(make_lead, rep), rep)

    changelist = admin_client.get(reverse("admin:leads_opportunity_changelist"))
    change = admin_client.get(
        reverse("admin:leads_opportunity_change", args=[opportunity.pk])
    )
    activities = admin_client.get(reverse("admin:leads_activity_changelist"))

    assert opportunity.name in changelist.content.decode()
    assert change.status_code == activities.status_code == 200
    assert "Qualification" in change.content.decode()


@pytest.mark.django_db
def test_a_rep_corrects_a_deal_but_not_its_stage(rep_client, rep, make_lead):
    opportunity = _convert(sql_lead(make_lead, rep), rep)
    url = reverse("opportunities:edit", args=[opportunity.pk])
    later = timezone.localdate() + timedelta(days=60)

    saved = rep_client.post(
        url,
        {
            "edit-name": "Bigger deal",
            "edit-amount": "300000000",
            "edit-currency": "usd",
            "edit-expected_close_on": later.isoformat(),
            "edit-stage": "won",
        },
    )
    refused = rep_client.post(url, {"edit-name": "", "edit-amount": "-1"})

    opportunity.refresh_from_db()
    assert saved.status_code == 302
    assert (opportunity.name, opportunity.amount) == (
        "Bigger deal",
        Decimal("300000000"),
    )
    assert (opportunity.currency, opportunity.expected_close_on) == ("USD", later)
    assert opportunity.stage == "qualification"
    assert set(refused.context["edit_form"].errors) >= {"name", "amount"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("120.000.000", Decimal("120000000")),
        ("120,000,000.00", Decimal("120000000")),
        ("120 triệu", Decimal("120000000")),
        ("1,5 tỷ", Decimal("1500000000")),
    ],
)
def test_the_convert_form_reads_amounts_as_the_public_forms_do(
    rep_client, rep, make_lead, typed, amount
):
    lead = sql_lead(make_lead, rep)

    response = rep_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {
            "name": "VinaTech CRM rollout",
            "amount": typed,
            "currency": "VND",
            "expected_close_on": (
                timezone.localdate() + timedelta(days=45)
            ).isoformat(),
            "stage": "qualification",
        },
    )

    assert response.status_code == 302
    assert Opportunity.objects.get().amount == amount


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["1.500 triệu", "about 100", "9" * 30])
def test_the_convert_form_refuses_an_amount_it_cannot_read_surely(
    rep_client, rep, make_lead, typed
):
    lead = sql_lead(make_lead, rep)

    response = rep_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {
            "name": "VinaTech CRM rollout",
            "amount": typed,
            "currency": "VND",
            "expected_close_on": (
                timezone.localdate() + timedelta(days=45)
            ).isoformat(),
            "stage": "qualification",
        },
    )

    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert not Opportunity.objects.exists()


@pytest.mark.django_db
def test_the_bant_card_reads_a_budget_in_local_notation(rep_client, make_lead, rep):
    lead = mql_lead(make_lead, owner=rep)

    rep_client.post(
        reverse("leads:bant_confirm", args=[lead.pk, "budget"]),
        {"bant-budget-amount": "120.000.000", "bant-budget-currency": "VND"},
        **HTMX,
    )

    assert lead.bant.get(criterion="budget").amount == Decimal("120000000")
